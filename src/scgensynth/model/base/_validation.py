"""Checks of user input, each failing with a message that says what is wrong and the fix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

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
    for key in categorical_keys:
        col = adata.obs[key]
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
