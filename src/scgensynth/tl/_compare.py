from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scgensynth._utils._checks import check_fraction, check_seed
from scgensynth._utils._deprecation import renamed_arguments
from scgensynth._utils._docs import doctest_skip
from scgensynth.model import available, get_model_class

from ._train import train

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)


def _stratified_split(adata: AnnData, labels_key: str, test_size: float, seed: int):
    from sklearn.model_selection import train_test_split

    if labels_key not in adata.obs:
        msg = f"{labels_key!r} is not a column of .obs (columns: {list(adata.obs.columns)})."
        raise KeyError(msg)
    labels = adata.obs[labels_key]
    if labels.isna().any():
        msg = f"{int(labels.isna().sum())} samples have no {labels_key!r}; drop them first."
        raise ValueError(msg)
    counts = labels.value_counts()
    if (counts < 2).any():
        small = list(counts[counts < 2].index)
        msg = (
            f"Every {labels_key!r} class needs at least 2 samples for a stratified split; "
            f"{small} have 1. Drop or merge them."
        )
        raise ValueError(msg)
    test_size = check_fraction(test_size, "test_size", closed=False)
    idx_train, idx_test = train_test_split(
        np.arange(adata.n_obs), test_size=test_size, stratify=labels.astype(str),
        random_state=seed,
    )  # fmt: skip
    return adata[np.sort(idx_train)].copy(), adata[np.sort(idx_test)].copy()


def _values_in_x(adata: AnnData, layer: str | None) -> AnnData:
    if layer is None:
        return adata
    import anndata as ad

    return ad.AnnData(X=adata.layers[layer], obs=adata.obs.copy(), var=adata.var.copy())


@doctest_skip("trains a generator (minutes)")
@renamed_arguments({"label_key": "labels_key"})
def compare_generators(
    adata: AnnData,
    labels_key: str,
    *,
    models: Sequence[str] | None = None,
    test_size: float = 0.3,
    seed: int = 0,
    layer: str | None = None,
    categorical_covariate_keys: Sequence[str] | str | None = None,
    continuous_covariate_keys: Sequence[str] | str | None = None,
    n_obs: int | None = None,
    metrics: str | Sequence[str] = "all",
    model_kwargs: dict[str, dict[str, Any]] | None = None,
    evaluate_kwargs: dict[str, Any] | None = None,
    **train_kwargs,
) -> pd.DataFrame:
    """Train several generators on one stratified split and evaluate them side by side.

    The comparison of Lacan et al. (2023) on your data: ``adata`` is split once (stratified
    by ``labels_key``); every model is trained on the same training part, generates as many
    samples as there are training samples (covariates resampled from them), and
    :func:`scgensynth.metrics.evaluate` scores the samples against the training part with the
    held-out part as ``holdout`` (classifiers are tested on it, the privacy check measures
    against it). ``adata`` is not modified.

    Parameters
    ----------
    adata
        Samples x genes with ``labels_key`` in ``.obs``.
    labels_key
        The label to stratify by and to evaluate with (e.g. ``"tissue"``); also the
        categorical covariate unless ``categorical_covariate_keys`` says otherwise.
    models
        Names from :func:`scgensynth.model.available` (default: all of them).
    test_size
        Share of samples held out.
    seed
        Seed of the split, of every model's training and generation, and of the metrics.
    layer, categorical_covariate_keys, continuous_covariate_keys
        As for :func:`train`.
    n_obs
        Synthetic samples per model (default: the training size).
    metrics
        Passed to :func:`~scgensynth.metrics.evaluate` (``"all"``, ``"fast"`` or names).
    model_kwargs
        Per-model arguments, e.g. ``{"wgan": {"n_steps": 5000}}``.
    evaluate_kwargs
        More arguments of :func:`~scgensynth.metrics.evaluate` (``k``, ``classifier``, ...).
    **train_kwargs
        Arguments given to every model's training (``n_steps``, ``batch_size``, ...).

    Returns
    -------
    A tidy DataFrame: one row per model and value, with the columns of
    :func:`~scgensynth.metrics.evaluate` (``metric``, ``value``, ``higher_is_better``,
    ``optimum``, ``group``, ``params``) after ``model``; each model also has the rows
    ``train_seconds`` and ``n_parameters`` (trainable ones: a weight average is not counted).
    ``df.pivot_table(index="metric", columns="model", values="value")`` gives the
    model x metric table.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> adata = sgs.datasets.gtex_tissues()
    >>> table = sgs.tl.compare_generators(adata, "tissue", models=["wgan"], n_steps=2000)
    >>> table.query("group == 'all'").pivot_table(index="metric", columns="model", values="value")
    """
    from scgensynth.metrics import evaluate

    if isinstance(models, str):
        models = [models]
    registered = list(available().index)
    names = registered if models is None else list(models)
    if not names:
        msg = (
            f"models is empty; name at least one generator (one of {registered}), or "
            "pass models=None to compare them all."
        )
        raise ValueError(msg)
    for name in names:
        get_model_class(name)  # unknown names fail before any training
    if len(set(names)) != len(names):
        msg = f"models lists a name twice: {names}."
        raise ValueError(msg)
    model_kwargs = dict(model_kwargs or {})
    unknown = set(model_kwargs) - set(names)
    if unknown:
        msg = f"model_kwargs names models that are not compared: {sorted(unknown)}."
        raise ValueError(msg)
    cat_keys = [labels_key] if categorical_covariate_keys is None else categorical_covariate_keys
    seed = check_seed(seed)
    train_part, test_part = _stratified_split(adata, labels_key, test_size, seed)
    # generated samples carry their values in X, whatever the model was trained on
    eval_train, eval_test = (_values_in_x(a, layer) for a in (train_part, test_part))
    logger.info(
        "compare_generators: %d training and %d held-out samples; models %s",
        train_part.n_obs, test_part.n_obs, names,
    )  # fmt: skip
    tables = []
    for name in names:
        t = time.perf_counter()
        kwargs = {**train_kwargs, **model_kwargs.get(name, {})}
        fitted = train(
            train_part.copy(),
            name,
            layer=layer,
            categorical_covariate_keys=cat_keys,
            continuous_covariate_keys=continuous_covariate_keys,
            seed=seed,
            **kwargs,
        )
        seconds = time.perf_counter() - t
        synth = fitted.generate(n_obs or train_part.n_obs, seed=seed)
        report = evaluate(
            eval_train,
            synth,
            labels_key=labels_key,
            holdout=eval_test,
            metrics=metrics,
            seed=seed,
            key_added=None,
            **(evaluate_kwargs or {}),
        )
        n_params = sum(p.numel() for p in fitted.module.parameters() if p.requires_grad)
        extra = pd.DataFrame(
            {
                "metric": ["train_seconds", "n_parameters"],
                "value": [seconds, float(n_params)],
                "higher_is_better": pd.array([pd.NA, pd.NA], dtype="boolean"),
                "optimum": [np.nan, np.nan],
                "group": ["all", "all"],
                "params": ["", ""],
            }
        )
        table = pd.concat([report, extra], ignore_index=True)
        table.insert(0, "model", name)
        tables.append(table)
        logger.info("compare_generators: %s trained in %.1f s and evaluated", name, seconds)
    out = pd.concat(tables, ignore_index=True)
    out["higher_is_better"] = out["higher_is_better"].astype("boolean")
    return out
