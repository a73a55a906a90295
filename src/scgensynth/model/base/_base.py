from __future__ import annotations

import copy
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import torch
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager
from scvi.data.fields import CategoricalJointObsField, LayerField, NumericalJointObsField

from scgensynth._utils._anndata import get_matrix
from scgensynth._utils._checks import check_count, resolve_seed
from scgensynth._utils._docs import doctest_skip
from scgensynth._utils._files import check_disk_space, check_output_path
from scgensynth._utils._logging import RESTORING, follow_scverse_verbosity
from scgensynth._utils._random import RowNoise
from scgensynth.pp import detect_scaling, fit_scaling
from scgensynth.train import GeneratorSelection, SelectionCriterion

from ._generation import (
    COUNTS_OPTIONS,
    INTEGER_COUNTS,
    GenerationRows,
    bytes_needed,
    check_backed_obs_fits,
    check_fits_in_memory,
    collect_in_memory,
    write_backed,
)
from ._model import SgsModel
from ._privacy import check_public_use, describe, plan_private_run
from ._proxy import proxy_anndata
from ._run import TrainingRun
from ._validation import (
    as_key_list,
    check_covariate_size,
    check_covariates,
    check_shape,
    covariate_frame_from_dict,
)

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)


def _covariate_table(
    covariates: pd.DataFrame | Mapping[str, Any], n_obs: int | None, keys: list[str]
) -> pd.DataFrame:
    """Covariates as a frame holding each of ``keys`` once, ``n_obs`` rows if given."""
    if isinstance(covariates, Mapping):
        covariates = covariate_frame_from_dict(covariates, n_obs, keys)
    if not isinstance(covariates, pd.DataFrame):
        msg = (
            "covariates must be a pandas DataFrame (one row per sample) or a dict "
            f"{{column: value}}, not {type(covariates).__name__}."
        )
        raise TypeError(msg)
    if n_obs is not None and n_obs != len(covariates):
        msg = (
            f"n_obs={n_obs} but covariates has {len(covariates)} rows; pass one of them, "
            "or a dict of covariates with n_obs."
        )
        raise ValueError(msg)
    doubled = sorted({k for k in keys if (covariates.columns == k).sum() > 1})
    if doubled:
        msg = f"covariates has more than one column named {doubled}; keep one of each."
        raise ValueError(msg)
    missing = [k for k in keys if k not in covariates.columns]
    if missing:
        msg = (
            f"covariates lacks column(s) {missing}; the model was trained on {keys}. "
            "Give a value for each of them."
        )
        raise KeyError(msg)
    return covariates


def _continuous_values(col: pd.Series, key: str) -> np.ndarray:
    """A continuous covariate's values as float32, or a clear error."""
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        msg = (
            f"Continuous covariate {key!r} must be numbers (not booleans or text), got "
            f"dtype {col.dtype}."
        )
        raise TypeError(msg)
    values = col.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        msg = f"Continuous covariate {key!r} has missing or infinite values."
        raise ValueError(msg)
    check_covariate_size(values, key)
    return values.astype(np.float32)


