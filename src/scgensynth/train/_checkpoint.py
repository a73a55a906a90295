"""Checkpoints during training, and resuming a killed run exactly where it stopped."""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch

from scgensynth._utils._files import ModelFileError, atomic_write

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "last.ckpt"


def _numpy_state() -> dict[str, Any]:
    # the legacy global state: what Lightning's seed_everything and user code seed
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    return {
        "kind": kind,
        "keys": torch.as_tensor(keys.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached": float(cached),
    }


def _set_numpy_state(state: dict[str, Any]) -> None:
    keys = state["keys"].numpy().astype(np.uint32)
    np.random.set_state(  # noqa: NPY002
        (state["kind"], keys, state["pos"], state["has_gauss"], state["cached"])
    )


def _python_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _set_python_state(state: list) -> None:
    version, internal, gauss = state
    random.setstate((version, tuple(internal), gauss))


def _history_state(trainer: pl.Trainer) -> dict[str, Any]:
    """The logged history as plain lists (a checkpoint holds no DataFrames)."""
    history = getattr(trainer.logger, "history", None) or {}
    out = {}
    for name, frame in history.items():
        out[name] = {
            "index": [int(i) for i in frame.index],
            "index_name": frame.index.name,
            "values": [float(v) for v in frame[name].to_numpy()],
        }
    return out


def _restore_history(trainer: pl.Trainer, saved: dict[str, Any]) -> None:
    experiment = getattr(trainer.logger, "experiment", None)
    data = getattr(experiment, "data", None)
    if data is None:
        return
    for name, spec in saved.items():
        frame = pd.DataFrame({name: spec["values"]}, index=pd.Index(spec["index"]), dtype=object)
        frame.index.name = spec["index_name"]
        data[name] = frame


def checkpoint_path(dir_path: str | os.PathLike) -> Path:
    """The checkpoint file that :class:`ResumableCheckpoint` keeps in ``dir_path``."""
    return Path(dir_path) / CHECKPOINT_FILE


def check_checkpoint(path: str | os.PathLike) -> None:
    """Refuse a checkpoint that cannot be loaded without unpickling code."""
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any failure means: not a safe checkpoint
        msg = (
            f"{path} cannot be loaded as a checkpoint of plain tensors and numbers "
            f"({type(err).__name__}: {str(err).splitlines()[0][:200]}). scgensynth resumes only "
            "from its own checkpoints; delete the file to start training afresh."
        )
        raise ModelFileError(msg) from err


class ResumableCheckpoint(pl.Callback):
    """Save a resumable checkpoint every few epochs, atomically, in ``dirpath``.

    The checkpoint is Lightning's (weights, optimizers, schedulers, loop counters, the other
    callbacks' state) plus what exact resumption needs: the random states of torch, NumPy and
    Python, the history logged so far, and a fingerprint of the training setup, checked on
    resume so that a checkpoint of another run is refused. It holds only tensors and plain
    numbers and strings, so it is loaded with ``torch.load(weights_only=True)``. It is written
    beside its final path and moved into place, so a kill while saving leaves the previous
    checkpoint intact.

    Parameters
    ----------
    dirpath
        Folder of the checkpoint (``last.ckpt``).
    every_n_epochs
        Epochs between checkpoints (the last epoch is always saved).
    fingerprint
        Plain values describing the run (model class, data shape, batch size, ...).
    """

    def __init__(self, dirpath: str | os.PathLike, every_n_epochs: int, fingerprint: dict):
        super().__init__()
        self.dirpath = Path(dirpath)
        self.every_n_epochs = max(1, int(every_n_epochs))
        self.fingerprint = dict(fingerprint)
        self._restored: dict[str, Any] | None = None
        self._trainer: pl.Trainer | None = None
        self._restored_epoch: int | None = None
        self._saving_at_epoch_start = False

    @property
    def state_key(self) -> str:
        return "ResumableCheckpoint"

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # saved when the next epoch starts: the finished epoch's metrics are logged by then,
        # and the random state is the one the next epoch's shuffling and noise draw from
        done = trainer.current_epoch
        if done == 0 or done % self.every_n_epochs or done == self._restored_epoch:
            return
        self._saving_at_epoch_start = True
        try:
            self._save(trainer)
        finally:
            self._saving_at_epoch_start = False

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict
    ) -> None:
        if not self._saving_at_epoch_start:
            return
        # the epoch loop still counts the batches of the finished epoch; a resumed run must
        # see an epoch that has not begun (Lightning would otherwise skip it as finished)
        loops = checkpoint["loops"]["fit_loop"]
        progress = loops.get("epoch_loop.batch_progress")
        if progress is None:
            progress = loops["epoch_loop"]["batch_progress"]
        for key in progress["current"]:
            progress["current"][key] = 0
        progress["is_last_batch"] = False

    def _save(self, trainer: pl.Trainer) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        atomic_write(
            checkpoint_path(self.dirpath),
            lambda tmp: trainer.save_checkpoint(tmp, weights_only=False),
        )

    def state_dict(self) -> dict[str, Any]:
        trainer = self._trainer
        return {
            "fingerprint": self.fingerprint,
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": _numpy_state(),
            "python_rng": _python_state(),
            "history": {} if trainer is None else _history_state(trainer),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict.get("fingerprint")
        if saved != self.fingerprint:
            changed = sorted(
                k for k in set(saved or {}) | set(self.fingerprint)
                if (saved or {}).get(k) != self.fingerprint.get(k)
            )  # fmt: skip
            detail = ", ".join(
                f"{k}: {(saved or {}).get(k)!r} then, {self.fingerprint.get(k)!r} now"
                for k in changed
            )
            msg = (
                f"The checkpoint in {self.dirpath} belongs to another training run ({detail}). "
                "Resume with the same data, model and training arguments, or pass another "
                "checkpoint_dir (or resume=False) to start afresh."
            )
            raise ValueError(msg)
        self._restored = state_dict
        # the random states are restored now: Lightning draws the resumed epoch's shuffling
        # when it sets up the data, before any training hook runs
        torch.set_rng_state(state_dict["torch_rng"])
        _set_numpy_state(state_dict["numpy_rng"])
        _set_python_state(state_dict["python_rng"])

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._restored is None:
            return
        self._restored_epoch = trainer.current_epoch
        _restore_history(trainer, self._restored["history"])
        logger.info(
            "Resumed training from %s at epoch %d.",
            checkpoint_path(self.dirpath),
            trainer.current_epoch + 1,
        )
        self._restored = None
