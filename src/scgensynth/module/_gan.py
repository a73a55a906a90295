from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from scvi.module.base import LossOutput

from scgensynth.nn import MLP

from ._wgan import WGANGPModule


class GANModule(WGANGPModule):
    """Networks and losses of the conditional vanilla GAN (Lacan et al. 2023).

    The networks and the conditioning are those of :class:`WGANGPModule` (generator over
    ``[z ‖ continuous covariates ‖ embeddings]``, discriminator over ``[x ‖ continuous
    covariates ‖ embeddings]`` with embeddings of its own); only the losses differ. The
    discriminator (kept under the attribute names ``critic`` / ``critic_embedding``, so the
    same training plumbing serves both models) outputs a logit, ``D(x) = sigmoid(logit)``,
    and is trained with binary cross-entropy; the generator uses the non-saturating loss
    ``-log D(G(z, c))`` (Goodfellow et al. 2014), i.e. it maximises ``log D(G(z, c))``.

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
        Hidden layer widths of the generator and of the discriminator.
    scaling
        Scaling mode (see :class:`~scgensynth.nn.ExpressionScaling`).
    label_smoothing
        One-sided label smoothing (target ``1 - label_smoothing`` for real samples).
    instance_noise
        Standard deviation of the Gaussian noise added to both real and generated inputs of
        the discriminator in training mode, times ``noise_scale`` (which the training plan
        decays from 1 to 0).
    dropout
        Dropout rate after each hidden layer of the discriminator.

    Examples
    --------
    >>> module = GANModule(n_input=467, n_cats_per_cov=[26], n_latent=8)
    >>> cat = torch.tensor([[3], [3], [7]])
    >>> module.generate_scaled(3, cat).shape
    torch.Size([3, 467])
    >>> module.discriminator_logit(torch.zeros(3, 467), cat).shape
    torch.Size([3])
    >>> sorted(module.discriminator_loss(torch.zeros(3, 467), cat))
    ['d_fake', 'd_real', 'loss']
    """

    def __init__(
        self,
        n_input: int,
        n_cats_per_cov: Sequence[int] = (),
        n_continuous_cov: int = 0,
        n_latent: int = 64,
        n_hidden_generator: Sequence[int] = (256, 256),
        n_hidden_critic: Sequence[int] = (256, 256),
        scaling: str = "standardize",
        label_smoothing: float = 0.0,
        instance_noise: float = 1.0,
        dropout: float = 0.0,
    ):
        if not 0 <= dropout < 1:
            msg = f"dropout must be in [0, 1), not {dropout}."
            raise ValueError(msg)
        if not 0 <= label_smoothing < 0.5:
            msg = f"label_smoothing must be in [0, 0.5), not {label_smoothing}."
            raise ValueError(msg)
        if instance_noise < 0:
            msg = f"instance_noise must be >= 0, not {instance_noise}."
            raise ValueError(msg)
        super().__init__(
            n_input,
            n_cats_per_cov,
            n_continuous_cov,
            n_latent=n_latent,
            n_hidden_generator=n_hidden_generator,
            n_hidden_critic=n_hidden_critic,
            gp_weight=0.0,  # no gradient penalty in a vanilla GAN
            scaling=scaling,
        )
        self.label_smoothing = float(label_smoothing)
        self.instance_noise = float(instance_noise)
        self.dropout = float(dropout)
        self.noise_scale = 1.0  # the training plan may anneal the instance noise
        if dropout > 0:
            self.critic = MLP(
                self.n_input + self.critic_embedding.n_output, 1, n_hidden_critic, dropout=dropout
            )

    def discriminator_logit(self, x_scaled, cat=None, cont=None) -> torch.Tensor:
        """Logit of the probability that samples (network space) are real, shape ``(n,)``.

        In training mode with ``instance_noise > 0``, Gaussian noise of standard deviation
        ``noise_scale * instance_noise`` is added to the samples first (real and generated
        alike).
        """
        if self.training and self.instance_noise > 0:
            sd = self.noise_scale * self.instance_noise
            x_scaled = x_scaled + sd * torch.randn_like(x_scaled)
        return self.critic_score(x_scaled, cat, cont)

    # -- losses -------------------------------------------------------------------------------
    def discriminator_loss(
        self, x_scaled, cat=None, cont=None, fake: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Binary cross-entropy of the discriminator on real and generated samples.

        ``loss = -mean log D(x) - mean log(1 - D(G(z, c)))``, with generated samples given
        the covariates of the real ones; ``d_real`` and ``d_fake`` are the mean probabilities
        ``D`` gives real and generated samples (detached).
        """
        if fake is None:
            with torch.no_grad():
                fake = self.generate_scaled(x_scaled.shape[0], cat, cont)
        real_logit = self.discriminator_logit(x_scaled, cat, cont)
        fake_logit = self.discriminator_logit(fake.detach(), cat, cont)
        real_target = torch.full_like(real_logit, 1.0 - self.label_smoothing)
        loss = F.binary_cross_entropy_with_logits(
            real_logit, real_target
        ) + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))
        return {
            "loss": loss,
            "d_real": torch.sigmoid(real_logit).mean().detach(),
            "d_fake": torch.sigmoid(fake_logit).mean().detach(),
        }

    def generator_loss(self, n: int, cat=None, cont=None) -> torch.Tensor:
        """Non-saturating generator loss ``-mean log D(G(z, c))``."""
        fake = self.generate_scaled(n, cat, cont)
        logit = self.discriminator_logit(fake, cat, cont)
        return F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit))

    def critic_loss(self, x_scaled, cat=None, cont=None) -> dict[str, torch.Tensor]:
        """Alias of :meth:`discriminator_loss` (the name :class:`WGANGPModule` uses)."""
        return self.discriminator_loss(x_scaled, cat, cont)

    def loss(self, tensors, inference_outputs, generative_outputs, **kwargs) -> LossOutput:
        """Generator loss of a mini-batch, with the discriminator's ``d_real``/``d_fake``."""
        real = inference_outputs["x_scaled"]
        cat, cont = inference_outputs["cat"], inference_outputs["cont"]
        fake = generative_outputs["x_scaled"]
        fake_logit = self.discriminator_logit(fake, cat, cont)
        gen = F.binary_cross_entropy_with_logits(fake_logit, torch.ones_like(fake_logit))
        d_real = torch.sigmoid(self.discriminator_logit(real, cat, cont)).mean()
        return LossOutput(
            loss=gen,
            n_obs_minibatch=real.shape[0],
            extra_metrics={"d_real": d_real, "d_fake": torch.sigmoid(fake_logit).mean()},
        )
