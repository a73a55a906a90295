from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ._base import EpochMeanPlan

if TYPE_CHECKING:
    from scgensynth.module import GMDAModule


class GMDATrainingPlan(EpochMeanPlan):
    """Training loop of GMDA: one Adam optimiser on the probe-alignment loss, no adversary.

    Each mini-batch: generated samples take the covariates of the real mini-batch, the
    module computes the GMDA loss over ``n_probes`` probes (those kept from the previous
    step plus new ones) and ``n_dark_probes`` dark probes (see
    :class:`~scgensynth.module.GMDAModule`), the generator takes one Adam step, and
    the share ``persistence`` of real probes with the highest loss is kept for the next
    step (genes, centre values, widths and conditions; the state lives in the plan, it is
    not saved with the model). The learning rate follows a cosine decay from ``lr`` to
    ``lr * lr_min_ratio`` over the training length.

    Logged per epoch (epoch means, kept in the model's ``history``): ``gmda_loss`` (mean
    loss of the real probes), ``dark_loss`` (mean loss of the dark probes) and
    ``total_loss`` (``gmda_loss + dark_weight * dark_loss``, what is minimised); on held-out
    samples, with fresh probes, ``gmda_loss_validation``.

    Parameters
    ----------
    module
        The :class:`~scgensynth.module.GMDAModule` to train.
    lr
        Initial learning rate of Adam.
    lr_min_ratio
        Final learning rate as a share of ``lr`` (1 keeps it constant).
    weight_decay
        L2 penalty.

    Examples
    --------
    >>> from scgensynth.module import GMDAModule
    >>> plan = GMDATrainingPlan(GMDAModule(n_input=10), lr=1e-3)
    >>> type(plan.configure_optimizers()["optimizer"]).__name__
    'Adam'
    """

    logged_losses = ("gmda_loss", "dark_loss", "total_loss", "gmda_loss_validation")
    progress_losses = ("gmda_loss",)

    def __init__(
        self,
        module: GMDAModule,
        *,
        lr: float = 1e-2,
        lr_min_ratio: float = 0.05,
        weight_decay: float = 0.0,
    ):
        super().__init__()
        if not lr > 0:
            msg = f"lr must be > 0, not {lr!r}; e.g. lr=1e-2."
            raise ValueError(msg)
        if not 0 < lr_min_ratio <= 1:
            msg = (
                f"lr_min_ratio must be in (0, 1] (the final learning rate as a share of lr; 1 "
                f"keeps it constant), not {lr_min_ratio!r}."
            )
            raise ValueError(msg)
        if not weight_decay >= 0:
            msg = f"weight_decay must be >= 0, not {weight_decay!r}."
            raise ValueError(msg)
        self.module = module
        self.lr = float(lr)
        self.lr_min_ratio = float(lr_min_ratio)
        self.weight_decay = float(weight_decay)
        #: probes kept from the previous step (persistence); not part of the saved model
        self.kept_probes = None  # the module's Probes, or None

    def on_train_start(self):
        """Start without kept probes (unless a resumed run restored them)."""
        if not getattr(self, "_resumed", False):
            self.kept_probes = None
        self._resumed = False

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Keep the persistent probes in a checkpoint, as tensors."""
        kept = self.kept_probes
        checkpoint["sgs_kept_probes"] = None if kept is None else dict(vars(kept))

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Restore the persistent probes of a checkpoint."""
        kept = checkpoint.get("sgs_kept_probes")
        self.kept_probes = None if kept is None else self.module.restore_probes(kept)
        self._resumed = True

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(
            self.module.parameters(), lr=self.lr, weight_decay=self.weight_decay
        )
        total = None
        if self._trainer is not None:
            total = self.trainer.estimated_stepping_batches
        if not total or total == float("inf") or self.lr_min_ratio >= 1:
            return {"optimizer": optimizer}
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(1, int(total)), eta_min=self.lr * self.lr_min_ratio
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def training_step(self, batch, batch_idx):
        """GMDA loss of the mini-batch; keeps the hardest probes for the next step."""
        x, cat, cont = self.module.parse_batch(batch)
        kept = self.kept_probes
        if kept is not None:
            kept = kept.to(x.device)
        out = self.module.gmda_loss(self.module.scaling(x), cat, cont, kept=kept)
        self.kept_probes = self.module.kept_probes(out["probes"], out["probe_losses"])
        n = x.shape[0]
        self.accumulate("gmda_loss", out["gmda_loss"], n)
        self.accumulate("dark_loss", out["dark_loss"], n)
        self.accumulate("total_loss", out["loss"], n)
        return out["loss"]

    def validation_step(self, batch, batch_idx):
        """GMDA loss of held-out samples with fresh probes."""
        x, cat, cont = self.module.parse_batch(batch)
        out = self.module.gmda_loss(self.module.scaling(x), cat, cont)
        self.log("gmda_loss_validation", out["gmda_loss"], on_epoch=True, batch_size=x.shape[0])
