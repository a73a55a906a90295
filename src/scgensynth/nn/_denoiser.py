from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ._blocks import CovariateEmbedder


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of (diffusion) time steps, as in Transformers and DDPM.

    Parameters
    ----------
    t
        Time steps, shape ``(n,)`` (integers or floats).
    dim
        Embedding size (even or odd; an odd size is padded with one zero column).
    max_period
        Longest wavelength.

    Returns
    -------
    Tensor of shape ``(n, dim)``: ``[cos(t ω_k) ‖ sin(t ω_k)]`` with
    ``ω_k = max_period^(-k / (dim // 2))``.

    Examples
    --------
    >>> sinusoidal_embedding(torch.tensor([0, 10, 999]), 16).shape
    torch.Size([3, 16])
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    args = t.float()[:, None] * freqs[None, :]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class _ResidualBlock(nn.Module):
    """``h + MLP(LayerNorm(h) * (1 + scale) + shift)``, with scale and shift from the condition."""

    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.film = nn.Linear(width, 2 * width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 2 * width),
            nn.SiLU(),
            nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
            nn.Linear(2 * width, width),
        )

    def forward(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(e).chunk(2, dim=-1)
        return h + self.mlp(self.norm(h) * (1 + scale) + shift)


class ConditionalDenoiser(nn.Module):
    """MLP that predicts the noise ``ε`` in a noisy expression profile ``x_t``.

    The input is projected to ``n_hidden`` units and passed through ``n_blocks`` residual
    blocks; every block is modulated (scale and shift, as in FiLM / adaptive layer norm) by
    the sum of a time embedding (sinusoidal, then a two-layer MLP) and a covariate embedding
    (learnable embeddings of the categorical covariates, of size ``floor(sqrt(n)) + 1`` unless
    ``embedding_dims`` says otherwise, concatenated with the standardized continuous
    covariates, then a linear map). Small embeddings keep the condition space low-dimensional,
    so moving between two categories' embeddings is meaningful.

    The blocks see the profile through an ``n_hidden``-wide projection, which cannot carry
    the full-rank part of ``x_t`` when genes outnumber hidden units; yet most of the noise is
    predictable gene by gene (at large ``t``, ``ε ≈ x_t``). So the output adds a skip path,
    a per-gene gain that depends on ``t`` times ``x_t`` itself (initialised at zero):
    ``ε̂ = MLP(x_t, t, c) + g(t) ⊙ x_t``.

    For classifier-free guidance the covariate vector of a sample can be replaced by a learned
    *null condition* (``drop_condition``): the same network then estimates the unconditional
    noise.

    Parameters
    ----------
    n_input
        Number of genes.
    n_cats_per_cov
        Categories of each categorical covariate.
    n_continuous
        Number of continuous covariates.
    n_hidden
        Width of the residual blocks.
    n_blocks
        Number of residual blocks.
    n_time_embedding
        Size of the sinusoidal time embedding.
    embedding_dims
        Explicit embedding size per categorical covariate.
    dropout
        Dropout inside the blocks.

    Examples
    --------
    >>> net = ConditionalDenoiser(50, n_cats_per_cov=[3], n_hidden=32, n_blocks=2)
    >>> x, t = torch.randn(4, 50), torch.tensor([0, 5, 99, 999])
    >>> cat = torch.tensor([[0], [1], [2], [0]])
    >>> net(x, t, cat=cat).shape
    torch.Size([4, 50])
    """

    def __init__(
        self,
        n_input: int,
        n_cats_per_cov: Sequence[int] = (),
        n_continuous: int = 0,
        n_hidden: int = 256,
        n_blocks: int = 3,
        n_time_embedding: int = 128,
        embedding_dims: Sequence[int] | None = None,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.n_input = int(n_input)
        self.n_time_embedding = int(n_time_embedding)
        width = int(n_hidden)
        self.embedding = CovariateEmbedder(n_cats_per_cov, n_continuous, embedding_dims)
        self.n_condition = self.embedding.n_output
        self.time_mlp = nn.Sequential(
            nn.Linear(self.n_time_embedding, width), nn.SiLU(), nn.Linear(width, width)
        )
        if self.n_condition:
            self.condition_proj = nn.Linear(self.n_condition, width)
            self.null_condition = nn.Parameter(torch.zeros(self.n_condition))
        self.input_proj = nn.Linear(self.n_input, width)
        self.blocks = nn.ModuleList(_ResidualBlock(width, dropout) for _ in range(int(n_blocks)))
        self.out_norm = nn.LayerNorm(width)
        self.output = nn.Linear(width, self.n_input)
        # full-rank path: a per-gene, time-dependent gain on x_t itself (see the class notes)
        self.skip_gain = nn.Linear(width, self.n_input)
        nn.init.zeros_(self.skip_gain.weight)
        nn.init.zeros_(self.skip_gain.bias)

    def condition(
        self,
        cat: torch.Tensor | None = None,
        cont: torch.Tensor | None = None,
        cat_embedded: Sequence[torch.Tensor | None] | None = None,
        drop_condition: torch.Tensor | None = None,
        n: int | None = None,
    ) -> torch.Tensor | None:
        """Covariate vector per sample; rows with ``drop_condition`` get the null condition."""
        if not self.n_condition:
            return None
        if drop_condition is not None and bool(drop_condition.all()) and n is not None:
            return self.null_condition.expand(n, -1)
        c = self.embedding(cat, cont, cat_embedded=cat_embedded)
        if drop_condition is not None:
            c = torch.where(drop_condition[:, None], self.null_condition.expand_as(c), c)
        return c

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        cat: torch.Tensor | None = None,
        cont: torch.Tensor | None = None,
        cat_embedded: Sequence[torch.Tensor | None] | None = None,
        drop_condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predicted noise for ``x`` at time steps ``t`` (shape ``(n,)``) and the covariates.

        ``cont`` must already be standardized; ``drop_condition`` (bool, shape ``(n,)``) marks
        rows whose condition is replaced by the null condition.
        """
        t_emb = self.time_mlp(sinusoidal_embedding(t, self.n_time_embedding))
        e = t_emb
        c = self.condition(cat, cont, cat_embedded, drop_condition, n=x.shape[0])
        if c is not None:
            e = e + self.condition_proj(c)
        h = self.input_proj(x)
        for block in self.blocks:
            h = block(h, e)
        gain = self.skip_gain(torch.nn.functional.silu(t_emb))
        return self.output(torch.nn.functional.silu(self.out_norm(h))) + gain * x
