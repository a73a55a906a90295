"""Input handling shared by every metric: values, gene alignment, labels, checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

#: what every metric accepts: an AnnData or a samples x features array
ArrayOrAnnData = Any


def is_anndata(data: Any) -> bool:
    """Whether ``data`` looks like an AnnData (duck-typed, so views count too)."""
    return hasattr(data, "obs") and hasattr(data, "var_names") and hasattr(data, "X")


def _matrix(data: ArrayOrAnnData, layer: str | None, obsm: str | None, name: str):
    if layer is not None and obsm is not None:
        msg = "Pass either `layer` or `obsm`, not both."
        raise ValueError(msg)
    if is_anndata(data):
        if obsm is not None:
            if obsm not in data.obsm:
                msg = (
                    f"{name}: {obsm!r} is not in .obsm (keys: {list(data.obsm.keys())}). "
                    "Compute the representation for both datasets first, or leave obsm=None."
                )
                raise KeyError(msg)
            return data.obsm[obsm]
        if layer is not None:
            if layer not in data.layers:
                msg = (
                    f"{name}: {layer!r} is not in .layers (keys: {list(data.layers.keys())}). "
                    "Pass layer=None to use .X."
                )
                raise KeyError(msg)
            return data.layers[layer]
        if data.X is None:
            msg = f"{name}: the AnnData has no .X; pass `layer=` to read a layer."
            raise ValueError(msg)
        return data.X
    if layer is not None or obsm is not None:
        msg = f"{name}: `layer` and `obsm` need AnnData input, not {type(data).__name__}."
        raise TypeError(msg)
    return data


#: largest absolute value the metrics accept: squared distances over ~10^5 genes stay finite
#: in float32 (max 3.4e38)
_LARGEST = 1e15


def get_values(
    data: ArrayOrAnnData,
    *,
    layer: str | None = None,
    obsm: str | None = None,
    name: str = "data",
    dtype: type | None = np.float64,
) -> np.ndarray:
    """A finite dense 2-d array from an AnnData (``X``, a layer or an ``obsm`` entry) or array.

    ``dtype=None`` keeps float32/float64 input as it is (no copy) and turns anything else into
    float32; the input is never modified.
    """
    X = _matrix(data, layer, obsm, name)
    if isinstance(X, pd.DataFrame):
        X = X.to_numpy()
    if sparse.issparse(X):
        X = X.toarray()
    X = np.asarray(X)
    if X.ndim != 2:
        msg = f"{name}: expected a samples x features matrix, got shape {X.shape}."
        raise ValueError(msg)
    if np.iscomplexobj(X) or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        msg = f"{name}: the matrix has dtype {X.dtype}; metrics need numbers."
        raise TypeError(msg)
    if dtype is None:
        if X.dtype not in (np.float32, np.float64):
            # float32 holds integers exactly only up to 2**24 (large counts need float64)
            big = X.size and np.issubdtype(X.dtype, np.integer) and np.abs(X).max() >= 2**24
            X = X.astype(np.float64 if big else np.float32)
    elif X.dtype != dtype:
        X = X.astype(dtype)
    if X.shape[0] == 0 or X.shape[1] == 0:
        msg = f"{name}: the matrix is empty (shape {X.shape})."
        raise ValueError(msg)
    bad = ~np.isfinite(X)
    if bad.any():
        rows = np.flatnonzero(bad.any(1))
        msg = (
            f"{name}: {bad.sum()} NaN or infinite values in {len(rows)} samples "
            f"(first rows: {rows[:5].tolist()}). Metrics need finite values: drop or impute "
            "those samples first."
        )
        raise ValueError(msg)
    largest = float(np.abs(X).max())
    if largest > _LARGEST:
        msg = (
            f"{name}: values as large as {largest:.3g}. Distances between such samples overflow "
            f"float32 (values must stay below {_LARGEST:.0e}), and no expression scale reaches "
            "them: log-transform (sc.pp.log1p) or rescale the data first."
        )
        raise ValueError(msg)
    return X


def align_genes(real: ArrayOrAnnData, synth: ArrayOrAnnData, names=("real", "synthetic")):
    """``synth`` with its genes in ``real``'s order (an AnnData view), or a clear error.

    Arrays must simply have the same number of columns; AnnData are matched by ``var_names``.
    """
    if not (is_anndata(real) and is_anndata(synth)):
        return synth
    rv, sv = real.var_names, synth.var_names
    if rv.equals(sv):
        return synth
    if not rv.is_unique or not sv.is_unique:
        msg = "var_names are not unique; call .var_names_make_unique() on both datasets."
        raise ValueError(msg)
    missing = rv.difference(sv)
    extra = sv.difference(rv)
    if len(missing) or len(extra):
        msg = (
            f"{names[0]} and {names[1]} have different genes: {len(missing)} of "
            f"{names[0]}'s genes are missing from {names[1]} (e.g. {list(missing[:3])}) and "
            f"{len(extra)} are extra (e.g. {list(extra[:3])}). Subset both to the shared "
            f"genes, e.g. `genes = {names[0]}.var_names.intersection({names[1]}.var_names)`."
        )
        raise ValueError(msg)
    return synth[:, rv]


def paired_values(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    *,
    layer: str | None = None,
    obsm: str | None = None,
    names: tuple[str, str] = ("real", "synthetic"),
    dtype: type | None = np.float64,
) -> tuple[np.ndarray, np.ndarray]:
    """Values of two datasets in the same feature space (genes aligned by name)."""
    if obsm is None:
        synth = align_genes(real, synth, names)
    a = get_values(real, layer=layer, obsm=obsm, name=names[0], dtype=dtype)
    b = get_values(synth, layer=layer, obsm=obsm, name=names[1], dtype=dtype)
    if a.shape[1] != b.shape[1]:
        what = f".obsm[{obsm!r}] columns" if obsm is not None else "genes"
        msg = (
            f"{names[0]} and {names[1]} have different numbers of {what} "
            f"({a.shape[1]} vs {b.shape[1]}); both must describe the same features."
        )
        raise ValueError(msg)
    return a, b


def get_labels(data: ArrayOrAnnData, key, name: str = "data", *, n: int | None = None):
    """Labels as a string array from an ``.obs`` column name or an array-like."""
    if isinstance(key, str):
        if not is_anndata(data):
            msg = f"{name}: a column name ({key!r}) needs AnnData input; pass an array instead."
            raise TypeError(msg)
        if key not in data.obs:
            msg = f"{name}: {key!r} is not a column of .obs (columns: {list(data.obs.columns)})."
            raise KeyError(msg)
        values = data.obs[key]
    else:
        values = pd.Series(np.asarray(key))
    if values.isna().any():
        what = key if isinstance(key, str) else "label"
        msg = (
            f"{name}: {int(values.isna().sum())} samples have a missing {what}; "
            "drop them or give them a category first."
        )
        raise ValueError(msg)
    labels = np.asarray(values).astype(str)
    expected = n if n is not None else (data.n_obs if is_anndata(data) else None)
    if expected is not None and len(labels) != expected:
        msg = f"{name}: {len(labels)} labels for {expected} samples."
        raise ValueError(msg)
    return labels


def check_k(k: int, n: int, name: str, *, extra: int = 1, param: str = "k") -> None:
    """``k`` neighbours need at least ``k + extra`` samples; say which smaller ``k`` works."""
    if not isinstance(k, int | np.integer) or k < 1:
        msg = f"{param} must be a positive integer, got {k!r}."
        raise ValueError(msg)
    if n < k + extra:
        hint = f"use {param}<={n - extra}" if n - extra >= 1 else "add samples"
        msg = f"{name} has {n} samples, too few for {param}={k}: {hint}."
        raise ValueError(msg)


def check_two_classes(labels: np.ndarray, name: str, key: str | None = None) -> None:
    """A classifier needs two labels at least."""
    classes = np.unique(labels)
    if len(classes) < 2:
        what = f"{key!r}" if key else "the labels"
        msg = (
            f"{name}: {what} has a single class ({classes.tolist()}); "
            "this metric needs at least two."
        )
        raise ValueError(msg)


def canonical_order(X: np.ndarray) -> np.ndarray:
    """A row order that depends on the rows' contents only (their bytes).

    Drawing a random subsample from rows put in this order makes the draw independent of the
    order in which the user passed the samples.
    """
    Xc = np.ascontiguousarray(X)
    rows = Xc.view(np.dtype((np.void, Xc.dtype.itemsize * Xc.shape[1]))).ravel()
    return np.argsort(rows, kind="stable")


def subsample(X: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` rows of ``X`` drawn without replacement, independently of the row order."""
    if X.shape[0] <= n:
        return X
    order = canonical_order(X)
    return X[np.sort(order[rng.choice(X.shape[0], n, replace=False)])]


def describe(data: ArrayOrAnnData | None) -> str:
    """``'AnnData 520 x 467'`` style description for messages."""
    if data is None:
        return "None"
    kind = "AnnData" if is_anndata(data) else type(data).__name__
    shape = getattr(data, "shape", None)
    return f"{kind} {shape[0]} x {shape[1]}" if shape is not None and len(shape) == 2 else kind


__all__ = [
    "ArrayOrAnnData",
    "align_genes",
    "canonical_order",
    "check_k",
    "check_two_classes",
    "describe",
    "get_labels",
    "get_values",
    "is_anndata",
    "paired_values",
    "subsample",
]
