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


#: what to do about a key missing from ``.obsm`` / ``.layers``
_MISSING_KEY_HINTS = {
    "obsm": "Compute the representation for both datasets first, or leave obsm=None.",
    "layers": "Pass layer=None to use .X.",
}


def _matrix(data: ArrayOrAnnData, layer: str | None, obsm: str | None, name: str):
    if layer is not None and obsm is not None:
        msg = "Pass either `layer` or `obsm`, not both."
        raise ValueError(msg)
    if is_anndata(data):
        for attr, key in (("obsm", obsm), ("layers", layer)):
            if key is None:
                continue
            stored = getattr(data, attr)
            if key not in stored:
                msg = (
                    f"{name}: {key!r} is not in .{attr} (keys: {list(stored.keys())}). "
                    f"{_MISSING_KEY_HINTS[attr]}"
                )
                raise KeyError(msg)
            return stored[key]
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

#: bytes of one block of rows: matrices are read, converted and checked this much at a time,
#: so a backed (on-disk) matrix is never read whole by the streaming metrics, and no
#: temporary of the whole matrix's size is made when converting one in memory
BLOCK_BYTES = 64 * 2**20


def _as_matrix(data: ArrayOrAnnData, layer, obsm, name: str):
    """The raw matrix (ndarray, sparse, h5py dataset, backed sparse), its shape checked."""
    X = _matrix(data, layer, obsm, name)
    if isinstance(X, pd.DataFrame):
        X = X.to_numpy()
    if not (sparse.issparse(X) or (hasattr(X, "shape") and hasattr(X, "dtype"))):
        X = np.asarray(X)
    if len(X.shape) != 2:
        msg = f"{name}: expected a samples x features matrix, got shape {X.shape}."
        raise ValueError(msg)
    dt = np.dtype(X.dtype)
    if np.issubdtype(dt, np.complexfloating) or not (
        np.issubdtype(dt, np.number) or dt == np.bool_
    ):
        msg = f"{name}: the matrix has dtype {dt}; metrics need numbers."
        raise TypeError(msg)
    return X


def _read_rows(X, start: int, stop: int, columns: np.ndarray | None) -> np.ndarray:
    block = X[start:stop]
    if sparse.issparse(block):
        block = block.toarray()
    block = np.asarray(block)
    return block if columns is None else block[:, columns]


