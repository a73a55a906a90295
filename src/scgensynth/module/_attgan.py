from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scgensynth.nn import SparseGeneAttention

from ._wgan import WGANGPModule


class AttGANModule(WGANGPModule):
    """WGAN-GP whose generator output is refined by sparse gene–gene attention.

    The generator of :class:`~scgensynth.module.WGANGPModule` produces ``x``; a
    :class:`~scgensynth.nn.SparseGeneAttention` layer over a gene graph then updates each
    gene from its neighbours (Lacan et al. 2023). The critic, losses and conditioning are the
    WGAN-GP's. The graph's edges are buffers of the attention layer, so they are saved and
    restored with the weights.

    Examples
    --------
    >>> from scipy import sparse
    >>> graph = sparse.random(40, 40, density=0.1, format="csr", random_state=0)
    >>> module = AttGANModule(n_input=40, n_cats_per_cov=[3], graph=graph, n_latent=8)
    >>> module.generate_scaled(2, torch.tensor([[0], [1]])).shape
    torch.Size([2, 40])
    """

    def __init__(
        self,
        n_input: int,
        n_cats_per_cov: Sequence[int] = (),
        n_continuous_cov: int = 0,
        graph: Any = None,
        gamma: float = 1.0,
        learn_gamma: bool = False,
        **kwargs,
    ):
        super().__init__(n_input, n_cats_per_cov, n_continuous_cov, **kwargs)
        self.attention = SparseGeneAttention(
            self.n_input, graph, gamma=gamma, learn_gamma=learn_gamma
        )

    def generate_scaled(self, n, cat=None, cont=None, z=None, generator=None, **kwargs):
        """Generator output refined by the attention layer (network space)."""
        x = super().generate_scaled(n, cat, cont, z=z, generator=generator, **kwargs)
        return self.attention(x)
