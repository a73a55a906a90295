"""What every scgensynth model shares, generators and TSPG alike."""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scvi import REGISTRY_KEYS
from scvi.dataloaders import DataSplitter
from scvi.model.base import BaseModelClass, UnsupervisedTrainingMixin

from scgensynth._utils._anndata import iter_row_chunks, rows_per_block

from ._save import SafeSaveMixin

logger = logging.getLogger(__name__)


class SgsModel(SafeSaveMixin, UnsupervisedTrainingMixin, BaseModelClass):
    """The base of every scgensynth model (scvi-tools' ``BaseModelClass``).

    It owns what a model does with its registered data whatever it learns: the stratified
    train/validation split (:meth:`_split`, strata from :meth:`_strata`), reading rows of
    the expression matrix in blocks (:meth:`_iter_rows`, memory or disk alike), the
    training plan's arguments (:meth:`plan_arguments`) and the losses it logs
    (:attr:`logged_losses`), and safe files (:class:`SafeSaveMixin`). Training runs go
    through :class:`~scgensynth.model.base._run.TrainingRun`.
    """

    #: scvi-tools methods that mean nothing for a generator: hidden from ``dir()`` (and so
    #: from tab completion) and a clear error when called
    _NOT_FOR_GENERATORS = ("get_normalized_expression", "differential_abundance")

    def __dir__(self) -> list[str]:
        """Attributes for completion, without scvi-tools methods a generator lacks."""
        return [n for n in super().__dir__() if n not in self._NOT_FOR_GENERATORS]

    def get_normalized_expression(self, *args, **kwargs):
        """Not for generators: draw samples with :meth:`generate` instead."""
        msg = (
            f"{type(self).__name__} has no normalized expression of the input samples (that is "
            "scVI's); draw synthetic samples with model.generate(...) or sgs.tl.generate."
        )
        raise NotImplementedError(msg)

    def differential_abundance(self, *args, **kwargs):
        """Not for generators: compare real and synthetic samples with ``sgs.metrics``."""
        msg = (
            f"{type(self).__name__} has no differential abundance (scvi-tools' latent-space "
            "test); compare real and synthetic samples with sgs.metrics.evaluate, or find the "
            "genes a condition moves with sgs.tl.counterfactual."
        )
        raise NotImplementedError(msg)

    _training_plan_cls = None
    #: the training plan of ``train(privacy=...)`` (None: no private training)
    _private_plan_cls = None
    _data_splitter_cls = DataSplitter

    #: constructor arguments a model needs for ``train(privacy=...)`` (e.g. no batch norm)
    private_kwargs: ClassVar[dict[str, Any]] = {}

    def _check_private_module(self) -> None:
        """Refuse a module that cannot be trained privately, before anything changes."""

    @property
    def supports_privacy(self) -> bool:
        """Whether ``train(privacy=...)`` works for this model (differentially private)."""
        return type(self)._private_plan_cls is not None

    # -- the training plan ---------------------------------------------------------------------
    @classmethod
    def plan_arguments(cls) -> tuple[str, ...]:
        """Training-plan arguments ``train`` takes by name (the plan's keyword options).

        Examples
        --------
        >>> import scgensynth as sgs
        >>> sgs.model.WGANGP.plan_arguments()
        ('lr_generator', 'lr_critic', 'n_critic', 'optimizer', 'weight_decay')
        """
        if cls._training_plan_cls is None:
            return ()
        params = inspect.signature(cls._training_plan_cls.__init__).parameters.items()
        return tuple(
            name
            for name, p in params
            if name not in ("self", "module")
            and p.default is not inspect.Parameter.empty
            and p.kind is not inspect.Parameter.VAR_KEYWORD
        )

    @property
    def logged_losses(self) -> tuple[str, ...]:
        """The losses training logs per epoch, drawn by :func:`~scgensynth.pl.training_history`.

        Declared by the training plan (``logged_losses``), the private one after a private
        run.
        """
        plan = self._private_plan_cls if getattr(self, "privacy_", None) else None
        return tuple(getattr(plan or self._training_plan_cls, "logged_losses", ()))

    # -- the registered data -------------------------------------------------------------------
    @property
    def layer(self) -> str | None:
        """The layer the expression values are read from (None: ``X``)."""
        field = self.adata_manager.data_registry[REGISTRY_KEYS.X_KEY]
        return field.attr_key if field.attr_name == "layers" else None

    def _iter_rows(self, rows: np.ndarray | None = None) -> Iterator[np.ndarray]:
        """Blocks of float64 rows of the registered matrix (all, or ``rows`` in order)."""
        X = self.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
        yield from iter_row_chunks(X, rows_per_block(X.shape[1], 8), rows)

    def _strata(self) -> np.ndarray | None:
        """One label per sample that the split keeps in proportion (None: no strata)."""
        return None

    def _split(self, train_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Train/validation indices, stratified by :meth:`_strata`.

        Every stratum keeps at least one training sample; ``train_size=1`` holds none out.
        """
        n = self.adata.n_obs
        rng = np.random.default_rng(seed)
        if train_size >= 1.0:
            return rng.permutation(n), np.array([], dtype=int)
        strata = self._strata()
        groups = np.zeros(n, dtype=int) if strata is None else np.asarray(strata)
        val: list[np.ndarray] = []
        for g in pd.unique(groups):
            members = rng.permutation(np.flatnonzero(groups == g))
            n_val = math.floor(len(members) * (1 - train_size) + rng.random())
            val.append(members[: min(n_val, len(members) - 1)])
        val_idx = np.sort(np.concatenate(val)).astype(int) if val else np.array([], dtype=int)
        train_idx = np.setdiff1d(np.arange(n), val_idx)
        return rng.permutation(train_idx), val_idx


__all__ = ["SgsModel"]
