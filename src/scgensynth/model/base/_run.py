"""One owner of a training run, for every model: split, length, checkpoints, Trainer."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scvi import settings
from scvi.model._utils import use_distributed_sampler
from scvi.model.base import UnsupervisedTrainingMixin

from scgensynth._utils._logging import quiet_training
from scgensynth.train import (
    ResumableCheckpoint,
    StepProgressBar,
    check_checkpoint,
    checkpoint_path,
)

from ._validation import check_training_lengths

logger = logging.getLogger(__name__)


def _n_devices(devices: int | Sequence[int] | str) -> int:
    """Number of processes Lightning starts for ``devices`` (1 when it decides itself)."""
    if isinstance(devices, int) and devices > 0:
        return devices
    if isinstance(devices, str) and devices.strip().isdigit():
        return max(1, int(devices))
    if isinstance(devices, Sequence) and not isinstance(devices, str):
        return max(1, len(devices))
    return 1


def _check_trainer_kwargs(kwargs: dict, plan_args: Sequence[str]) -> None:
    """Refuse misspelt training arguments before anything is built."""
    import inspect

    import lightning.pytorch as pl
    from scvi.train import Trainer

    known = set(inspect.signature(Trainer.__init__).parameters)
    known |= set(inspect.signature(pl.Trainer.__init__).parameters)
    known |= {"callbacks"}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        own = ["n_steps", "batch_size", "train_size", "selection", "selection_every"]
        own += ["patience", "min_steps", "max_epochs", *plan_args]
        msg = (
            f"Unknown training argument(s) {unknown}. The model's own are {own}; anything "
            "else must be an argument of Lightning's Trainer (e.g. enable_progress_bar)."
        )
        raise TypeError(msg)


def _data_parallel_world(kwargs: dict, devices) -> tuple[bool, int]:
    """Whether the strategy shares each epoch's batches among processes, and how many."""
    distributed = use_distributed_sampler(kwargs.get("strategy"))
    return distributed, _n_devices(devices) if distributed else 1


def _make_splitter(
    model, train_idx, val_idx, batch_size: int, distributed: bool, datasplitter_kwargs
):
    """scvi-tools' DataSplitter over fixed train/validation indices.

    A last mini-batch of 1 or 2 samples is dropped (batch norm and the gradient penalty need
    more); with data parallelism each process draws its own share of every epoch's batches.
    """
    datasplitter_kwargs = dict(datasplitter_kwargs or {})
    if distributed:
        datasplitter_kwargs.setdefault("distributed_sampler", True)
    remainder = len(train_idx) % batch_size
    return model._data_splitter_cls(
        model.adata_manager,
        external_indexing=[train_idx, val_idx, np.array([], dtype=int)],
        batch_size=batch_size,
        drop_last=0 < remainder < 3,
        **datasplitter_kwargs,
    )


def _only_item(items: list):
    """The one mini-batch fetched per index list, as tensors (without a batch dimension)."""
    import torch

    return torch.utils.data.default_convert(items[0])


def _poisson_splitter(model, train_idx, val_idx, batch_size, sampler, datasplitter_kwargs):
    """The splitter of :func:`_make_splitter` whose training batches come from ``sampler``.

    ``sampler()`` (called in each process) yields lists of positions in ``train_idx``
    (Poisson sampling for DP-SGD: batch sizes vary and a batch may be empty); validation
    batches are as usual.
    """
    base = model._data_splitter_cls

    class PoissonSplitter(base):
        def train_dataloader(self):
            return self.data_loader_cls(
                self.adata_manager, indices=self.train_idx, sampler=sampler(),
                load_sparse_tensor=self.load_sparse_tensor, pin_memory=self.pin_memory,
                collate_fn=_only_item, **self.data_loader_kwargs,
            )  # fmt: skip

    return PoissonSplitter(
        model.adata_manager,
        external_indexing=[train_idx, val_idx, np.array([], dtype=int)],
        batch_size=batch_size,
        drop_last=True,  # of the (unused) shuffled batches: no warning about their remainder
        **dict(datasplitter_kwargs or {}),
    )


def _check_checkpoint_args(checkpoint_dir, checkpoint_every, resume) -> None:
    if checkpoint_every is not None and (
        isinstance(checkpoint_every, bool)
        or not isinstance(checkpoint_every, int | np.integer)
        or checkpoint_every < 1
    ):
        msg = f"checkpoint_every must be a positive number of epochs, not {checkpoint_every!r}"
        raise ValueError(msg)
    if resume and checkpoint_dir is None:
        msg = "resume=True needs the checkpoint_dir=... the interrupted run wrote to."
        raise ValueError(msg)


