from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import torch
from scvi import REGISTRY_KEYS, settings
from scvi.data import AnnDataManager
from scvi.data.fields import CategoricalJointObsField, LayerField, NumericalJointObsField
from scvi.dataloaders import DataSplitter
from scvi.model._utils import use_distributed_sampler
from scvi.model.base import BaseModelClass, UnsupervisedTrainingMixin

from scgensynth.module._random import RowNoise
from scgensynth.pp import detect_scaling, fit_scaling, iter_row_chunks
from scgensynth.pp._scaling import get_matrix
from scgensynth.train import GeneratorSelection, SelectionCriterion
from scgensynth.train._checkpoint import ResumableCheckpoint, check_checkpoint, checkpoint_path

from ._generation import (
    GenerationRows,
    bytes_needed,
    check_backed_obs_fits,
    collect_in_memory,
    write_backed,
)
from ._output import check_disk_space, check_output_path
from ._save import SafeSaveMixin
from ._validation import (
    as_key_list,
    check_count,
    check_covariate_size,
    check_covariates,
    check_seed,
    check_shape,
    check_training_lengths,
    covariate_frame_from_dict,
)

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)

SOURCE_KEY = "sgs_source"


def proxy_anndata(
    adata: AnnData,
    layer: str | None,
    categorical_covariate_keys: Sequence[str],
    continuous_covariate_keys: Sequence[str],
    *,
    warn_unused: bool = True,
) -> AnnData:
    """A private AnnData that shares the expression matrix with ``adata`` (no copy).

    The generators register their scvi-tools fields on this proxy, so the user's AnnData
    is never written to. Categories without samples are left out of its covariates (with a
    warning unless ``warn_unused=False``, as when a saved model is loaded).
    """
    X = get_matrix(adata, layer)
    if X is None:
        msg = "adata.X is None; pass the layer that holds expression values with layer=..."
        raise ValueError(msg)
    if isinstance(X, h5py.Dataset):  # a backed dense matrix stays on disk
        X = _RowsInAnyOrder(X.id)
    keys = [*categorical_covariate_keys, *continuous_covariate_keys]
    obs = adata.obs[keys].copy()
    obs.index = pd.RangeIndex(adata.n_obs).astype(str)  # unique even if obs_names are not
    for key in categorical_covariate_keys:
        obs[key] = _without_unused_categories(obs[key], key, warn_unused)
    var = adata.var.copy()
    with np.errstate(all="ignore"):
        if layer is None:
            return ad.AnnData(X=X, obs=obs, var=var)
        return ad.AnnData(obs=obs, var=var, layers={layer: X})


def _without_unused_categories(col: pd.Series, key: str, warn: bool = True) -> pd.Series:
    """A categorical column without the categories no sample has (with a warning).

    A category without samples would get an embedding that training never updates, and
    generating it would give noise that looks like data.
    """
    if not isinstance(col.dtype, pd.CategoricalDtype):
        return col
    unused = col.cat.categories[~col.cat.categories.isin(col.dropna().unique())]
    if len(unused) and warn:
        logger.warning(
            "Categorical covariate %r has %d categor%s without samples (%s); the model leaves "
            "%s out and cannot generate %s. Drop them with "
            "`adata.obs[%r] = adata.obs[%r].cat.remove_unused_categories()` to silence this.",
            key,
            len(unused),
            "y" if len(unused) == 1 else "ies",
            list(unused[:5]),
            "it" if len(unused) == 1 else "them",
            "it" if len(unused) == 1 else "them",
            key,
            key,
        )
    return col.cat.remove_unused_categories() if len(unused) else col


