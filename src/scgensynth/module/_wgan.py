from __future__ import annotations

from collections.abc import Sequence

import torch
from scvi.module.base import LossOutput

from scgensynth.nn import MLP, CovariateEmbedder, LinearSubspace

from ._base import ConditionalGeneratorModule, LatentGeneratorMixin


class WGANGPModule(LatentGeneratorMixin, ConditionalGeneratorModule):
    """Networks and losses of the conditional WGAN-GP of Viñas et al. (2022).

    Generator: MLP over ``[z ‖ continuous covariates ‖ embeddings]`` -> genes.
    Critic: MLP over ``[x ‖ continuous covariates ‖ embeddings]`` -> one unbounded score.
    Generator and critic have separate embeddings, one per categorical covariate, of size
    ``floor(sqrt(n_categories)) + 1``. ReLU hidden layers, linear outputs.

    Parameters
    ----------
    n_input
        Number of genes.
    n_cats_per_cov
        Number of categories of each categorical covariate.
    n_continuous_cov
        Number of continuous covariates.
    n_latent
        Size of the noise vector ``z``.
    n_hidden_generator, n_hidden_critic
        Hidden layer widths.
    gp_weight
        Weight λ of the gradient penalty.
    scaling
        Scaling mode (see :class:`~scgensynth.nn.ExpressionScaling`).
    n_components
        Train in the principal subspace of the training data
        (:class:`~scgensynth.nn.LinearSubspace`, fitted before training): the generator
        outputs and the critic reads ``n_components`` coordinates instead of every gene, and
        generated coordinates are decoded to genes with per-gene residual noise. ``None``
        (default): gene space, as in the paper.

    Examples
    --------
    >>> module = WGANGPModule(n_input=467, n_cats_per_cov=[26], n_latent=8)
    >>> cat = torch.tensor([[3], [3], [7]])
    >>> module.generate_scaled(3, cat).shape
    torch.Size([3, 467])
    >>> module.critic_score(torch.zeros(3, 467), cat).shape
    torch.Size([3])
    >>> sorted(module.critic_loss(torch.zeros(3, 467), cat))
    ['loss', 'penalty', 'wasserstein']
    """

    def __init__(
        self,
        n_input: int,
        n_cats_per_cov: Sequence[int] = (),
        n_continuous_cov: int = 0,
        n_latent: int = 64,
        n_hidden_generator: Sequence[int] = (256, 256),
        n_hidden_critic: Sequence[int] = (256, 256),
        gp_weight: float = 10.0,
        scaling: str = "standardize",
        n_components: int | None = None,
    ):
        super().__init__(n_input, n_cats_per_cov, n_continuous_cov, scaling)
        self.n_latent = int(n_latent)
        self.gp_weight = float(gp_weight)
        self.subspace = None if n_components is None else LinearSubspace(n_input, n_components)
        width = self.n_input if self.subspace is None else self.subspace.n_components
        self.generator_embedding = CovariateEmbedder(self.n_cats_per_cov, self.n_continuous_cov)
        self.critic_embedding = CovariateEmbedder(self.n_cats_per_cov, self.n_continuous_cov)
        self.generator = MLP(
            self.n_latent + self.generator_embedding.n_output, width, n_hidden_generator
        )
        self.critic = MLP(width + self.critic_embedding.n_output, 1, n_hidden_critic)

    # -- networks (generation: LatentGeneratorMixin) --------------------------------------------
    def _condition(self, embedder, cat, cont):
        return embedder(cat, self.standardize_continuous(cont))

    def _to_critic_space(self, x_scaled: torch.Tensor) -> torch.Tensor:
        return x_scaled if self.subspace is None else self.subspace.project(x_scaled)

    def _critic(self, h, cat=None, cont=None) -> torch.Tensor:
        """The critic on what it reads (genes, or subspace coordinates)."""
        c = self._condition(self.critic_embedding, cat, cont)
        return self.critic(h if c is None else torch.cat([h, c], dim=-1)).squeeze(-1)

    def _generate_network(self, n, cat=None, cont=None) -> torch.Tensor:
        """What the critic reads of generated samples (genes, or subspace coordinates)."""
        if self.subspace is None:
            return self.generate_scaled(n, cat, cont)  # a subclass's own generation included
        return LatentGeneratorMixin.generate_scaled(self, n, cat, cont)

    def generate_scaled(self, n, cat=None, cont=None, z=None, generator=None, **kwargs):
        """Generated samples in network space (decoded from the subspace if there is one)."""
        out = LatentGeneratorMixin.generate_scaled(
            self, n, cat, cont, z=z, generator=generator, **kwargs
        )
        return out if self.subspace is None else self.subspace.expand(out, generator)

    def critic_score(self, x_scaled, cat=None, cont=None) -> torch.Tensor:
        """Unbounded critic score of samples in network space, shape ``(n,)``."""
        return self._critic(self._to_critic_space(x_scaled), cat, cont)

    # -- losses -------------------------------------------------------------------------------
    def critic_loss(self, x_scaled, cat=None, cont=None) -> dict[str, torch.Tensor]:
        """Wasserstein critic loss plus gradient penalty (covariates held)."""
        n = x_scaled.shape[0]
        real = self._to_critic_space(x_scaled)
        with torch.no_grad():
            fake = self._generate_network(n, cat, cont)
        real_score = self._critic(real, cat, cont)
        fake_score = self._critic(fake, cat, cont)
        wasserstein = real_score.mean() - fake_score.mean()
        eps = torch.rand(n, 1, device=x_scaled.device)
        penalty = self.gradient_penalty(real, fake, eps, cat, cont)
        loss = -wasserstein + self.gp_weight * penalty
        return {"loss": loss, "wasserstein": wasserstein.detach(), "penalty": penalty.detach()}

    def gradient_penalty(self, real, fake, eps, cat=None, cont=None) -> torch.Tensor:
        """``mean((‖∇ critic(x̂)‖ - 1)²)`` at ``x̂ = eps · real + (1 - eps) · fake``, in float32.

        ``real`` and ``fake`` are what the critic reads (genes, or subspace coordinates),
        ``eps`` one weight per row. The interpolation, the critic call and its gradient run
        in float32 with autocast off, whatever the training precision: under
        ``precision="16-mixed"`` the gradient of the critic, taken with ``create_graph=True``
        outside the loss scaler, would otherwise be computed in float16 and can overflow or
        underflow (non-finite losses). In float32 training this is the plain computation.

        Examples
        --------
        >>> module = WGANGPModule(n_input=20, n_cats_per_cov=[3], n_latent=4)
        >>> cat = torch.tensor([[0], [2]])
        >>> real, fake, eps = torch.randn(2, 20), torch.randn(2, 20), torch.rand(2, 1)
        >>> with torch.autocast("cpu", dtype=torch.bfloat16):
        ...     penalty = module.gradient_penalty(real, fake.bfloat16(), eps, cat)
        >>> penalty.dtype
        torch.float32
        """
        float32 = torch.float32
        with torch.autocast(real.device.type, enabled=False):
            real, fake, eps = real.to(float32), fake.to(float32), eps.to(float32)
            cont = None if cont is None else cont.to(float32)
            interp = (eps * real + (1 - eps) * fake).requires_grad_(True)
            score = self._critic(interp, cat, cont)
            (grad,) = torch.autograd.grad(score.sum(), interp, create_graph=True)
            return ((grad.norm(2, dim=1) - 1) ** 2).mean()

    def generator_loss(self, n: int, cat=None, cont=None) -> torch.Tensor:
        """``-critic(G(z, c))`` with covariates ``c`` of a real mini-batch."""
        return -self._critic(self._generate_network(n, cat, cont), cat, cont).mean()

    def loss(self, tensors, inference_outputs, generative_outputs, **kwargs) -> LossOutput:
        """Generator loss of a mini-batch, with the critic's Wasserstein estimate as a metric."""
        real = inference_outputs["x_scaled"]
        cat, cont = inference_outputs["cat"], inference_outputs["cont"]
        fake = generative_outputs["x_scaled"]
        gen = -self.critic_score(fake, cat, cont).mean()
        w = self.critic_score(real, cat, cont).mean() + gen
        return LossOutput(
            loss=gen, n_obs_minibatch=real.shape[0], extra_metrics={"wasserstein": w}
        )
