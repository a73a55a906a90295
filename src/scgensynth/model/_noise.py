from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import torch
from scvi import settings

from scgensynth._utils._checks import check_count
from scgensynth._utils._docs import doctest_skip
from scgensynth.module import NoiseModule

from .base import BaseGeneratorModel
from .base._generation import GenerationRows
from .base._run import _check_trainer_kwargs
from .base._validation import check_training_lengths

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)


def _training_argument_names() -> set[str]:
    """Arguments any generator's ``train`` accepts (the noise baseline ignores them)."""
    names = set(inspect.signature(BaseGeneratorModel.train).parameters) - {"self", "kwargs"}
    stack = list(BaseGeneratorModel.__subclasses__())
    while stack:
        cls = stack.pop()
        names |= set(cls.plan_arguments())
        stack.extend(cls.__subclasses__())
    return names


class NoiseAugmenter(BaseGeneratorModel):
    """Noise augmentation: real samples plus Gaussian noise, the baseline of Lacan et al. (2023).

    A synthetic sample is a real training sample with the requested covariates plus noise of
    variance ``noise_variance`` (default 0.1, the survey's) on every gene in the model's
    standardized space (per-gene z-scores after the scaling's normalisation and ``log1p``),
    mapped back to the input's scale. Nothing is learned: :meth:`train` stores the (scaled)
    training samples and their covariates in the module, so they are saved and loaded with
    it -- note that a saved model therefore contains the training data.

    Which real sample: for each requested covariate row, one drawn uniformly among the
    training samples with exactly those categorical covariates; with continuous covariates,
    among those of that categorical combination nearest in the (standardized) continuous
    covariates, uniformly among ties. Asking for a categorical combination absent from the
    training samples is an error. :meth:`generate` without covariates resamples the covariate
    rows of the stored samples, so it resamples the training samples themselves.

    Parameters
    ----------
    adata
        AnnData registered with :meth:`setup_anndata`.
    noise_variance
        Variance of the Gaussian noise in standardized space.
    scaling
        How expression values are scaled (``"auto"`` detects it from the data and says which
        in the log); the noise is added after scaling.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> adata = sgs.datasets.gtex_tissues()
    >>> sgs.model.NoiseAugmenter.setup_anndata(adata, categorical_covariate_keys=["tissue"])
    >>> model = sgs.model.NoiseAugmenter(adata)
    >>> model.train()
    >>> liver = model.generate(50, covariates={"tissue": "Liver"}, seed=0)
    """

    description = (
        "baseline: real training samples plus Gaussian noise (variance 0.1, scaled space)"
    )
    reference = "Lacan et al. 2023"
    quick_kwargs: ClassVar[dict[str, Any]] = {}
    _module_cls = NoiseModule
    _training_plan_cls = None

    def __init__(
        self,
        adata: AnnData | None = None,
        noise_variance: float = 0.1,
        scaling: str = "auto",
    ):
        super().__init__(adata, scaling=scaling)
        noise_variance = float(noise_variance)
        self._build_module(f"noise variance {noise_variance}", noise_variance=noise_variance)
        self.init_params_ = self._get_init_params(locals())

    @doctest_skip("trains a generator (minutes)")
    def train(
        self,
        max_epochs: int | None = None,
        *,
        train_size: float = 1.0,
        **kwargs,
    ) -> None:
        """Store the training samples; nothing is learned (one pass over the data).

        Accepts the training arguments of the other generators (``n_steps``, ``batch_size``,
        ``selection``, learning rates, Lightning's ``Trainer`` arguments, ...) so the same
        call trains every model, and ignores them.

        Parameters
        ----------
        max_epochs
            Ignored.
        train_size
            Share of samples stored; the rest (stratified by the categorical covariates, with
            ``scvi.settings.seed``) is held out as for the other generators and never
            resampled. Default: all samples.
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
        # ignored, but a value that would be wrong for the other generators is still refused
        check_training_lengths(
            n_steps=kwargs.get("n_steps"), max_epochs=max_epochs,
            batch_size=kwargs.get("batch_size", 32), train_size=train_size,
        )  # fmt: skip
        ignored = sorted(k for k in kwargs if kwargs[k] is not None)
        if max_epochs is not None:
            ignored.insert(0, "max_epochs")
        train_idx, val_idx = self._split(train_size, int(settings.seed or 0))
        train_idx = np.sort(train_idx)
        cat, cont = self._encode(self.covariates_.iloc[train_idx])
        self.module.set_data(
            self._scaled_rows(train_idx),
            None if cat is None else torch.as_tensor(cat),
            None if cont is None else torch.as_tensor(cont),
        )
        self.train_indices_ = train_idx
        self.validation_indices_ = np.sort(val_idx)
        self.test_indices_ = np.array([], dtype=int)
        self.history_ = {}
        self.is_trained_ = True
        logger.info(
            "NoiseAugmenter stored %d training samples (%d held out); nothing is learned: "
            "samples are real ones plus Gaussian noise of variance %g in standardized space.%s",
            len(train_idx),
            len(val_idx),
            self.module.noise_variance,
            f" Ignored training arguments: {ignored}." if ignored else "",
        )

    def _generation_covariates(
        self,
        n_obs: int | None,
        covariates: pd.DataFrame | Mapping[str, Any] | None,
    ) -> GenerationRows:
        if covariates is None:  # resample the stored (training) samples' covariate rows
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
                    f"sample, e.g. {shown}. The noise baseline resamples real samples, so it "
                    f"can only generate the {len(known)} combinations seen in training "
                    f"(e.g. {examples}); request one of those."
                )
                raise ValueError(msg)
        return plan
