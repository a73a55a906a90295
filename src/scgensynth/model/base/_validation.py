"""Checks of user input, each failing with a message that says what is wrong and the fix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scgensynth._utils._checks import check_count, check_fraction

if TYPE_CHECKING:
    from anndata import AnnData


def as_key_list(keys: str | Sequence[str] | None, name: str) -> list[str]:
    """Normalise a covariate key argument to a list of strings."""
    if keys is None:
        return []
    if isinstance(keys, str):
        return [keys]
    keys = list(keys)
    for k in keys:
        if not isinstance(k, str):
            msg = f"{name} must be a list of .obs column names (strings), got {k!r}."
            raise TypeError(msg)
    if len(set(keys)) != len(keys):
        msg = f"{name} lists a column more than once: {keys}."
        raise ValueError(msg)
    return keys


def check_covariates(
    adata: AnnData, categorical_keys: Sequence[str], continuous_keys: Sequence[str]
) -> None:
    """Check that covariate columns exist and hold usable values."""
    both = set(categorical_keys) & set(continuous_keys)
    if both:
        msg = (
            f"{sorted(both)} are listed both as categorical and continuous covariates; "
            "list each column once."
        )
        raise ValueError(msg)
    missing = [k for k in [*categorical_keys, *continuous_keys] if k not in adata.obs.columns]
    if missing:
        msg = (
            f"Covariate column(s) {missing} are not in adata.obs. Available columns: "
            f"{list(adata.obs.columns)}. Add them to adata.obs or fix the key names."
        )
        raise KeyError(msg)
    keys = [*categorical_keys, *continuous_keys]
    doubled = sorted({k for k in keys if (adata.obs.columns == k).sum() > 1})
    if doubled:
        msg = (
            f"adata.obs has more than one column named {doubled}; rename or drop the copies "
            "(e.g. `adata.obs = adata.obs.loc[:, ~adata.obs.columns.duplicated()]`)."
        )
        raise ValueError(msg)
    for key in categorical_keys:
        col = adata.obs[key]
        check_value_kinds(col, key)
        n_na = int(col.isna().sum())
        if n_na:
            msg = (
                f"Categorical covariate {key!r} has {n_na} missing value(s) (NaN). Missing "
                "categories are not silently dropped or merged: either drop those samples "
                f"(`adata = adata[adata.obs[{key!r}].notna()].copy()`) or make 'missing' a "
                f"category of its own (`adata.obs[{key!r}] = adata.obs[{key!r}].astype(object)"
                ".fillna('unknown').astype('category')`)."
            )
            raise ValueError(msg)
    for key in continuous_keys:
        col = adata.obs[key]
        if not (pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)):
            msg = (
                f"Continuous covariate {key!r} is not numeric (dtype {col.dtype}; e.g. "
                f"{col.iloc[0]!r}). Convert it with `pd.to_numeric(adata.obs[{key!r}])`, or "
                "pass it in categorical_covariate_keys if it is a label."
            )
            raise TypeError(msg)
        values = col.to_numpy(dtype=float)
        if not np.isfinite(values).all():
            msg = (
                f"Continuous covariate {key!r} has {int((~np.isfinite(values)).sum())} "
                "missing or infinite value(s). Impute them (e.g. with the median) or drop "
                "those samples."
            )
            raise ValueError(msg)
        check_covariate_size(values, key)


#: largest magnitude of a continuous covariate: the networks standardize covariates in
#: float32, where larger values overflow
MAX_COVARIATE = 1e30


def check_covariate_size(values: np.ndarray, key: str) -> None:
    """Refuse continuous covariate values too large for float32 arithmetic."""
    with np.errstate(all="ignore"):
        big = np.abs(np.asarray(values, dtype=float)) > MAX_COVARIATE
    if big.any():
        msg = (
            f"Continuous covariate {key!r} has {int(big.sum())} value(s) beyond +-1e30 (e.g. "
            f"{np.asarray(values)[big][0]!r}), too large for the networks' float32 arithmetic. "
            "Rescale it (e.g. log-transform, or change its unit)."
        )
        raise ValueError(msg)


def _kind(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "boolean"
    if isinstance(value, int | float | np.integer | np.floating):
        return "number"
    return type(value).__name__


def check_value_kinds(col: pd.Series, key: str) -> None:
    """Refuse a categorical covariate whose labels mix kinds (numbers and strings, ...).

    Such labels train, but a model file stores one kind of label per covariate, and
    ``1`` and ``"1"`` would be two categories that print alike.
    """
    values = col.cat.categories if isinstance(col.dtype, pd.CategoricalDtype) else col.dropna()
    if values.dtype != object:  # one NumPy dtype: one kind
        return
    kinds = {}
    for value in pd.unique(np.asarray(values, dtype=object)):
        kinds.setdefault(_kind(value), value)
    if len(kinds) > 1:
        shown = ", ".join(f"{k} {v!r}" for k, v in kinds.items())
        msg = (
            f"Categorical covariate {key!r} mixes kinds of labels ({shown}). Give it one kind, "
            f"e.g. `adata.obs[{key!r}] = adata.obs[{key!r}].astype(str).astype('category')`."
        )
        raise TypeError(msg)


def check_shape(adata: AnnData) -> None:
    """Refuse empty data and duplicated gene names."""
    if adata.n_obs == 0 or adata.n_vars == 0:
        msg = (
            f"The AnnData is empty ({adata.n_obs} samples x {adata.n_vars} genes); a generator "
            "needs samples and genes. Check the subsetting or filtering that produced it."
        )
        raise ValueError(msg)
    if not adata.var_names.is_unique:
        dup = adata.var_names[adata.var_names.duplicated()].unique()[:5].tolist()
        msg = (
            f"Gene names are not unique (e.g. {dup}). Call `adata.var_names_make_unique()` "
            "or aggregate the duplicated genes first."
        )
        raise ValueError(msg)


#: longest training accepted (in optimiser steps or epochs): a run that could never end
MAX_TRAINING_LENGTH = 2**31 - 1


def check_training_lengths(
    *,
    n_steps: Any = None,
    max_epochs: Any = None,
    batch_size: Any = 32,
    train_size: Any = 0.9,
    **optional_counts: Any,
) -> dict[str, Any]:
    """Run lengths as plain numbers, refusing those that would mean something else.

    0 steps, -5 epochs, 2.5 samples per batch or a run that could never end are errors,
    never a silent default or truncation. ``optional_counts`` are further counts
    (``name=(value, minimum)``) that may be ``None``. Returns every value checked, NumPy
    numbers turned into Python ones.
    """
    longest = {"maximum": MAX_TRAINING_LENGTH, "allow_none": True}
    out = {
        "n_steps": check_count(n_steps, "n_steps", **longest),
        "max_epochs": check_count(max_epochs, "max_epochs", **longest),
        "batch_size": check_count(
            batch_size, "batch_size", minimum=2, hint=" Mini-batch statistics need two samples."
        ),
        "train_size": check_fraction(train_size, "train_size"),
    }
    for name, (value, minimum) in optional_counts.items():
        out[name] = check_count(value, name, minimum=minimum, allow_none=True)
    return out


def covariate_frame_from_dict(
    covariates: Mapping[str, Any], n_obs: int | None, keys: Sequence[str]
) -> pd.DataFrame:
    """A frame of covariates from ``{key: value or one value per sample}``.

    A single value is repeated ``n_obs`` times; a sequence gives one value per sample.
    Keys the model does not have are refused.

    Examples
    --------
    >>> covariate_frame_from_dict({"tissue": "Liver", "age": [30, 40]}, None, ["tissue", "age"])
      tissue  age
    0  Liver   30
    1  Liver   40
    """
    unknown = [k for k in covariates if k not in keys]
    if unknown:
        msg = f"Unknown covariate(s) {unknown}; the model was trained on {list(keys)}."
        raise KeyError(msg)
    lengths = {}
    for key, value in covariates.items():
        if isinstance(value, Mapping | set | frozenset):
            msg = (
                f"Covariate {key!r}: give one value, or a sequence of one value per sample, "
                f"not a {type(value).__name__}."
            )
            raise TypeError(msg)
        if not isinstance(value, str | bytes) and np.ndim(value) > 1:
            msg = f"Covariate {key!r}: a sequence of values must be one-dimensional."
            raise ValueError(msg)
        if not isinstance(value, str | bytes) and np.ndim(value) == 1:
            lengths[key] = len(value)
    sizes = set(lengths.values()) | ({n_obs} if n_obs is not None else set())
    if len(sizes) > 1:
        shown = ", ".join(f"{k}: {v}" for k, v in lengths.items())
        msg = (
            f"The covariates' sequences must have one value per sample (n_obs={n_obs}); "
            f"their lengths are {shown}."
        )
        raise ValueError(msg)
    if not sizes:
        msg = "Pass n_obs with a dict of covariates (each value is repeated n_obs times)."
        raise ValueError(msg)
    (n,) = sizes
    columns = {k: (list(v) if k in lengths else [v] * n) for k, v in covariates.items()}
    return pd.DataFrame(columns, index=pd.RangeIndex(n))
