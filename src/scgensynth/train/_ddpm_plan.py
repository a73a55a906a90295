from __future__ import annotations

import torch

from ._base import EpochMeanPlan


class DDPMTrainingPlan(EpochMeanPlan):
    """Training of a denoising diffusion model: one optimiser, the weight average after each step.

    Each mini-batch draws time steps and noise, and minimises the noise-prediction error
    (with covariates dropped at the module's ``p_uncond``); after every optimiser step the
    module's exponential moving average of the weights is updated. Logged per epoch:
    ``diffusion_loss`` (and ``diffusion_loss_validation`` on held-out samples).

    Parameters
    ----------
    module
        The :class:`~scgensynth.module.DDPMModule` to train.
    lr
        Learning rate of AdamW.
    weight_decay
        AdamW's weight decay.
    lr_warmup_steps
        Steps of linear learning-rate warm-up.
    grad_clip
        Largest gradient norm (``None``: no clipping).

    Examples
    --------
    >>> from scgensynth.module import DDPMModule
    >>> plan = DDPMTrainingPlan(DDPMModule(n_input=10, n_hidden=16, n_blocks=1), lr=1e-3)
    >>> type(plan.configure_optimizers()["optimizer"]).__name__
    'AdamW'
    """

    logged_losses = ("diffusion_loss", "diffusion_loss_validation")
    progress_losses = ("diffusion_loss",)

    def __init__(
        self,
        module,
        *,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_warmup_steps: int = 500,
        grad_clip: float | None = 1.0,
    ):
        super().__init__()
        if lr <= 0:
            msg = f"lr must be > 0, not {lr}."
            raise ValueError(msg)
        self.module = module
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.lr_warmup_steps = max(0, int(lr_warmup_steps))
        self.grad_clip = None if grad_clip is None else float(grad_clip)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(
            self.module.denoiser.parameters(), lr=self.lr, weight_decay=self.weight_decay
        )
        warmup = self.lr_warmup_steps

        def factor(step: int) -> float:
            return min(1.0, (step + 1) / warmup) if warmup else 1.0

        scheduler = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_before_optimizer_step(self, optimizer):
        """Clip the gradient norm at ``grad_clip``."""
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.module.denoiser.parameters(), self.grad_clip)

    def training_step(self, batch, batch_idx):
        """Noise-prediction loss of one mini-batch."""
        x, cat, cont = self.module.parse_batch(batch)
        loss = self.module.diffusion_loss(self.module.scaling(x), cat, cont).mean()
        self.accumulate("diffusion_loss", loss, x.shape[0])
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx):
        """Update the weight average after the optimiser step."""
        if self.module.ema_decay > 0:
            self.module.update_ema()

    def validation_step(self, batch, batch_idx):
        """Noise-prediction loss on held-out samples."""
        x, cat, cont = self.module.parse_batch(batch)
        loss = self.module.diffusion_loss(self.module.scaling(x), cat, cont).mean()
        self.log("diffusion_loss_validation", loss, on_epoch=True, batch_size=x.shape[0])
