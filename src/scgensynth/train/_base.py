"""What every scgensynth training plan shares: epoch means of its losses, declared."""

from __future__ import annotations

from typing import ClassVar

import lightning.pytorch as pl
import torch


class EpochMeanPlan(pl.LightningModule):
    """A Lightning plan that logs the epoch means of its per-batch losses.

    Lightning's ``self.log`` costs about 2 ms a call: the plan sums each loss on the device
    (:meth:`accumulate`, weighted by the batch size) and logs the means once per epoch,
    where they land in the model's ``history_``. A plan declares the losses it logs in
    :attr:`logged_losses` (what :func:`scgensynth.pl.training_history` draws) and those shown
    in the progress bar in :attr:`progress_losses`.

    Examples
    --------
    >>> class MyPlan(EpochMeanPlan):
    ...     logged_losses = ("my_loss",)
    >>> MyPlan().logged_losses
    ('my_loss',)
    """

    #: the losses the plan logs per epoch that plots draw by default, in drawing order (other
    #: logged values, such as shares of successes, are drawn when asked for)
    logged_losses: ClassVar[tuple[str, ...]] = ()
    #: the epoch means shown in the progress bar
    progress_losses: ClassVar[tuple[str, ...]] = ()

    def __init__(self):
        super().__init__()
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}

    def accumulate(self, name: str, value: torch.Tensor, n: int) -> None:
        """Add a batch's mean ``value`` of ``name`` over ``n`` samples to the epoch's sum.

        The sum is kept in float32 at least: under mixed precision a loss computed in
        float16 (e.g. a critic's mean score) would overflow float16's range (65,504) once
        summed over an epoch's batches, times their sizes, and a bfloat16 sum keeps 3
        significant digits.
        """
        value = value.detach()
        if value.is_floating_point() and value.dtype.itemsize < 4:
            value = value.float()
        value = value * n
        self._sums[name] = self._sums[name] + value if name in self._sums else value
        self._counts[name] = self._counts.get(name, 0) + n

    def on_train_epoch_end(self):
        """Log the epoch means of the losses (kept in the model's ``history``)."""
        for name, total in self._sums.items():
            self.log(name, total / self._counts[name], prog_bar=name in self.progress_losses)
        self._sums, self._counts = {}, {}