@doctest_skip("needs a trained model")
class BaseGeneratorModel(SgsModel):
    """Base class of scgensynth's conditional generators.

    It registers expression values and covariates through scvi-tools' ``AnnDataManager``,
    owns the scaling of expression values (fitted on the data, inverted on generation),
    splits data for model selection with scvi-tools' ``DataSplitter``, and implements
    :meth:`generate`. A generator subclass adds a torch module (``_module_cls``), a
    training plan (``_training_plan_cls``) and its defaults.

    Examples
    --------
    >>> class MyGenerator(BaseGeneratorModel):
    ...     description = "what the generator is, in one line"
    ...     _module_cls = MyModule  # a ConditionalGeneratorModule implementing generate_scaled
    ...     _training_plan_cls = MyPlan
    ...
    ...     def __init__(self, adata=None, n_latent=8, scaling="auto"):
    ...         super().__init__(adata, scaling=scaling)
    ...         self._build_module(f"latent {n_latent}", n_latent=n_latent)
    ...         self.init_params_ = self._get_init_params(locals())
    >>> sgs.model.register("mygenerator", MyGenerator)  # then sgs.tl.train_mygenerator(...)

    The worked example in ``docs/contributing.md`` (a test) goes through it all.
    """

    #: one line on what the generator is (shown by ``sgs.model.available()``)
    description: ClassVar[str] = ""
    #: where the method comes from
    reference: ClassVar[str] = ""
    #: constructor arguments of a small, fast network: for smoke tests, examples and the
    #: short runs of the tutorials (quality is not the point of such a model)
    quick_kwargs: ClassVar[dict[str, Any]] = {}
    _module_cls = None

    def __init__(self, adata: AnnData | None = None, scaling: str = "auto"):
        follow_scverse_verbosity()
        super().__init__(adata)
        check_shape(self.adata)
        # a model restored from a file warned of its data when it was trained
        data_warning = logger.debug if RESTORING.get() else logger.warning
        self._cat_keys = list(self._cat_state().get("field_keys", []))
        self._cont_keys = list(self._cont_state().get("columns", []))
        layer = self.layer
        if scaling == "auto":
            scaling = detect_scaling(self.adata, layer=layer)
            logger.info(
                "Scaling expression values with %r (detected from the data; pass scaling=... "
                "to choose 'counts', 'log1p', 'standardize' or 'none').",
                scaling,
            )
        self.scaling_mode = scaling
        stats = fit_scaling(self.adata, scaling, layer=layer)
        if stats["constant_genes"]:
            names = stats["constant_genes"]
            data_warning(
                "%d gene(s) have zero variance (e.g. %s); they are generated at their constant "
                "value. To drop them: `sc.pp.filter_genes(adata, min_cells=1)` or "
                "`adata = adata[:, np.asarray(adata.X.std(0)).ravel() > 0].copy()`.",
                len(names),
                names[:5],
            )
        self.scaling_ = {k: stats[k] for k in ("mode", "target_sum", "lower_bound")}
        self.scaling_["constant_genes"] = stats["constant_genes"]
        self._scaling_stats = stats
        self.library_size_ = stats["library_size"]
        #: the (epsilon, delta) a private run spent and how (None: not trained privately)
        self.privacy_: dict[str, Any] | None = None
        self.covariates_ = self._covariate_frame(self.adata)
        for key in self._cat_keys:
            empty = self.covariates_[key].value_counts().loc[lambda c: c == 0].index.tolist()
            if empty:
                data_warning(
                    "Categorical covariate %r has categories without samples (%s); the model "
                    "cannot learn them and refuses to generate them.",
                    key,
                    empty[:5],
                )

    def _get_init_params(self, locals: dict[str, Any]) -> dict[str, Any]:
        """The constructor arguments save/load reproduce: the resolved scaling, not "auto"."""
        params = super()._get_init_params(locals)
        for group in [params["non_kwargs"], *params["kwargs"].values()]:
            if "scaling" in group:
                group["scaling"] = self.scaling_mode
        return params

    # -- registry -----------------------------------------------------------------------------
    @classmethod
    def setup_anndata(
        cls,
        adata: AnnData,
        layer: str | None = None,
        categorical_covariate_keys: Sequence[str] | None = None,
        continuous_covariate_keys: Sequence[str] | None = None,
        **kwargs,
    ):
        """Register expression values and covariates with scvi-tools.

        Like every scvi-tools ``setup_anndata``, this adds scvi-tools' registry entries
        (``adata.uns["_scvi_*"]``, ``adata.obsm["_scvi_extra_*"]``) to ``adata``. The one-call
        tools (:func:`scgensynth.tl.train_wgan`, ...) register a private proxy instead and
        leave your AnnData untouched.

        Parameters
        ----------
        adata
            Samples x genes.
        layer
            Layer with the expression values (default ``adata.X``); dense or sparse.
        categorical_covariate_keys
            ``.obs`` columns of categorical covariates (tissue, cancer, sex, batch, ...).
        continuous_covariate_keys
            ``.obs`` columns of numeric covariates (age, ...).
        """
        setup_method_args = cls._get_setup_method_args(**locals())
        cat_keys = as_key_list(categorical_covariate_keys, "categorical_covariate_keys")
        cont_keys = as_key_list(continuous_covariate_keys, "continuous_covariate_keys")
        check_shape(adata)
        get_matrix(adata, layer)
        check_covariates(adata, cat_keys, cont_keys)
        fields = [LayerField(REGISTRY_KEYS.X_KEY, layer, is_count_data=False)]
        if cat_keys:
            fields.append(CategoricalJointObsField(REGISTRY_KEYS.CAT_COVS_KEY, cat_keys))
        if cont_keys:
            fields.append(NumericalJointObsField(REGISTRY_KEYS.CONT_COVS_KEY, cont_keys))
        adata_manager = AnnDataManager(fields=fields, setup_method_args=setup_method_args)
        adata_manager.register_fields(adata, **kwargs)
        cls.register_manager(adata_manager)

    @classmethod
    def setup_proxy(
        cls,
        adata: AnnData,
        layer: str | None = None,
        categorical_covariate_keys: Sequence[str] | str | None = None,
        continuous_covariate_keys: Sequence[str] | str | None = None,
    ) -> AnnData:
        """A private AnnData sharing ``adata``'s values, registered with :meth:`setup_anndata`.

        What the one-call tools train on: ``adata`` is checked (its column names appear in
        the errors) and never written to; the proxy holds the covariate columns (unused
        categories left out, with a warning) and the expression matrix itself, not a copy.

        Examples
        --------
        >>> import scgensynth as sgs
        >>> adata = sgs.datasets.gtex_tissues()
        >>> proxy = sgs.model.WGANGP.setup_proxy(adata, categorical_covariate_keys="tissue")
        >>> model = sgs.model.WGANGP(proxy, **sgs.model.WGANGP.quick_kwargs)
        >>> "_scvi_manager_uuid" in adata.uns
        False
        """
        cat_keys = as_key_list(categorical_covariate_keys, "categorical_covariate_keys")
        cont_keys = as_key_list(continuous_covariate_keys, "continuous_covariate_keys")
        check_shape(adata)
        check_covariates(adata, cat_keys, cont_keys)
        proxy = proxy_anndata(adata, layer, cat_keys, cont_keys)
        cls.setup_anndata(
            proxy,
            layer=layer,
            categorical_covariate_keys=cat_keys or None,
            continuous_covariate_keys=cont_keys or None,
        )
        return proxy

    def _cat_state(self) -> dict:
        if REGISTRY_KEYS.CAT_COVS_KEY not in self.adata_manager.data_registry:
            return {}
        return self.adata_manager.get_state_registry(REGISTRY_KEYS.CAT_COVS_KEY)

    def _cont_state(self) -> dict:
        if REGISTRY_KEYS.CONT_COVS_KEY not in self.adata_manager.data_registry:
            return {}
        return self.adata_manager.get_state_registry(REGISTRY_KEYS.CONT_COVS_KEY)

    @property
    def categorical_covariate_keys(self) -> list[str]:
        """Categorical covariates the model is conditioned on."""
        return list(self._cat_keys)

    @property
    def continuous_covariate_keys(self) -> list[str]:
        """Continuous covariates the model is conditioned on."""
        return list(self._cont_keys)

    @property
    def categories(self) -> dict[str, list]:
        """Known categories of each categorical covariate, in code order."""
        mappings = self._cat_state().get("mappings", {})
        return {k: list(mappings[k]) for k in self._cat_keys}

    @property
    def n_cats_per_cov(self) -> list[int]:
        """Number of categories of each categorical covariate."""
        return [len(v) for v in self.categories.values()]

    def _covariate_frame(self, adata: AnnData) -> pd.DataFrame:
        """Covariates of ``adata``'s rows, categoricals with the training categories."""
        frame = pd.DataFrame(index=pd.RangeIndex(adata.n_obs))
        for key, cats in self.categories.items():
            frame[key] = pd.Categorical(np.asarray(adata.obs[key]), categories=cats)
        for key in self._cont_keys:
            frame[key] = adata.obs[key].to_numpy(dtype=np.float32)
        return frame

    def _check_loaded_attributes(self) -> tuple[str, str] | None:
        """The restored training covariates must fit the registered ones (see load)."""
        frame = self.covariates_
        keys = [*self._cat_keys, *self._cont_keys]
        if not isinstance(frame, pd.DataFrame) or list(frame.columns) != keys:
            return "attributes.covariates_", f"not a table of the covariates {keys}"
        for key, cats in self.categories.items():
            col = frame[key]
            if not isinstance(col.dtype, pd.CategoricalDtype) or list(col.cat.categories) != cats:
                return f"attributes.covariates_.{key}", f"not the categories {cats}"
        for key in self._cont_keys:
            if not pd.api.types.is_numeric_dtype(frame[key]) or not np.isfinite(frame[key]).all():
                return f"attributes.covariates_.{key}", "not finite numbers"
        return None

    def _encode(self, frame: pd.DataFrame) -> tuple[np.ndarray | None, np.ndarray | None]:
        cat = cont = None
        if self._cat_keys:
            cat = np.stack(
                [
                    pd.Categorical(frame[k], categories=c).codes.astype(np.int64)
                    for k, c in self.categories.items()
                ],
                axis=1,
            )
        if self._cont_keys:
            cont = frame[self._cont_keys].to_numpy(dtype=np.float32)
        return cat, cont

    def _build_module(self, summary: str, **module_kwargs: Any) -> None:
        """Build the model's module (``_module_cls``) for the registered data.

        The module gets the data's shape (genes, categories per covariate, continuous
        covariates) and the resolved scaling, plus ``module_kwargs``; then the fitted
        statistics. ``summary`` describes the architecture in the model's summary string.
        """
        self.module = self._module_cls(
            n_input=self.summary_stats.n_vars,
            n_cats_per_cov=self.n_cats_per_cov,
            n_continuous_cov=len(self._cont_keys),
            scaling=self.scaling_mode,
            **module_kwargs,
        )
        self._init_module_statistics()
        self._model_summary_string = (
            f"{type(self).__name__}: {self.summary_stats.n_vars} genes, covariates "
            f"{[*self._cat_keys, *self._cont_keys]}, {summary}, scaling {self.scaling_mode!r}"
        )

    def _init_module_statistics(self) -> None:
        stats = self._scaling_stats
        self.module.scaling.set_statistics(
            stats["mean"], stats["std"], stats["constant"], stats["target_sum"],
            stats["lower_bound"],
        )  # fmt: skip
        if self._cont_keys:
            values = self.covariates_[self._cont_keys].to_numpy(dtype=np.float64)
            std = values.std(0)
            self.module.set_continuous_statistics(values.mean(0), np.where(std > 0, std, 1.0))

    # -- splitting and selection --------------------------------------------------------------
    def _strata(self) -> np.ndarray | None:
        """The joint categorical covariates: the split keeps each combination's share."""
        if not self._cat_keys:
            return None
        return self.covariates_[self._cat_keys].astype(str).agg("|".join, axis=1).to_numpy()

    def _scaled_rows(self, rows: np.ndarray) -> torch.Tensor:
        """The rows on the networks' scale (float32), read a block at a time."""
        scaling = copy.deepcopy(self.module.scaling).cpu()  # leave the module on its device
        out = torch.empty(len(rows), self.adata.n_vars)
        start = 0
        for block in self._iter_rows(rows):
            out[start : start + len(block)] = scaling(torch.as_tensor(block, dtype=torch.float32))
            start += len(block)
        return out

    def _make_criterion(
        self, train_idx: np.ndarray, val_idx: np.ndarray, kind: str, seed: int
    ) -> SelectionCriterion:
        """Held-out rows plus up to 2,000 training rows (none for a private run)."""
        rng = np.random.default_rng(seed)
        if getattr(self, "_private_run", None) is not None:  # training rows stay unread
            train_idx = np.array([], dtype=int)
        n_extra = max(0, 2000 - len(val_idx))
        extra = rng.choice(train_idx, size=min(n_extra, len(train_idx)), replace=False)
        rows = np.concatenate([val_idx, extra]).astype(int)
        cat, cont = self._encode(self.covariates_.iloc[rows])
        # the novelty part: distances to training samples (up to 2,000 of them)
        reference = rng.choice(train_idx, size=min(2000, len(train_idx)), replace=False)
        return SelectionCriterion(
            real=self._scaled_rows(rows),
            cat=None if cat is None else torch.as_tensor(cat),
            cont=None if cont is None else torch.as_tensor(cont),
            kind=kind,
            seed=seed,
            train=(
                self._scaled_rows(np.sort(reference).astype(int))
                if len(val_idx) and len(reference)
                else None
            ),
            n_holdout=len(val_idx),
        )

    # -- training -----------------------------------------------------------------------------
    def train(
        self,
        max_epochs: int | None = None,
        *,
        n_steps: int | None = None,
        batch_size: int = 32,
        train_size: float | None = None,
        selection: str | None = "conditional",
        selection_every: int | None = None,
        patience: int | None = 10,
        min_steps: int | None = None,
        accelerator: str = "auto",
        devices: int | list[int] | str = "auto",
        plan_kwargs: dict | None = None,
        datasplitter_kwargs: dict | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every: int | None = None,
        resume: bool = False,
        privacy: Mapping[str, Any] | None = None,
        public: AnnData | None = None,
        **kwargs,
    ):
        """Train the generator.

        Training length is counted in optimiser steps (one step = one mini-batch), so small
        data gets enough of them: by default ``n_steps`` steps, i.e.
        ``max_epochs = ceil(n_steps / batches per epoch)``.

        Every ``selection_every`` steps the generator is scored by the selection criterion
        (see :class:`~scgensynth.train.SelectionCriterion`) on held-out real samples (plus up
        to 2,000 training samples); the best weights are kept and restored at the end, and
        training stops after ``patience`` evaluations without improvement, but never before
        ``min_steps``.

        Parameters
        ----------
        max_epochs
            Number of passes over the training data (overrides ``n_steps``).
        n_steps
            Number of mini-batches to train on (default ``default_n_steps``, 20,000).
        batch_size
            Mini-batch size.
        train_size
            Share of samples used for training; the rest (stratified by the categorical
            covariates) is held out for model selection. ``1.0`` disables the split (the
            criterion then scores against training samples). Default 0.9, or 1.0 with
            ``privacy``.
        selection
            ``"conditional"`` (correlation + conditional fidelity + precision/recall +
            novelty, the distance to training samples against held-out ones),
            ``"correlation"`` (the reference implementation's criterion) or ``None`` (keep
            the last weights, no early stopping).
        selection_every
            Steps between evaluations (default: about 1/40 of the training length).
        patience
            Evaluations without improvement before stopping; ``None`` never stops early.
        min_steps
            Steps before early stopping may fire (default: half of the training length).
        accelerator, devices
            Passed to Lightning's ``Trainer``.
        plan_kwargs
            Training-plan arguments (learning rates, ``n_critic``, optimizer, ...).
        datasplitter_kwargs
            Extra arguments of scvi-tools' ``DataSplitter``.
        checkpoint_dir
            Folder for a resumable checkpoint (``last.ckpt``), written atomically every
            ``checkpoint_every`` epochs (default: 20 times per run) and at the end. It holds
            the weights, optimizer states, loop counters, model-selection state, logged
            history and random states, as tensors and plain values only.
        checkpoint_every
            Epochs between checkpoints.
        resume
            Continue from the checkpoint in ``checkpoint_dir`` if there is one (a run that
            was killed): called with the same data, seed and arguments, the resumed run ends
            with exactly the weights of an uninterrupted one on CPU. A checkpoint of another
            run (other data shape, batch size, length, seed, ...) is refused.
        privacy
            Train with differential privacy (DP-SGD): ``{"epsilon": 10, "delta": None,
            "max_grad_norm": 1.0, "accountant": "rdp"}`` (see
            :class:`~scgensynth.train.PrivacySpec`; δ defaults to ``1 / (10 n)``). Mini-batches
            are drawn by Poisson sampling at rate ``batch_size / n``, each sample's gradient
            is clipped to ``max_grad_norm`` and Gaussian noise set by the accountant for the
            planned steps is added; the spent (ε, δ) is kept in :attr:`privacy_`, the model
            file and every generated AnnData. Only the training rows are protected: held-out
            rows (``train_size < 1``) score model selection and are not (with the default
            ``train_size=1.0`` there is no selection: the last weights are kept); covariate
            categories and frequencies are treated as public. Models without private
            training refuse it. See the user guide page "Sharing synthetic data safely".
        public
            With ``privacy``: public samples (same genes) for the scaling statistics, which
            computed on the training data would leak it. Required unless ``scaling="none"``.
        **kwargs
            Plan arguments accepted by name (see the model's docstring), or arguments of
            scvi-tools' / Lightning's ``Trainer``: e.g. ``max_time="00:00:30:00"`` or
            ``max_time={"minutes": 30}`` (Lightning stops the run then; the best weights
            so far are kept and the progress bar ends at the steps run) and
            ``enable_progress_bar=False``. The progress bar counts steps, like ``n_steps``.
        """
        check_public_use(privacy, public)
        if train_size is None:
            train_size = 0.9 if privacy is None else 1.0
        run = TrainingRun.plan(
            self, n_steps=n_steps, max_epochs=max_epochs, batch_size=batch_size,
            train_size=train_size, devices=devices, plan_kwargs=plan_kwargs, kwargs=kwargs,
            default_n_steps=self.default_n_steps, selection_every=(selection_every, 1),
            patience=(patience, 0), min_steps=(min_steps, 0),
        )  # fmt: skip
        self._selection_callback = None
        private = None if privacy is None else plan_private_run(self, run, privacy, public)
        self._private_run = private
        try:
            self._prepare_training(run)
            if selection is not None and (private is None or len(run.val_idx)):
                self._add_selection(run, selection)
            if private is not None:
                self._training_plan_cls = type(self)._private_plan_cls
            result = run.launch(
                accelerator=accelerator, devices=devices,
                datasplitter_kwargs=datasplitter_kwargs, checkpoint_dir=checkpoint_dir,
                checkpoint_every=checkpoint_every, resume=resume, selection=str(selection),
                sampler=None if private is None else private.sampler,
                privacy=None if private is None else str(private.spec.as_dict()),
            )  # fmt: skip
        finally:
            self.__dict__.pop("_training_plan_cls", None)
            self._private_run = None
        self.privacy_ = None if private is None else private.record(self, len(run.train_idx))
        if self.privacy_:
            logger.info(
                "Differential privacy spent: %s over %d steps.",
                describe(self.privacy_), self.privacy_["steps"],
            )  # fmt: skip
        if self._selection_callback is not None:
            cb = self._selection_callback
            self.selection_ = pd.DataFrame(cb.scores)
            self.best_epoch_ = cb.best_epoch
        return result

    def _prepare_training(self, run: TrainingRun) -> None:
        """Fit what the module needs from the training rows before the first step (none)."""

    def _add_selection(self, run: TrainingRun, selection: str) -> None:
        """Score the generator on held-out samples during the run; keep the best weights."""
        every = run.lengths["selection_every"] or max(1, run.total_steps // 40)
        min_steps = run.lengths["min_steps"]
        min_steps = run.total_steps // 2 if min_steps is None else min_steps
        callback = GeneratorSelection(
            self._make_criterion(run.train_idx, run.val_idx, selection, run.seed),
            every_n_epochs=max(1, round(every / run.batches_per_epoch)),
            patience=run.lengths["patience"],
            min_epochs=math.ceil(min_steps / run.batches_per_epoch),
        )
        run.callbacks.append(callback)
        self._selection_callback = callback

    #: default training length in mini-batches. On the bundled GTEx set (324 training samples,
    #: 26 tissues) the paper's settings need about this many for the generator to learn the
    #: tissues: 10,000 steps gave TSTR/TRTR 0.89, 20,000 gave 0.95 (see the closing note of
    #: issue 2 and benchmarks/bench_quality.py).
    default_n_steps: int = 20_000

    # -- generation ---------------------------------------------------------------------------
    def _generation_covariates(
        self,
        n_obs: int | None,
        covariates: pd.DataFrame | Mapping[str, Any] | None,
    ) -> GenerationRows:
        """The covariates to generate from: given, or resampled from the training rows."""
        n_obs = check_count(n_obs, "n_obs", minimum=0, allow_none=True)
        if covariates is None:
            n = self.covariates_.shape[0] if n_obs is None else n_obs
            return GenerationRows.resampled(self.covariates_, n)
        return GenerationRows.explicit(self.check_covariates(covariates, n_obs))

    def check_covariates(
        self, covariates: pd.DataFrame | Mapping[str, Any], n_obs: int | None = None
    ) -> pd.DataFrame:
        """``covariates`` checked against the model's and encoded with its categories.

        Parameters
        ----------
        covariates
            A frame with a column per covariate of the model (others are ignored), or a dict
            ``{covariate: value or one value per sample}``.
        n_obs
            Number of samples (needed when every value of a dict is a single value).

        Returns
        -------
        A frame with one column per covariate: categoricals with the training categories
        (1 and "1" are matched; a category without training samples is refused),
        continuous covariates as float32.

        Examples
        --------
        >>> model.check_covariates({"tissue": "Liver"}, n_obs=2)  # doctest: +SKIP
          tissue
        0  Liver
        1  Liver
        """
        keys = [*self._cat_keys, *self._cont_keys]
        covariates = _covariate_table(covariates, n_obs, keys)
        frame = pd.DataFrame(index=pd.RangeIndex(len(covariates)))
        for key in self._cat_keys:
            frame[key] = self.check_categories(key, covariates[key].to_numpy())
        for key in self._cont_keys:
            frame[key] = _continuous_values(covariates[key], key)
        return frame

    def check_categories(self, covariate: str, values: Any) -> pd.Categorical:
        """``values`` of a categorical covariate as the training categories, or a clear error.

        A value is matched by its string form too (``1`` and ``"1"``), never a boolean to a
        number or text; a category without training samples is refused (the model never
        learned it).

        Parameters
        ----------
        covariate
            A categorical covariate the model was trained on.
        values
            One value per sample (labels as in ``adata.obs``).

        Returns
        -------
        The values as a :class:`pandas.Categorical` with the training categories.

        Examples
        --------
        >>> import scgensynth as sgs
        >>> adata = sgs.datasets.gtex_tissues()
        >>> proxy = sgs.model.WGANGP.setup_proxy(adata, categorical_covariate_keys="tissue")
        >>> model = sgs.model.WGANGP(proxy, **sgs.model.WGANGP.quick_kwargs)
        >>> list(model.check_categories("tissue", ["Liver", "Lung"]))
        ['Liver', 'Lung']
        """
        if covariate not in self._cat_keys:
            msg = (
                f"{covariate!r} is not a categorical covariate of this model; it has "
                f"{self._cat_keys}."
            )
            raise KeyError(msg)
        cats = self.categories[covariate]
        values = np.asarray(values, dtype=object)
        known = pd.Index(cats)
        values_idx = pd.Index(values)
        unseen = values_idx[~values_idx.isin(known)].unique().tolist()
        if unseen:
            # match by string (e.g. 1 vs "1"), never a boolean to a number or text
            as_str = pd.Index([str(c) for c in cats])
            if not all(str(u) in as_str and not isinstance(u, bool | np.bool_) for u in unseen):
                msg = (
                    f"Unknown categories for {covariate!r}: {unseen}. The model knows "
                    f"{list(cats)}."
                )
                raise ValueError(msg)
            lookup = dict(zip(as_str, cats))
            values = np.array([lookup.get(str(v), v) for v in values], dtype=object)
        counts = self.covariates_[covariate].value_counts()
        empty = [c for c in pd.unique(pd.Series(values, dtype=object)) if counts.get(c, 0) == 0]
        if empty:
            msg = (
                f"Category {empty} of {covariate!r} had no training samples, so the model never "
                f"learned it; generate one of the categories it was trained on "
                f"({[c for c in cats if counts.get(c, 0) > 0]})."
            )
            raise ValueError(msg)
        return pd.Categorical(values, categories=cats)

    @doctest_skip("needs a trained model")
    @torch.inference_mode()
    def generate(
        self,
        n_obs: int | None = None,
        covariates: pd.DataFrame | Mapping[str, Any] | None = None,
        *,
        seed: int | None = None,
        batch_size: int = 4096,
        filename: str | os.PathLike | None = None,
        overwrite: bool = False,
        noise: Any = None,
        covariate_embeddings: Mapping[str, Any] | None = None,
        counts: str | None = None,
        **sampling_options: Any,
    ) -> AnnData:
        """Generate synthetic samples as a new AnnData.

        Every random draw is keyed by the seed and the sample's row, so the same seed gives
        the same samples whatever ``batch_size``, in memory or in a file.

        A model trained on raw counts (``scaling="counts"``) generates integer counts by
        default, ready for scVI or a differential-expression test on counts: each sample gets
        a library size drawn from the training samples' (a private model's: the public
        samples'), the model generates its expected counts at that depth (the mean), and each
        count is drawn from a Poisson distribution around its mean, the sampling noise of
        sequencing (see ``counts``). Poisson needs no statistic of the training data, so a
        private model draws its counts the same way.

        Parameters
        ----------
        n_obs
            Number of samples. Without ``covariates``, covariate rows are resampled (with
            replacement) from the training data, so class proportions are kept; default: as
            many samples as the training data has.
        covariates
            A DataFrame with one row per sample and a column per covariate of the model, or a
            dict ``{covariate: value}`` whose values are repeated ``n_obs`` times (or are
            sequences of one value per sample).
        seed
            Seed of the noise and of the covariate resampling (0 to 2**32 - 1); ``None``
            draws one from torch's global random state (set by ``scvi.settings.seed``).
        batch_size
            Samples generated at a time; memory beyond the output stays at one batch.
        filename
            Write the samples to this ``.h5ad`` file as they are generated, a batch at a time,
            and return it opened backed (``read_h5ad(filename, backed="r")``): neither the
            matrix nor the covariates are held in memory, so its size is bounded by the disk,
            not the RAM (a set that would not fit on the disk is refused before any work).
            The file is written beside its final path and moved into place when complete.
            The values are the same as in memory for the same seed.
        overwrite
            Replace an existing ``filename``; without it an existing file is refused. A file
            this process has open (an AnnData read backed from it, the model's own data) is
            always refused.
        noise
            The noise each sample is decoded from (``noise_input`` of the model's module:
            the latent ``z`` of the GANs, GMDA and the CVAE, the starting point ``x_T`` of
            DDPM), one row of ``noise_width`` values per sample. The same noise under other
            covariates gives the same synthetic individual under them (counterfactuals).
        covariate_embeddings
            ``{categorical covariate: one embedding vector per sample}`` fed to the generator
            instead of the covariate's categories (walks between categories, see
            :func:`scgensynth.tl.interpolate`).
        counts
            Models trained on raw counts only (``scaling_["mode"] == "counts"``):
            ``"sample"`` (their default) makes integer counts from the generated mean by
            unbiased random rounding (``floor(m) + 1`` with probability ``m - floor(m)``):
            the generator learned the real counts' spread, count noise included, so its
            values vary as real counts do and the rounding adds the least noise (at most
            1/4 in variance); ``"poisson"`` draws Poisson counts around the mean instead
            (adds sequencing-like noise: for a generator that outputs a smooth mean, e.g.
            one trained too briefly); ``"mean"`` returns the mean itself, the expected
            counts (floats, summing to the library size). Each random value comes from a
            uniform number keyed by the seed and row, so a batch size that changes the
            mean by float rounding moves a count, by one, only where that crosses a step
            (rarely). Measured against held-out real counts in
            ``benchmarks/results/counts.md``.
            Refused for a model trained on other values (they are generated on their own
            scale).
        **sampling_options
            The model's sampling options (:meth:`sampling_options`; e.g. DDPM's ``sampler``,
            ``n_sampling_steps``, ``eta``, ``guidance_scale``); most models have none.

        Returns
        -------
        AnnData with the generated values (float32, on the input's scale) in ``X``, ``var``
        copied from training, the covariates in ``obs`` and the generation parameters in
        ``uns["sgs"]`` (for a count model, ``uns["sgs"]["counts"]``: ``"sample"``,
        ``"poisson"`` or ``"mean"``); backed on ``filename`` when given. Counts are
        integer-valued float32, the dtype scanpy's readers give raw counts and scVI takes, in
        memory and in files.

        Examples
        --------
        >>> synth = model.generate(1000, seed=0)
        >>> liver = model.generate(50, covariates={"tissue": "Liver"})
        >>> big = model.generate(50_000, seed=0, filename="synth.h5ad")  # backed, on disk
        >>> expected = model.generate(1000, seed=0, counts="mean")  # a count model's mean
        """
        self._check_if_trained(warn=False)
        settings = self._sampling_settings(sampling_options)
        counts = self._counts_output(counts)
        path = check_output_path(filename, overwrite=overwrite)
        batch_size = check_count(batch_size, "batch_size")
        seed = resolve_seed(seed)
        self._check_requested_size(n_obs, path)
        plan = self._generation_covariates(n_obs, covariates)
        per_sample = self._held_inputs(plan.n, noise, covariate_embeddings)
        return self._generate(
            plan, seed=seed, batch_size=batch_size, filename=path, per_sample=per_sample,
            sample_kwargs=settings or None, uns=self._sampling_record(settings), counts=counts,
        )  # fmt: skip

    def _counts_output(self, counts: Any) -> str | None:
        """``generate``'s ``counts`` checked: ``"sample"`` by default for a count model."""
        mode = self.scaling_["mode"]
        if counts is not None and (not isinstance(counts, str) or counts not in COUNTS_OPTIONS):
            msg = (
                f"counts must be one of {list(COUNTS_OPTIONS)} (integer counts rounded from "
                f"the generated mean, Poisson counts around it, or the mean itself), not "
                f"{counts!r}."
            )
            raise ValueError(msg)
        if mode != "counts":
            if counts is not None:
                msg = (
                    f"counts={counts!r} is for models trained on raw counts "
                    f"(scaling='counts'); this {type(self).__name__} was trained with "
                    f"scaling={mode!r} and generates values on that scale. Leave counts unset, "
                    "or train on the raw counts (integer values) to generate counts."
                )
                raise ValueError(msg)
            return None
        return "sample" if counts is None else counts

    # -- sampling options: the model's own, declared here --------------------------------------
    @doctest_skip("needs a trained model")
    def sampling_options(self) -> dict[str, Any]:
        """The model's sampling options and their defaults (empty for most generators).

        Examples
        --------
        >>> model.sampling_options()  # a DDPM
        {'sampler': 'ddim', 'n_sampling_steps': 50, 'eta': 0.0, 'guidance_scale': 1.0}
        """
        return {}

    def _sampling_settings(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """``options`` checked against :meth:`sampling_options`, with the defaults filled in."""
        defaults = self.sampling_options()
        unknown = sorted(set(options) - set(defaults))
        if unknown:
            takes = f"its sampling options are {sorted(defaults)}" if defaults else "it has none"
            msg = f"Unknown argument(s) {unknown} for {type(self).__name__}.generate; {takes}."
            raise TypeError(msg)
        return {**defaults, **{k: v for k, v in options.items() if v is not None}}

    def _sampling_record(self, settings: dict[str, Any]) -> dict[str, Any]:
        """What ``uns["sgs"]`` records of the sampling settings."""
        return dict(settings)

    def deterministic_sampling(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Sampling settings under which a sample depends on its covariates and noise only.

        Counterfactuals generate the same individuals (the same noise) under two covariate
        values; any other randomness in sampling would differ between the two. A model
        whose sampler draws more noise (DDPM's ancestral sampler) refuses such options.
        """
        return self._sampling_settings(options)

    # -- inputs held fixed -------------------------------------------------------------------
    @property
    def noise_input(self) -> str | None:
        """The input each sample is decoded from (``None``: none can be held fixed)."""
        return self.module.noise_input

    @property
    def noise_width(self) -> int | None:
        """Width of :attr:`noise_input` (values per sample; None without one)."""
        return self.module.noise_width

    def embed_categories(self, covariate: str, categories: Sequence[Any]) -> torch.Tensor:
        """The generator's learned embedding vectors of ``categories`` of ``covariate``.

        Examples
        --------
        >>> model.embed_categories("tissue", ["Lung", "Liver"]).shape  # doctest: +SKIP
        torch.Size([2, 6])
        """
        embedder = self.module.covariate_embedder()
        if embedder is None:
            msg = (
                f"{type(self).__name__} has no learned covariate embeddings (its categories "
                "are one-hot or it has no network); walks between categories need them."
            )
            raise TypeError(msg)
        if covariate not in self._cat_keys:
            msg = (
                f"{covariate!r} is not a categorical covariate of the model; it has "
                f"{self._cat_keys}."
            )
            raise ValueError(msg)
        codes = self.check_categories(covariate, categories)
        device = self.module.scaling.mean.device
        with torch.inference_mode():
            index = torch.as_tensor(codes.codes.astype(np.int64), device=device)
            return embedder.embed(self._cat_keys.index(covariate), index).cpu()

    def _held_inputs(
        self, n: int, noise: Any, covariate_embeddings: Mapping[str, Any] | None
    ) -> dict[str, Any] | None:
        """The module inputs given per sample (noise, covariate embeddings), checked."""
        held: dict[str, Any] = {}
        if noise is not None:
            if self.noise_input is None:
                msg = f"{type(self).__name__} has no noise input that can be held fixed."
                raise TypeError(msg)
            values = torch.as_tensor(np.asarray(noise, dtype=np.float32))
            if tuple(values.shape) != (n, self.noise_width):
                msg = (
                    f"noise must have one row of {self.noise_width} values per sample "
                    f"({n}), not the shape {tuple(values.shape)}."
                )
                raise ValueError(msg)
            held[self.noise_input] = values
        if covariate_embeddings:
            embedded: list[torch.Tensor | None] = [None] * len(self._cat_keys)
            for key, vectors in covariate_embeddings.items():
                first = [self.covariates_[key].iloc[0]] if key in self._cat_keys else []
                width = self.embed_categories(key, first).shape[1]  # also checks the key
                values = torch.as_tensor(np.asarray(vectors, dtype=np.float32))
                if tuple(values.shape) != (n, width):
                    msg = (
                        f"covariate_embeddings[{key!r}] must have one row of {width} values "
                        f"per sample ({n}), not the shape {tuple(values.shape)}."
                    )
                    raise ValueError(msg)
                embedded[self._cat_keys.index(key)] = values
            held["cat_embedded"] = embedded
        return held or None

    def check_generation_size(self, n_obs: int, filename: str | os.PathLike | None = None):
        """Refuse ``n_obs`` samples that would not fit in memory (or on ``filename``'s disk).

        Examples
        --------
        >>> model.check_generation_size(10**12)  # doctest: +SKIP
        Traceback (most recent call last):
        ...
        MemoryError: generate: 1,000,000,000,000 samples x 467 genes need about ...
        """
        n_obs = check_count(n_obs, "n_obs", minimum=0)
        self._check_room(n_obs, None if filename is None else Path(filename))

    @torch.inference_mode()
    def _generate(
        self,
        plan: GenerationRows,
        *,
        seed: int,
        batch_size: int = 4096,
        sample_kwargs: dict[str, Any] | None = None,
        per_sample: dict[str, Any] | None = None,
        uns: dict[str, Any] | None = None,
        filename: Path | None = None,
        counts: str | None = None,
    ) -> AnnData:
        """Generate one sample per row of ``plan`` (covariates) as an AnnData.

        ``sample_kwargs`` go to the module's ``sample`` unchanged; ``per_sample`` values (a
        tensor with one row per sample, or a list of such tensors / ``None``) are cut into
        the same batches as the covariates. ``uns`` is added to ``uns["sgs"]``. With
        ``filename`` (checked by :func:`check_output_path`) the batches go straight into
        that ``.h5ad`` file, returned backed. ``counts="sample"`` rounds a count model's
        generated mean to integers at random (:func:`round_counts`), ``"poisson"`` draws
        Poisson counts around it (:func:`draw_counts`), ``"mean"`` or ``None`` keeps it.
        """
        n = plan.n
        batch_size = check_count(batch_size, "batch_size")
        self._check_room(n, filename)
        libraries = self.scaling_["mode"] == "counts" and len(self.library_size_)
        module = self.module
        was_training = module.training
        module.eval()
        device = module.scaling.mean.device

        def cut(value, start, stop):
            if value is None:
                return None
            if isinstance(value, list | tuple):
                return [cut(v, start, stop) for v in value]
            return value[start:stop].to(device)

        def as_tensor(values):
            return None if values is None else torch.as_tensor(values, device=device)

        def fill(sink) -> None:
            """Generate every batch and pass it to ``sink``."""
            noise = RowNoise(seed)
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                frame, rows = plan.block(start, stop, seed)
                cat, cont = self._encode(frame)
                library = None
                if libraries:  # a private model's library sizes are public ones: resampled
                    own = rows if self.privacy_ is None else None
                    library = plan.library_sizes(self.library_size_, own, start, stop, seed)
                noise.window(start, stop)
                kw = {
                    "cat": as_tensor(cat),
                    "cont": as_tensor(cont),
                    "n": stop - start,
                    "library_size": as_tensor(library),
                    "generator": noise,
                    **(sample_kwargs or {}),
                    **{k: cut(v, start, stop) for k, v in (per_sample or {}).items()},
                }
                values = module.sample(**kw).cpu().numpy()
                if counts in INTEGER_COUNTS:
                    values = INTEGER_COUNTS[counts](values, seed, start)
                sink(start, values, frame)

        info = {
            "model": type(self).__name__,
            "seed": seed,
            "n_obs": n,
            "scaling": self.scaling_["mode"],
            **({"counts": counts} if counts else {}),
            "covariates": [*self._cat_keys, *self._cont_keys],
            **({"privacy": dict(self.privacy_)} if self.privacy_ else {}),
            **(uns or {}),
        }
        var = self.adata.var.copy()
        try:
            if filename is not None:
                return write_backed(filename, n, var, {"sgs": info}, plan.columns(), fill)
            return collect_in_memory(n, var, {"sgs": info}, plan.columns(), fill)
        finally:
            module.train(was_training)  # a later train() must not inherit eval mode

    def _check_requested_size(self, n_obs: Any, filename: Path | None) -> None:
        """``n_obs`` checked, and its room, before covariates for it are built."""
        n_obs = check_count(n_obs, "n_obs", minimum=0, allow_none=True)
        if n_obs is not None:
            self._check_room(n_obs, filename)

    def _check_room(self, n: int, filename: Path | None = None) -> None:
        """Refuse ``n`` samples that would not fit in memory, or on the disk of ``filename``.

        Checked before any covariate row is built, so a mistyped ``n_obs=10**9`` fails at
        once with the sizes, not with a MemoryError (or a full disk) hours later.
        """
        n_columns = len(self._cat_keys) + len(self._cont_keys)
        if filename is None:
            check_fits_in_memory(n, self.adata.n_vars, n_columns, "generate")
            return
        check_output_path(filename, overwrite=True, inputs=self._input_files())
        check_disk_space(filename, bytes_needed(n, self.adata.n_vars, n_columns))
        check_backed_obs_fits(n, n_columns)

    # -- save / load --------------------------------------------------------------------------
    @classmethod
    def _load_proxy(cls, adata: AnnData, setup_args: Mapping[str, Any]) -> AnnData:
        cat = as_key_list(
            setup_args.get("categorical_covariate_keys"), "categorical_covariate_keys"
        )
        cont = as_key_list(
            setup_args.get("continuous_covariate_keys"), "continuous_covariate_keys"
        )
        check_covariates(adata, cat, cont)
        return proxy_anndata(adata, setup_args.get("layer"), cat, cont, warn_unused=False)

    def __repr__(self) -> str:
        keys = [*self._cat_keys, *self._cont_keys]
        return (
            f"{type(self).__name__}(n_genes={self.adata.n_vars}, covariates={keys}, "
            f"scaling={self.scaling_['mode']!r}, trained={self.is_trained_}"
            + (f", private: {describe(self.privacy_)}" if self.privacy_ else "")
            + ")"
        )
