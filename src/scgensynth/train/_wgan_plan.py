from __future__ import annotations

import torch

from scgensynth.module import WGANGPModule

from ._base import EpochMeanPlan

_OPTIMIZERS = {"rmsprop": torch.optim.RMSprop, "adam": torch.optim.Adam}


class WGANGPTrainingPlan(EpochMeanPlan):
    """Critic/generator loop of WGAN-GP with Lightning's manual optimisation.

    Every mini-batch updates the critic once; every ``n_critic``-th mini-batch also updates
    the generator, with covariates taken from that real mini-batch. Logged per epoch:
    ``critic_loss``, ``generator_loss``, ``wasserstein`` (the critic's estimate of the
    Wasserstein distance) and ``gradient_penalty``.

    Parameters
    ----------
    module
        The :class:`~scgensynth.module.WGANGPModule` to train.
    lr_generator, lr_critic
        Learning rates (Viñas et al.: 5e-4 for both, with RMSprop).
    n_critic
        Critic updates per generator update.
    optimizer
        ``"rmsprop"`` or ``"adam"`` (Adam uses betas ``(0.5, 0.9)``).
    weight_decay
        L2 penalty of both optimisers.

    Examples
    --------
    >>> from scgensynth.module import WGANGPModule
    >>> plan = WGANGPTrainingPlan(WGANGPModule(n_input=10), n_critic=5)
    >>> [type(o).__name__ for o in plan.configure_optimizers()]
    ['RMSprop', 'RMSprop']
    """

    def __init__(
        self,
        module: WGANGPModule,
        *,
        lr_generator: float = 5e-4,
        lr_critic: float = 5e-4,
        n_critic: int = 5,
        optimizer: str = "rmsprop",
        weight_decay: float = 0.0,
    ):
        super().__init__()
        if optimizer not in _OPTIMIZERS:
            msg = f"optimizer must be one of {sorted(_OPTIMIZERS)}, not {optimizer!r}."
            raise ValueError(msg)
        if int(n_critic) < 1:
            msg = f"n_critic must be >= 1, not {n_critic}."
            raise ValueError(msg)
        self.module = module
        self.lr_generator = float(lr_generator)
        self.lr_critic = float(lr_critic)
        self.n_critic = int(n_critic)
        self.optimizer_name = optimizer
        self.weight_decay = float(weight_decay)
        self.automatic_optimization = False
        self._critic_steps = 0

    #: Adam's betas when ``optimizer="adam"``
    _adam_betas: tuple[float, float] = (0.5, 0.9)
    logged_losses = ("critic_loss", "generator_loss", "wasserstein", "gradient_penalty")
    progress_losses = ("wasserstein",)

    def critic_step_losses(self, x_scaled, cat, cont) -> tuple[torch.Tensor, dict]:
        """The critic's loss on a mini-batch and the values to log under their names."""
        out = self.module.critic_loss(x_scaled, cat, cont)
        logged = {
            "critic_loss": out["loss"],
            "wasserstein": out["wasserstein"],
            "gradient_penalty": out["penalty"],
        }
        return out["loss"], logged

    def _make_optimizer(self, params, lr):
        kwargs = {"lr": lr, "weight_decay": self.weight_decay}
        if self.optimizer_name == "adam":
            kwargs["betas"] = self._adam_betas
        return _OPTIMIZERS[self.optimizer_name](params, **kwargs)

    def configure_optimizers(self):
        m = self.module
        gen_params = list(m.generator.parameters()) + list(m.generator_embedding.parameters())
        critic_params = list(m.critic.parameters()) + list(m.critic_embedding.parameters())
        return (
            self._make_optimizer(critic_params, self.lr_critic),
            self._make_optimizer(gen_params, self.lr_generator),
        )

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Keep the critic-step counter (it decides which batches update the generator)."""
        checkpoint["sgs_critic_steps"] = int(self._critic_steps)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Restore the critic-step counter of a checkpoint."""
        self._critic_steps = int(checkpoint.get("sgs_critic_steps", 0))

    def training_step(self, batch, batch_idx):
        """One critic update, and a generator update every ``n_critic`` batches."""
        opt_critic, opt_generator = self.optimizers()
        x, cat, cont = self.module.parse_batch(batch)
        x_scaled = self.module.scaling(x)
        n = x.shape[0]

        loss, logged = self.critic_step_losses(x_scaled, cat, cont)
        opt_critic.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt_critic.step()
        self._critic_steps += 1
        for name, value in logged.items():
            self.accumulate(name, value, n)

        if self._critic_steps % self.n_critic == 0:
            g_loss = self.module.generator_loss(n, cat, cont)
            opt_generator.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            opt_generator.step()
            self.accumulate("generator_loss", g_loss, n)

    def validation_step(self, batch, batch_idx):
        """Critic's Wasserstein estimate on held-out samples (no gradient penalty)."""
        x, cat, cont = self.module.parse_batch(batch)
        x_scaled = self.module.scaling(x)
        fake = self.module.generate_scaled(x.shape[0], cat, cont)
        w = (
            self.module.critic_score(x_scaled, cat, cont).mean()
            - self.module.critic_score(fake, cat, cont).mean()
        )
        self.log("wasserstein_validation", w, on_epoch=True, batch_size=x.shape[0])
