from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ._wgan_plan import WGANGPTrainingPlan

if TYPE_CHECKING:
    from scgensynth.module import GANModule


class GANTrainingPlan(WGANGPTrainingPlan):
    """Discriminator/generator loop of the conditional vanilla GAN (manual optimisation).

    Every mini-batch updates the discriminator once with binary cross-entropy; every
    ``n_critic``-th mini-batch (default: every one) also updates the generator with the
    non-saturating loss, generated samples taking the covariates of that real mini-batch.
    Logged per epoch: ``discriminator_loss``, ``generator_loss``, ``d_real`` and ``d_fake``
    (mean probability the discriminator gives real and generated training samples); on
    held-out samples ``discriminator_loss_validation``, ``d_real_validation`` and
    ``d_fake_validation``.

    The defaults are the usual GAN settings of Radford et al. (2016) (Adam, betas
    ``(0.5, 0.999)``, one discriminator step per generator step, learning rate 2e-4 for the
    discriminator) except a faster generator (1e-3): on small data the discriminator
    otherwise wins at once and the generator stops learning. Lacan et al. (2023) do not
    prescribe settings for their vanilla GAN.

    Parameters
    ----------
    module
        The :class:`~scgensynth.module.GANModule` to train.
    lr_generator, lr_critic
        Learning rates of the generator and of the discriminator (the argument names are
        those of :class:`WGANGPTrainingPlan`, so one set of arguments serves both models).
    n_critic
        Discriminator updates per generator update.
    optimizer
        ``"adam"`` (betas ``(0.5, 0.999)``) or ``"rmsprop"``.
    weight_decay
        L2 penalty of both optimisers.
    anneal_instance_noise
        Decay the module's instance noise linearly from its full value at the first epoch to
        0 at the end of training (``module.noise_scale = 1 - epoch / max_epochs``).

    Examples
    --------
    >>> from scgensynth.module import GANModule
    >>> plan = GANTrainingPlan(GANModule(n_input=10))
    >>> [type(o).__name__ for o in plan.configure_optimizers()]
    ['Adam', 'Adam']
    >>> plan.configure_optimizers()[0].defaults["betas"]
    (0.5, 0.999)
    """

    def __init__(
        self,
        module: GANModule,
        *,
        lr_generator: float = 1e-3,
        lr_critic: float = 2e-4,
        n_critic: int = 1,
        optimizer: str = "adam",
        weight_decay: float = 0.0,
        anneal_instance_noise: bool = True,
    ):
        self.anneal_instance_noise = bool(anneal_instance_noise)
        super().__init__(
            module,
            lr_generator=lr_generator,
            lr_critic=lr_critic,
            n_critic=n_critic,
            optimizer=optimizer,
            weight_decay=weight_decay,
        )

    _adam_betas = (0.5, 0.999)
    logged_losses = ("discriminator_loss", "generator_loss", "d_real", "d_fake")
    progress_losses = ("d_real", "d_fake")

    def critic_step_losses(self, x_scaled, cat, cont) -> tuple[torch.Tensor, dict]:
        """Discriminator cross-entropy and the mean probabilities it gives real and fake."""
        if self.anneal_instance_noise and self.trainer.max_epochs:
            # linear decay of the instance noise to 0 at the end of training
            self.module.noise_scale = 1.0 - self.current_epoch / self.trainer.max_epochs
        out = self.module.discriminator_loss(x_scaled, cat, cont)
        logged = {
            "discriminator_loss": out["loss"],
            "d_real": out["d_real"],
            "d_fake": out["d_fake"],
        }
        return out["loss"], logged

    def validation_step(self, batch, batch_idx):
        """Discriminator loss and mean probabilities on held-out real samples."""
        x, cat, cont = self.module.parse_batch(batch)
        x_scaled = self.module.scaling(x)
        with torch.no_grad():
            out = self.module.discriminator_loss(x_scaled, cat, cont)
        n = x.shape[0]
        self.log("discriminator_loss_validation", out["loss"], on_epoch=True, batch_size=n)
        self.log("d_real_validation", out["d_real"], on_epoch=True, batch_size=n)
        self.log("d_fake_validation", out["d_fake"], on_epoch=True, batch_size=n)