class _RowsInAnyOrder(h5py.Dataset):
    """An on-disk (backed) matrix whose rows can be read in any order.

    h5py reads only increasing row indices; scvi-tools sorts mini-batch indices only for
    AnnData objects that are themselves backed, which the private proxy is not. Rows are
    read in increasing order and returned in the order asked for, so a mini-batch from a
    backed file is the one the same seed gives in memory.
    """

    def __getitem__(self, args):
        rows = args[0] if isinstance(args, tuple) else args
        if isinstance(rows, list | np.ndarray) and np.ndim(rows) == 1 and len(rows) > 1:
            rows = np.asarray(rows)
            order = np.argsort(rows, kind="stable")
            unique, inverse = np.unique(rows[order], return_inverse=True)
            rest = args[1:] if isinstance(args, tuple) else ()
            block = super().__getitem__((unique, *rest)) if rest else super().__getitem__(unique)
            out = np.empty((len(rows), *block.shape[1:]), dtype=block.dtype)
            out[order] = block[inverse]
            return out
        return super().__getitem__(args)


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


def _finish_training(model, train_idx, val_idx) -> None:
    """Keep the split, and make the logged history numeric (scvi-tools keeps objects)."""
    model.train_indices_ = np.asarray(train_idx)
    model.validation_indices_ = np.asarray(val_idx)
    for key, frame in (model.history_ or {}).items():
        with contextlib.suppress(TypeError, ValueError):
            model.history_[key] = frame.astype(float)


