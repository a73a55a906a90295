from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from scvi import settings

from scgensynth._utils._checks import check_count
from scgensynth._utils._docs import doctest_skip

from .base import BaseGeneratorModel
from .base._generation import GenerationRows
from .base._privacy import check_public, check_public_use, plan_spec, refuse_unsupported
from .base._run import _check_trainer_kwargs
from .base._validation import check_training_lengths

logger = logging.getLogger(__name__)


def _training_argument_names() -> set[str]:
    """Arguments any generator's ``train`` accepts (closed-form models ignore them)."""
    names = set(inspect.signature(BaseGeneratorModel.train).parameters) - {"self", "kwargs"}
    stack = list(BaseGeneratorModel.__subclasses__())
    while stack:
        cls = stack.pop()
        names |= set(cls.plan_arguments())
        stack.extend(cls.__subclasses__())
    return names


class ClosedFormGenerator(BaseGeneratorModel):
    """A generator fitted in one pass over its training samples, without gradient steps.

    Subclasses implement :meth:`_fit` (given the scaled training rows and their encoded
    covariates) and :meth:`_fit_message`. :meth:`train` takes every other generator's
    training arguments and ignores them, so one call trains every registered model.
    Generation is limited to the categorical combinations seen in training.
    """

    _training_plan_cls = None

    def _fit_rows(self, train_idx: np.ndarray) -> np.ndarray:
        """The training rows in the order :meth:`_fit` receives them (default: as given)."""
        return train_idx

    def _fit(self, x_scaled: torch.Tensor, cat, cont) -> None:
        raise NotImplementedError

    def _fit_private(self, rows: np.ndarray, public, spec) -> dict[str, Any]:
        """Fit the training ``rows`` with differential privacy; return the privacy record.

        Subclasses that can (see :attr:`supports_privacy`) implement it; ``public`` is the
        checked public AnnData (or None) and ``spec`` the resolved
        :class:`~scgensynth.train.PrivacySpec`.
        """
        raise NotImplementedError

    @property
    def supports_privacy(self) -> bool:
        """Whether ``train(privacy=...)`` works (the subclass implements a private fit)."""
        return type(self)._fit_private is not ClosedFormGenerator._fit_private

    def _fit_message(self, n_train: int, n_held: int) -> str:
        raise NotImplementedError

    @doctest_skip("trains a generator")
    def train(
        self,
        max_epochs: int | None = None,
        *,
        train_size: float = 1.0,
        privacy: Mapping[str, Any] | None = None,
        public=None,
        **kwargs,
    ) -> None:
        """Fit the model to the training samples in one pass (no gradient steps).

        Accepts the training arguments of the other generators (``n_steps``, ``batch_size``,
        ``selection``, learning rates, Lightning's ``Trainer`` arguments, ...) so the same
        call trains every model, and ignores them (a value that would be wrong for them is
        still refused).

        Parameters
        ----------
        max_epochs
            Ignored.
        train_size
            Share of samples fitted; the rest (stratified by the categorical covariates, with
            ``scvi.settings.seed``) is held out as for the other generators and never used.
            Default: all samples.
        privacy
            Fit with differential privacy, ``{"epsilon": 10, "delta": None}`` (see
            :class:`~scgensynth.train.PrivacySpec`), for models that can (see the model's
            docstring); the spent (ε, δ) is kept in ``privacy_``.
        public
            With ``privacy``: public samples with the same genes, for what the private fit
            must not learn from the training rows (scaling statistics, subspace).
        **kwargs
            Training arguments of the other generators, ignored.

        Examples
        --------
        >>> model.train()
        >>> model.is_trained_
        True
        """
        known = _training_argument_names()
        unknown = {k: v for k, v in kwargs.items() if k not in known}
        _check_trainer_kwargs(unknown, ())
        check_training_lengths(
            n_steps=kwargs.get("n_steps"), max_epochs=max_epochs,
            batch_size=kwargs.get("batch_size", 32), train_size=train_size,
        )  # fmt: skip
        ignored = sorted(k for k in kwargs if kwargs[k] is not None)
        if max_epochs is not None:
            ignored.insert(0, "max_epochs")
        check_public_use(privacy, public)
        if privacy is not None:
            refuse_unsupported(self)
            public = check_public(self, public)
        train_idx, val_idx = self._split(train_size, int(settings.seed or 0))
        train_idx = np.sort(train_idx)
        if privacy is not None:
            spec = plan_spec(privacy, len(train_idx))
            self.privacy_ = self._fit_private(train_idx, public, spec)
        else:
            rows = self._fit_rows(train_idx)
            cat, cont = self._encode(self.covariates_.iloc[rows])
            self._fit(
                self._scaled_rows(rows),
                None if cat is None else torch.as_tensor(cat),
                None if cont is None else torch.as_tensor(cont),
            )
            self.privacy_ = None
        self.train_indices_ = train_idx
        self.validation_indices_ = np.sort(val_idx)
        self.test_indices_ = np.array([], dtype=int)
        self.history_ = {}
        self.is_trained_ = True
        logger.info(
            "%s%s",
            self._fit_message(len(train_idx), len(val_idx)),
            f" Ignored training arguments: {ignored}." if ignored else "",
        )

    def _generation_covariates(
        self,
        n_obs: int | None,
        covariates: pd.DataFrame | Mapping[str, Any] | None,
    ) -> GenerationRows:
        if covariates is None:  # resample the training samples' covariate rows
            n_obs = check_count(n_obs, "n_obs", minimum=0, allow_none=True)
            n = len(self.train_indices_) if n_obs is None else n_obs
            return GenerationRows.resampled(self.covariates_, n, pool=self.train_indices_)
        plan = super()._generation_covariates(n_obs, covariates)
        frame = plan.frame
        if self._cat_keys and len(frame):
            stored = self.covariates_.iloc[self.train_indices_][self._cat_keys]
            known = set(stored.astype(str).itertuples(index=False, name=None))
            asked = frame[self._cat_keys].astype(str).drop_duplicates()
            unseen = [c for c in asked.itertuples(index=False, name=None) if c not in known]
            if unseen:
                shown = [dict(zip(self._cat_keys, c, strict=True)) for c in unseen[:5]]
                examples = [dict(zip(self._cat_keys, c, strict=True)) for c in sorted(known)[:5]]
                msg = (
                    f"{len(unseen)} requested covariate combination(s) have no training "
                    f"sample, e.g. {shown}. {type(self).__name__} models the combinations "
                    f"seen in training only, so it can generate the {len(known)} of them "
                    f"(e.g. {examples}); request one of those."
                )
                raise ValueError(msg)
        return plan
