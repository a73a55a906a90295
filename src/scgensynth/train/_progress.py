"""A progress bar that counts training steps (mini-batches), as the length is set."""

from __future__ import annotations

import sys
from typing import Any

from lightning.pytorch.callbacks import ProgressBar, Timer
from tqdm.std import tqdm

from scgensynth._utils._docs import doctest_skip


@doctest_skip("needs a Lightning Trainer")
class StepProgressBar(ProgressBar):
    """Training progress in steps, the unit of ``n_steps``; an early stop completes the bar.

    scvi-tools' bar counts epochs; scgensynth's training length is set in optimiser steps
    (mini-batches), so this bar shows ``steps done / steps planned`` and the losses of the
    last epoch. When training stops early (model selection found no improvement, or
    ``max_time`` ran out), the bar's total becomes the steps run and it ends at 100 % with
    the reason, rather than stalling at 60 % as if something had failed. A plain text bar
    (no notebook widget, so no ``TqdmWarning`` where ipywidgets is missing) on stderr,
    refreshed at most twice a second; only the first process draws it.

    Parameters
    ----------
    description
        What is trained (e.g. ``"WGANGP"``).
    total_steps
        Steps planned (per process).

    Examples
    --------
    >>> bar = StepProgressBar("WGANGP", total_steps=2000)
    >>> trainer = lightning.pytorch.Trainer(callbacks=[bar], max_epochs=200)
    """

    def __init__(self, description: str, total_steps: int):
        super().__init__()
        self.description = description
        self.total_steps = int(total_steps)
        self.bar: tqdm | None = None
        self.steps = 0
        self._enabled = True

    # -- Lightning's ProgressBar interface --------------------------------------------------
    def disable(self) -> None:
        """Draw nothing (Lightning calls this where the bar must stay silent)."""
        self._enabled = False

    def enable(self) -> None:
        """Draw the bar again."""
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        """Whether the bar is drawn."""
        return self._enabled

    def on_train_start(self, trainer, pl_module) -> None:
        self.steps = trainer.current_epoch * max(1, int(trainer.num_training_batches or 1))
        if not (self._enabled and trainer.is_global_zero):
            return
        self.bar = tqdm(
            total=self.total_steps, initial=self.steps, desc=f"Training {self.description}",
            unit="step", file=sys.stderr, mininterval=0.5, dynamic_ncols=True, leave=True,
        )  # fmt: skip

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps += 1
        if self.bar is not None:
            self.bar.update(1)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.bar is not None:
            shown = _short_metrics(self.get_metrics(trainer, pl_module))
            if shown:
                self.bar.set_postfix(shown, refresh=False)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.bar is None:
            return
        if self.steps < self.total_steps:  # stopped early: the run is complete, say why
            reason = "max_time reached" if _timed_out(trainer) else "stopped early"
            self.bar.total = self.steps
            self.bar.set_description(f"Training {self.description} ({reason})", refresh=False)
        self.bar.close()
        self.bar = None


def _short_metrics(metrics: dict[str, Any]) -> dict[str, str]:
    """The logged losses, compactly (Lightning's ``v_num`` left out)."""
    out = {}
    for name, value in metrics.items():
        if name == "v_num":
            continue
        try:
            out[name] = f"{float(value):.3g}"
        except (TypeError, ValueError):
            continue
    return out


def _timed_out(trainer) -> bool:
    """Whether Lightning's ``max_time`` timer stopped the run."""
    for callback in trainer.callbacks:
        if isinstance(callback, Timer):
            remaining = callback.time_remaining()
            return remaining is not None and remaining <= 0
    return False