def _block_rows(n_cols: int, itemsize: int) -> int:
    return max(1, BLOCK_BYTES // max(1, n_cols * itemsize))


def _target_dtype(X, dtype, columns) -> np.dtype:
    """The dtype read: ``dtype``, or for ``None`` the float type that holds the values.

    float32/float64 stay as they are; anything else becomes float32, or float64 for integers
    that float32 cannot hold exactly.
    """
    if dtype is not None:
        return np.dtype(dtype)
    dt = np.dtype(X.dtype)
    if dt in (np.float32, np.float64):
        return dt
    if np.issubdtype(dt, np.integer) and X.shape[0]:
        # float32 holds integers exactly only up to 2**24 (large counts need float64)
        step = _block_rows(X.shape[1], dt.itemsize)
        for start in range(0, X.shape[0], step):
            block = _read_rows(X, start, start + step, columns)
            if block.size and np.abs(block).max() >= 2**24:
                return np.dtype(np.float64)
    return np.dtype(np.float32)


def iter_blocks(
    data: ArrayOrAnnData,
    *,
    layer: str | None = None,
    obsm: str | None = None,
    name: str = "data",
    dtype: type | None = np.float64,
    columns: np.ndarray | None = None,
):
    """Yield ``(start, block)``: finite dense blocks of consecutive rows, in order.

    Each block holds about :data:`BLOCK_BYTES` in ``dtype`` (see :func:`get_values` for
    ``dtype=None``); ``columns`` picks (and orders) the columns. The checks of
    :func:`get_values` are made block by block: a NaN/inf is reported after every block
    has been scanned (with the count over the whole matrix), so blocks before it may already
    have been yielded. Backed AnnData (``read_h5ad(..., backed="r")``) are read a block at a
    time; in-memory float arrays of the right dtype are yielded as views, without a copy.
    """
    X = _as_matrix(data, layer, obsm, name)
    n = X.shape[0]
    n_cols = X.shape[1] if columns is None else len(columns)
    if n == 0 or n_cols == 0:
        msg = f"{name}: the matrix is empty (shape {(n, n_cols)})."
        raise ValueError(msg)
    target = _target_dtype(X, dtype, columns)
    step = _block_rows(n_cols, target.itemsize)
    n_bad, bad_rows = 0, []
    for start in range(0, n, step):
        block = _read_rows(X, start, start + step, columns).astype(target, copy=False)
        finite = np.isfinite(block)
        if not finite.all():
            rows = np.flatnonzero(~finite.all(1))
            n_bad += int(finite.size - np.count_nonzero(finite))
            bad_rows.extend((start + rows).tolist())
            continue
        if n_bad:
            continue
        largest = float(np.abs(block).max())
        if largest > _LARGEST:
            msg = (
                f"{name}: values as large as {largest:.3g}. Distances between such samples "
                f"overflow float32 (values must stay below {_LARGEST:.0e}), and no expression "
                "scale reaches them: log-transform (sc.pp.log1p) or rescale the data first."
            )
            raise ValueError(msg)
        yield start, block
    if n_bad:
        msg = (
            f"{name}: {n_bad} NaN or infinite values in {len(bad_rows)} samples "
            f"(first rows: {bad_rows[:5]}). Metrics need finite values: drop or impute "
            "those samples first."
        )
        raise ValueError(msg)


def get_values(
    data: ArrayOrAnnData,
    *,
    layer: str | None = None,
    obsm: str | None = None,
    name: str = "data",
    dtype: type | None = np.float64,
    columns: np.ndarray | None = None,
) -> np.ndarray:
    """A finite dense 2-d array from an AnnData (``X``, a layer or an ``obsm`` entry) or array.

    ``dtype=None`` keeps float32/float64 input as it is (no copy) and turns anything else into
    float32; the input is never modified. The matrix is read, converted and checked in blocks
    of rows (:func:`iter_blocks`), so the memory needed is that of the result (backed AnnData
    included) plus one block.
    """
    X = _as_matrix(data, layer, obsm, name)
    target = _target_dtype(X, dtype, columns)
    if isinstance(X, np.ndarray) and columns is None and X.dtype == target:
        for _ in iter_blocks(X, name=name, dtype=target):
            pass  # checks only: the array is returned as it is
        return X
    n_cols = X.shape[1] if columns is None else len(columns)
    out = np.empty((X.shape[0], n_cols), dtype=target)
    for start, block in iter_blocks(X, name=name, dtype=target, columns=columns):
        out[start : start + block.shape[0]] = block
    return out


def gene_columns(
    real: ArrayOrAnnData, synth: ArrayOrAnnData, names=("real", "synthetic")
) -> np.ndarray | None:
    """Columns of ``synth`` in ``real``'s gene order (``None``: already in it), or an error.

    Arrays must simply have the same number of columns; AnnData are matched by ``var_names``.
    """
    if not (is_anndata(real) and is_anndata(synth)):
        return None
    rv, sv = real.var_names, synth.var_names
    if rv.equals(sv):
        return None
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
    return sv.get_indexer(rv)


def _check_same_width(a: int, b: int, obsm, names) -> None:
    if a != b:
        what = f".obsm[{obsm!r}] columns" if obsm is not None else "genes"
        msg = (
            f"{names[0]} and {names[1]} have different numbers of {what} "
            f"({a} vs {b}); both must describe the same features."
        )
        raise ValueError(msg)


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
    columns = None if obsm is not None else gene_columns(real, synth, names)
    a = get_values(real, layer=layer, obsm=obsm, name=names[0], dtype=dtype)
    b = get_values(synth, layer=layer, obsm=obsm, name=names[1], dtype=dtype, columns=columns)
    _check_same_width(a.shape[1], b.shape[1], obsm, names)
    return a, b


class Streamed:
    """The second dataset of a pair, read in blocks of rows when used (see :func:`paired`).

    ``blocks()`` yields checked blocks in the first dataset's gene order; ``map(fn)`` stacks
    ``fn`` of each block.
    """

    def __init__(self, data, layer, obsm, name, dtype, columns, shape):
        self.data, self.layer, self.obsm, self.name = data, layer, obsm, name
        self.dtype, self.columns, self.shape = dtype, columns, shape

    def _kw(self) -> dict[str, Any]:
        return {"layer": self.layer, "obsm": self.obsm, "name": self.name,
                "dtype": self.dtype, "columns": self.columns}  # fmt: skip

    def blocks(self):
        return iter_blocks(self.data, **self._kw())

    def map(self, fn) -> np.ndarray:
        """``fn`` of each block, stacked by rows (one block in memory at a time).

        For a row-wise ``fn`` (a projection, a per-sample score) this is ``fn`` of the whole.
        """
        parts = [fn(block) for _, block in self.blocks()]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def paired(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    *,
    layer: str | None = None,
    obsm: str | None = None,
    names: tuple[str, str] = ("real", "synthetic"),
    dtype: type | None = np.float64,
) -> tuple[np.ndarray, Streamed]:
    """Like :func:`paired_values`, but ``synth`` stays where it is (memory or disk).

    ``synth`` comes back as a :class:`Streamed` that the streaming metrics read a block at a
    time; its values are checked as they are read (every pass raises the errors of
    :func:`get_values`), its shape and dtype here.
    """
    columns = None if obsm is not None else gene_columns(real, synth, names)
    a = get_values(real, layer=layer, obsm=obsm, name=names[0], dtype=dtype)
    X = _as_matrix(synth, layer, obsm, names[1])
    shape = (X.shape[0], X.shape[1] if columns is None else len(columns))
    if 0 in shape:
        msg = f"{names[1]}: the matrix is empty (shape {shape})."
        raise ValueError(msg)
    _check_same_width(a.shape[1], shape[1], obsm, names)
    return a, Streamed(synth, layer, obsm, names[1], dtype, columns, shape)


def get_labels(data: ArrayOrAnnData, key, name: str = "data", *, n_obs: int | None = None):
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
    expected = n_obs if n_obs is not None else (data.n_obs if is_anndata(data) else None)
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


def canonical_order(X: np.ndarray, codes: np.ndarray | None = None) -> np.ndarray:
    """A row order that depends on the rows' contents only (their bytes, then ``codes``).

    Drawing a random subsample from rows put in this order, or training on them in it, makes
    the result independent of the order in which the user passed the samples. ``codes``
    (e.g. integer label codes) break ties between identical rows.
    """
    Xc = np.ascontiguousarray(X)
    rows = Xc.view(np.dtype((np.void, Xc.dtype.itemsize * Xc.shape[1]))).ravel()
    if codes is None:
        return np.argsort(rows, kind="stable")
    first = np.argsort(codes, kind="stable")
    return first[np.argsort(rows[first], kind="stable")]


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
    "BLOCK_BYTES",
    "ArrayOrAnnData",
    "Streamed",
    "canonical_order",
    "check_k",
    "check_two_classes",
    "describe",
    "gene_columns",
    "get_labels",
    "get_values",
    "is_anndata",
    "iter_blocks",
    "paired",
    "paired_values",
    "subsample",
]