class BaseGeneratorModel(SafeSaveMixin, UnsupervisedTrainingMixin, BaseModelClass):
    """Base class of scgensynth's conditional generators.

    It registers expression values and covariates through scvi-tools' ``AnnDataManager``,
    owns the scaling of expression values (fitted on the data, inverted on generation),
    splits data for model selection with scvi-tools' ``DataSplitter``, and implements
    :meth:`generate`. A generator subclass adds a torch module (``_module_cls``), a
    training plan (``_training_plan_cls``) and its defaults.

    Examples
    --------
    >>> class MyGenerator(BaseGeneratorModel):
    ...     _module_cls = MyModule  # a ConditionalGeneratorModule implementing generate_scaled
    ...     _training_plan_cls = MyPlan
    ...
    ...     def __init__(self, adata=None, scaling="auto", n_hidden=(256, 256)):
    ...         super().__init__(adata, scaling=scaling)
    ...         self.module = self._module_cls(n_input=self.summary_stats.n_vars, ...)
    ...         self._init_module_statistics()
    ...         self.init_params_ = self._get_init_params(locals())
    """

    _module_cls = None
    _training_plan_cls = None
    _data_splitter_cls = DataSplitter
    #: plan arguments accepted directly by :meth:`train`
    _plan_arg_names: tuple[str, ...] = ()

    def __init__(self, adata: AnnData | None = None, scaling: str = "auto"):
        super().__init__(adata)
        check_shape(self.adata)
        self._cat_keys = list(self._cat_state().get("field_keys", []))
        self._cont_keys = list(self._cont_state().get("columns", []))
        x_field = self.adata_manager.data_registry[REGISTRY_KEYS.X_KEY]
        layer = x_field.attr_key if x_field.attr_name == "layers" else None
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
            logger.warning(
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
        self.covariates_ = self._covariate_frame(self.adata)
        for key in self._cat_keys:
            empty = self.covariates_[key].value_counts().loc[lambda c: c == 0].index.tolist()
            if empty:
                logger.warning(
                    "Categorical covariate %r has categories without samples (%s); the model "
                    "cannot learn them and refuses to generate them.",
                    key,
                    empty[:5],
                )

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
    def _split(self, train_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Train/validation indices, stratified on the joint categorical covariates."""
        n = self.adata.n_obs
        rng = np.random.default_rng(seed)
        if train_size >= 1.0:
            return rng.permutation(n), np.array([], dtype=int)
        if self._cat_keys:
            groups = self.covariates_[self._cat_keys].astype(str).agg("|".join, axis=1)
            groups = groups.to_numpy()
        else:
            groups = np.zeros(n, dtype=int)
        val: list[np.ndarray] = []
        for g in pd.unique(groups):
            members = rng.permutation(np.flatnonzero(groups == g))
            n_val = math.floor(len(members) * (1 - train_size) + rng.random())
            n_val = min(n_val, len(members) - 1)  # every group keeps a training sample
            val.append(members[:n_val])
        val_idx = np.sort(np.concatenate(val)) if val else np.array([], dtype=int)
        train_idx = np.setdiff1d(np.arange(n), val_idx)
        return rng.permutation(train_idx), val_idx

    def _scaled_rows(self, rows: np.ndarray) -> torch.Tensor:
        X = self.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
        scaling = copy.deepcopy(self.module.scaling).cpu()  # leave the module on its device
        chunk = max(1, (64 * 2**20) // (8 * max(X.shape[1], 1)))
        out = torch.empty(len(rows), X.shape[1])
        start = 0
        for block in iter_row_chunks(X, chunk, rows):
            out[start : start + len(block)] = scaling(torch.as_tensor(block, dtype=torch.float32))
            start += len(block)
        return out

    def _make_criterion(
        self, train_idx: np.ndarray, val_idx: np.ndarray, kind: str, seed: int
    ) -> SelectionCriterion:
        rng = np.random.default_rng(seed)
        n_extra = max(0, 2000 - len(val_idx))
        extra = rng.choice(train_idx, size=min(n_extra, len(train_idx)), replace=False)
        rows = np.concatenate([val_idx, extra]).astype(int)
        cat, cont = self._encode(self.covariates_.iloc[rows])
        return SelectionCriterion(
            real=self._scaled_rows(rows),
            cat=None if cat is None else torch.as_tensor(cat),
            cont=None if cont is None else torch.as_tensor(cont),
            kind=kind,
            seed=seed,
        )

    # -- training -----------------------------------------------------------------------------
    def train(
        self,
        max_epochs: int | None = None,
        *,
        n_steps: int | None = None,
        batch_size: int = 32,
        train_size: float = 0.9,
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
            criterion then scores against training samples).
        selection
            ``"conditional"`` (correlation + conditional fidelity + precision/recall),
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
        **kwargs
            Plan arguments accepted by name (see the model's docstring), or arguments of
            scvi-tools' / Lightning's ``Trainer``.
        """
        plan_kwargs = dict(plan_kwargs or {})
        for name in self._plan_arg_names:
            if name in kwargs:
                plan_kwargs[name] = kwargs.pop(name)
        _check_trainer_kwargs(kwargs, self._plan_arg_names)
        check_training_lengths(
            n_steps=n_steps, max_epochs=max_epochs, batch_size=batch_size,
            train_size=train_size, selection_every=(selection_every, 1),
            patience=(patience, 0), min_steps=(min_steps, 0),
        )  # fmt: skip
        seed = int(settings.seed or 0)
        train_idx, val_idx = self._split(train_size, seed)
        if len(train_idx) < batch_size:
            msg = (
                f"Only {len(train_idx)} training samples ({self.adata.n_obs} samples x "
                f"train_size={train_size}) for a mini-batch of {batch_size}. Pass a smaller "
                f"batch_size (e.g. batch_size={max(2, len(train_idx) // 4)}) or train_size=1.0."
            )
            raise ValueError(msg)
        # with data parallelism every process takes its share of each epoch's batches, and a
        # step is one mini-batch per process: n_steps still counts optimiser steps
        distributed, world = _data_parallel_world(kwargs, devices)
        batches_per_epoch = math.ceil(len(train_idx) / (batch_size * world))
        if max_epochs is None:
            n_steps = self._default_n_steps(len(train_idx)) if n_steps is None else n_steps
            max_epochs = max(1, math.ceil(n_steps / batches_per_epoch))
        total_steps = max_epochs * batches_per_epoch
        splitter = _make_splitter(
            self, train_idx, val_idx, batch_size, distributed, datasplitter_kwargs
        )
        callbacks = list(kwargs.pop("callbacks", []))
        self._selection_callback = None
        if selection is not None:
            every = selection_every or max(1, total_steps // 40)
            min_steps = total_steps // 2 if min_steps is None else int(min_steps)
            callback = GeneratorSelection(
                self._make_criterion(train_idx, val_idx, selection, seed),
                every_n_epochs=max(1, round(every / batches_per_epoch)),
                patience=patience,
                min_epochs=math.ceil(min_steps / batches_per_epoch),
            )
            callbacks.append(callback)
            self._selection_callback = callback
        _check_checkpoint_args(checkpoint_dir, checkpoint_every, resume)
        _configure_run(
            self, callbacks, kwargs, train_idx=train_idx, val_idx=val_idx,
            batch_size=batch_size, max_epochs=max_epochs, batches_per_epoch=batches_per_epoch,
            train_size=train_size, seed=seed, checkpoint_dir=checkpoint_dir,
            checkpoint_every=checkpoint_every, resume=resume, selection=str(selection),
        )  # fmt: skip
        logger.info(
            "Training %s on %d samples (%d held out) for %d epochs = %d steps of %d samples%s.",
            type(self).__name__,
            len(train_idx),
            len(val_idx),
            max_epochs,
            total_steps,
            batch_size,
            f" in each of {world} processes" if world > 1 else "",
        )
        result = super().train(
            max_epochs=max_epochs,
            accelerator=accelerator,
            devices=devices,
            batch_size=batch_size,
            datamodule=splitter,
            plan_kwargs=plan_kwargs,
            callbacks=callbacks,
            **kwargs,
        )
        _finish_training(self, train_idx, val_idx)
        if self._selection_callback is not None:
            cb = self._selection_callback
            self.selection_ = pd.DataFrame(cb.scores)
            self.best_epoch_ = cb.best_epoch
        return result

    #: default training length in mini-batches. On the bundled GTEx set (324 training samples,
    #: 26 tissues) the paper's settings need about this many for the generator to learn the
    #: tissues: 10,000 steps gave TSTR/TRTR 0.89, 20,000 gave 0.95 (see the closing note of
    #: issue 2 and benchmarks/bench_quality.py).
    default_n_steps: int = 20_000

    def _default_n_steps(self, n_train: int) -> int:
        return self.default_n_steps

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
        return GenerationRows.explicit(self._checked_covariates(n_obs, covariates))

    def _checked_covariates(
        self, n_obs: int | None, covariates: pd.DataFrame | Mapping[str, Any]
    ) -> pd.DataFrame:
        """``covariates`` (a frame, or a dict of values or columns) checked and encoded."""
        keys = [*self._cat_keys, *self._cont_keys]
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
        frame = pd.DataFrame(index=pd.RangeIndex(len(covariates)))
        for key, cats in self.categories.items():
            frame[key] = self._checked_categories(key, cats, covariates[key].to_numpy())
        for key in self._cont_keys:
            col = covariates[key]
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
            frame[key] = values.astype(np.float32)
        return frame

    def _checked_categories(self, key: str, cats: list, values: np.ndarray) -> pd.Categorical:
        """``values`` of a categorical covariate as the training categories, or a clear error."""
        known = pd.Index(cats)
        values_idx = pd.Index(values)
        unseen = values_idx[~values_idx.isin(known)].unique().tolist()
        if unseen:
            # match by string (e.g. 1 vs "1"), never a boolean to a number or text
            as_str = pd.Index([str(c) for c in cats])
            if all(str(u) in as_str and not isinstance(u, bool | np.bool_) for u in unseen):
                lookup = dict(zip(as_str, cats))
                values = np.array([lookup.get(str(v), v) for v in values], dtype=object)
            else:
                msg = f"Unknown categories for {key!r}: {unseen}. The model knows {list(cats)}."
                raise ValueError(msg)
        counts = self.covariates_[key].value_counts()
        empty = [c for c in pd.unique(pd.Series(values, dtype=object)) if counts.get(c, 0) == 0]
        if empty:
            msg = (
                f"Category {empty} of {key!r} had no training samples, so the model never "
                f"learned it; generate one of the categories it was trained on "
                f"({[c for c in cats if counts.get(c, 0) > 0]})."
            )
            raise ValueError(msg)
        return pd.Categorical(values, categories=cats)

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
    ) -> AnnData:
        """Generate synthetic samples as a new AnnData.

        Every random draw is keyed by the seed and the sample's row number, so the same
        seed gives the same samples whatever ``batch_size``, in memory or in a file.

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
            Seed of the noise and of the covariate resampling (0 to 2**63 - 1); ``None``
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

        Returns
        -------
        AnnData with the generated values (float32, on the input's scale) in ``X``, ``var``
        copied from training, the covariates in ``obs`` and the generation parameters in
        ``uns["sgs"]``; backed on ``filename`` when given.

        Examples
        --------
        >>> synth = model.generate(1000, seed=0)
        >>> liver = model.generate(50, covariates={"tissue": "Liver"})
        >>> big = model.generate(50_000, seed=0, filename="synth.h5ad")  # backed, on disk
        """
        self._check_if_trained(warn=False)
        path = check_output_path(filename, overwrite=overwrite)
        batch_size = check_count(batch_size, "batch_size")
        seed = self._generation_seed(seed)
        plan = self._generation_covariates(n_obs, covariates)
        return self._generate(plan, seed=seed, batch_size=batch_size, filename=path)

    @staticmethod
    def _generation_seed(seed: int | None) -> int:
        """``seed`` checked, or one drawn from torch's global random state."""
        if seed is None:
            return int(torch.randint(0, 2**31 - 1, (1,)).item())
        return check_seed(seed)

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
    ) -> AnnData:
        """Generate one sample per row of ``plan`` (covariates) as an AnnData.

        ``sample_kwargs`` go to the module's ``sample`` unchanged; ``per_sample`` values (a
        tensor with one row per sample, or a list of such tensors / ``None``) are cut into
        the same batches as the covariates. ``uns`` is added to ``uns["sgs"]``. With
        ``filename`` (checked by :func:`check_output_path`) the batches go straight into
        that ``.h5ad`` file, returned backed.
        """
        n = plan.n
        batch_size = check_count(batch_size, "batch_size")
        if filename is not None:
            check_output_path(filename, overwrite=True, inputs=self._input_files())
            n_columns = len(self._cat_keys) + len(self._cont_keys)
            check_disk_space(filename, bytes_needed(n, self.adata.n_vars, n_columns))
            check_backed_obs_fits(n, n_columns)
        counts = self.scaling_["mode"] == "counts" and len(self.library_size_)
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
                if counts:
                    library = plan.library_sizes(self.library_size_, rows, start, stop, seed)
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
                sink(start, module.sample(**kw).cpu().numpy(), frame)

        info = {
            "model": type(self).__name__,
            "seed": seed,
            "n_obs": n,
            "scaling": self.scaling_["mode"],
            "covariates": [*self._cat_keys, *self._cont_keys],
            **(uns or {}),
        }
        var = self.adata.var.copy()
        try:
            if filename is not None:
                return write_backed(filename, n, var, {"sgs": info}, plan.columns(), fill)
            return collect_in_memory(n, var, {"sgs": info}, plan.columns(), fill)
        finally:
            module.train(was_training)  # a later train() must not inherit eval mode

    def _input_files(self) -> list[str]:
        """Files the model reads its data from (a backed training AnnData)."""
        X = self.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
        name = getattr(getattr(X, "file", None), "filename", None)
        return [name] if name else []

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
            f"scaling={self.scaling_['mode']!r}, trained={self.is_trained_})"
        )
