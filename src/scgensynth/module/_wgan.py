from __future__ import annotations

from collections.abc import Sequence

import torch
from scvi.module.base import LossOutput

from scgensynth.nn import MLP, CovariateEmbedder

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
    ):
        super().__init__(n_input, n_cats_per_cov, n_continuous_cov, scaling)
        self.n_latent = int(n_latent)
        self.gp_weight = float(gp_weight)
        self.generator_embedding = CovariateEmbedder(self.n_cats_per_cov, self.n_continuous_cov)
        self.critic_embedding = CovariateEmbedder(self.n_cats_per_cov, self.n_continuous_cov)
        self.generator = MLP(
            self.n_latent + self.generator_embedding.n_output, self.n_input, n_hidden_generator
        )
        self.critic = MLP(self.n_input + self.critic_embedding.n_output, 1, n_hidden_critic)

    # -- networks (generation: LatentGeneratorMixin) --------------------------------------------
    def _condition(self, embedder, cat, cont):
        return embedder(cat, self.standardize_continuous(cont))

    def critic_score(self, x_scaled, cat=None, cont=None) -> torch.Tensor:
        """Unbounded critic score of samples in network space, shape ``(n,)``."""
        c = self._condition(self.critic_embedding, cat, cont)
        h = x_scaled if c is None else torch.cat([x_scaled, c], dim=-1)
        return self.critic(h).squeeze(-1)

    # -- losses -------------------------------------------------------------------------------
    def critic_loss(self, x_scaled, cat=None, cont=None) -> dict[str, torch.Tensor]:
        """Wasserstein critic loss plus gradient penalty (covariates held)."""
        n = x_scaled.shape[0]
        with torch.no_grad():
            fake = self.generate_scaled(n, cat, cont)
        real_score = self.critic_score(x_scaled, cat, cont)
        fake_score = self.critic_score(fake, cat, cont)
        wasserstein = real_score.mean() - fake_score.mean()
        eps = torch.rand(n, 1, device=x_scaled.device)
        interp = (eps * x_scaled + (1 - eps) * fake).requires_grad_(True)
        score = self.critic_score(interp, cat, cont)
        (grad,) = torch.autograd.grad(score.sum(), interp, create_graph=True)
        penalty = ((grad.norm(2, dim=1) - 1) ** 2).mean()
        loss = -wasserstein + self.gp_weight * penalty
        return {"loss": loss, "wasserstein": wasserstein.detach(), "penalty": penalty.detach()}

    def generator_loss(self, n: int, cat=None, cont=None) -> torch.Tensor:
        """``-critic(G(z, c))`` with covariates ``c`` of a real mini-batch."""
        fake = self.generate_scaled(n, cat, cont)
        return -self.critic_score(fake, cat, cont).mean()

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