def _add_checkpointing(
    callbacks: list,
    kwargs: dict,
    *,
    checkpoint_dir,
    checkpoint_every: int | None,
    resume: bool,
    fingerprint: dict[str, Any],
    max_epochs: int,
) -> None:
    """Add the resumable checkpoint callback, and Lightning's ``ckpt_path`` to resume from."""
    if checkpoint_dir is None:
        return
    every = checkpoint_every or max(1, max_epochs // 20)
    callbacks.append(ResumableCheckpoint(checkpoint_dir, every, fingerprint))
    path = checkpoint_path(checkpoint_dir)
    if resume and path.exists():
        check_checkpoint(path)
        kwargs["ckpt_path"] = str(path)
    elif resume:
        logger.info("No checkpoint in %s yet; training from the start.", checkpoint_dir)
    elif path.exists():
        logger.warning(
            "Replacing the checkpoint in %s (pass resume=True to continue from it).",
            checkpoint_dir,
        )


def _run_fingerprint(
    model, n_train: int, batch_size: int, max_epochs: int, train_size: float, seed: int, **extra
) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: the data's shape and the run's settings."""
    return {
        "class": type(model).__name__,
        "n_obs": int(model.adata.n_obs),
        "n_vars": int(model.adata.n_vars),
        "n_train": int(n_train),
        "batch_size": int(batch_size),
        "max_epochs": int(max_epochs),
        "train_size": float(train_size),
        "seed": int(seed),
        **extra,
    }


def _configure_run(
    model,
    callbacks: list,
    kwargs: dict,
    *,
    train_idx,
    val_idx,
    batch_size: int,
    max_epochs: int,
    batches_per_epoch: int,
    train_size: float,
    seed: int,
    checkpoint_dir,
    checkpoint_every: int | None,
    resume: bool,
    **fingerprint,
) -> None:
    """Checkpointing (the run fingerprinted with ``fingerprint`` added) and validation."""
    _add_checkpointing(
        callbacks, kwargs, checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every,
        resume=resume, max_epochs=max_epochs,
        fingerprint=_run_fingerprint(
            model, len(train_idx), batch_size, max_epochs, train_size, seed, **fingerprint
        ),
    )  # fmt: skip
    _validation_defaults(kwargs, max_epochs, len(val_idx), batches_per_epoch)


def _validation_defaults(kwargs: dict, max_epochs: int, n_val: int, batches_per_epoch: int):
    """Validate about 20 times per run (never without held-out samples); log each epoch."""
    kwargs.setdefault("check_val_every_n_epoch", max(1, max_epochs // 20) if n_val else None)
    if not n_val:
        kwargs["limit_val_batches"] = 0
    kwargs.setdefault("log_every_n_steps", max(1, min(50, batches_per_epoch)))


def _finish_training(model, train_idx, val_idx, batches_per_epoch: int) -> None:
    """Keep the split, and make the logged history numeric (scvi-tools keeps objects)."""
    model.train_indices_ = np.asarray(train_idx)
    model.steps_per_epoch_ = int(batches_per_epoch)
    model.validation_indices_ = np.asarray(val_idx)
    for key, frame in (model.history_ or {}).items():
        with contextlib.suppress(TypeError, ValueError):
            model.history_[key] = frame.astype(float)


class TrainingRun:
    """One training run of a model: its split, its length and how Lightning runs it.

    Every scgensynth model trains through one: :meth:`plan` checks the arguments, splits the
    samples (``model._split``, stratified) and turns steps into epochs; the model adds what
    is its own (model-selection callbacks, plan inputs); :meth:`launch` adds checkpoints
    and validation defaults, runs scvi-tools' ``train`` quietly, and keeps the split and a
    numeric history on the model.
    """

    def __init__(self, model, plan_kwargs: dict, kwargs: dict, lengths: dict[str, Any]):
        self.model = model
        self.plan_kwargs = plan_kwargs
        self.kwargs = kwargs
        self.lengths = lengths
        self.callbacks: list = list(kwargs.pop("callbacks", []))
        self.seed = int(settings.seed or 0)
        self.batch_size = int(lengths["batch_size"])
        self.train_size = float(lengths["train_size"])
        self.train_idx, self.val_idx = model._split(self.train_size, self.seed)
        self.max_epochs = lengths["max_epochs"]
        self.distributed = False
        self.world = 1
        self.batches_per_epoch = 1

    @classmethod
    def plan(
        cls,
        model,
        *,
        n_steps: Any,
        max_epochs: Any,
        batch_size: Any,
        train_size: Any,
        devices: Any,
        plan_kwargs: dict | None,
        kwargs: dict,
        default_n_steps: int,
        extra_steps: int = 0,
        **optional_counts: Any,
    ) -> TrainingRun:
        """Check the arguments, split the samples and set the length in epochs.

        ``n_steps`` optimiser steps (``default_n_steps`` if None) plus ``extra_steps``, or
        ``max_epochs`` passes; ``optional_counts`` are the model's further counts
        (``name=(value, minimum)``), checked too. Plan arguments found in ``kwargs`` move to
        the plan's; anything left must be a Trainer argument.
        """
        plan_kwargs = dict(plan_kwargs or {})
        names = model.plan_arguments()
        for name in names:
            if name in kwargs:
                plan_kwargs[name] = kwargs.pop(name)
        _check_trainer_kwargs(kwargs, names)
        lengths = check_training_lengths(
            n_steps=n_steps, max_epochs=max_epochs, batch_size=batch_size,
            train_size=train_size, **optional_counts,
        )  # fmt: skip
        run = cls(model, plan_kwargs, kwargs, lengths)
        run._set_length(devices, default_n_steps, extra_steps)
        return run

    def _set_length(self, devices: Any, default_n_steps: int, extra_steps: int) -> None:
        n_train = len(self.train_idx)
        if n_train < self.batch_size:
            msg = (
                f"Only {n_train} training samples ({self.model.adata.n_obs} samples x "
                f"train_size={self.train_size}) for a mini-batch of {self.batch_size}. Pass a "
                f"smaller batch_size (e.g. batch_size={max(2, n_train // 4)}) or "
                "train_size=1.0."
            )
            raise ValueError(msg)
        # with data parallelism every process takes its share of each epoch's batches, and a
        # step is one mini-batch per process: n_steps still counts optimiser steps
        self.distributed, self.world = _data_parallel_world(self.kwargs, devices)
        self.batches_per_epoch = math.ceil(n_train / (self.batch_size * self.world))
        if self.max_epochs is None:
            n_steps = self.lengths["n_steps"]
            n_steps = default_n_steps if n_steps is None else n_steps
            self.max_epochs = max(1, math.ceil((n_steps + extra_steps) / self.batches_per_epoch))

    @property
    def total_steps(self) -> int:
        """Optimiser steps of the run (per process)."""
        return self.max_epochs * self.batches_per_epoch

    def launch(
        self,
        *,
        accelerator: str,
        devices: Any,
        datasplitter_kwargs: dict | None,
        checkpoint_dir: Any,
        checkpoint_every: Any,
        resume: bool,
        what: str = "",
        sampler: Any = None,
        **fingerprint: Any,
    ):
        """Run the training (checkpoints, validation, quiet Lightning) and keep the split.

        ``fingerprint`` adds what a checkpoint of this run must match; ``what`` is added to
        the log line (e.g. the classifier steps of TSPG); ``sampler`` (lists of positions in
        the training rows; a callable, called in each process) replaces the shuffled
        mini-batches (Poisson sampling).
        """
        _check_checkpoint_args(checkpoint_dir, checkpoint_every, resume)
        model = self.model
        if sampler is not None:
            splitter = _poisson_splitter(
                model, self.train_idx, self.val_idx, self.batch_size, sampler,
                datasplitter_kwargs,
            )  # fmt: skip
        else:
            splitter = _make_splitter(
                model, self.train_idx, self.val_idx, self.batch_size, self.distributed,
                datasplitter_kwargs,
            )  # fmt: skip
        _configure_run(
            model, self.callbacks, self.kwargs, train_idx=self.train_idx, val_idx=self.val_idx,
            batch_size=self.batch_size, max_epochs=self.max_epochs,
            batches_per_epoch=self.batches_per_epoch, train_size=self.train_size,
            seed=self.seed, checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every,
            resume=resume, **fingerprint,
        )  # fmt: skip
        logger.info(
            "Training %s on %s samples (%s held out) for %s steps of %s samples (%s epochs)%s%s.",
            type(model).__name__, f"{len(self.train_idx):,}", f"{len(self.val_idx):,}",
            f"{self.total_steps:,}", f"{self.batch_size:,}", f"{self.max_epochs:,}", what,
            f" in each of {self.world} processes" if self.world > 1 else "",
        )  # fmt: skip
        if self.kwargs.get("enable_progress_bar", True):  # in steps, not scvi-tools' epochs
            # first, so the bar is closed before other callbacks' closing lines
            self.callbacks.insert(0, StepProgressBar(type(model).__name__, self.total_steps))
            self.kwargs["simple_progress_bar"] = False
        with quiet_training():
            result = UnsupervisedTrainingMixin.train(
                model, max_epochs=self.max_epochs, accelerator=accelerator, devices=devices,
                batch_size=self.batch_size, datamodule=splitter, plan_kwargs=self.plan_kwargs,
                callbacks=self.callbacks, **self.kwargs,
            )  # fmt: skip
        _finish_training(model, self.train_idx, self.val_idx, self.batches_per_epoch)
        return result
