from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)

_CONSTANT_TOL = 1e-6


def plain_matrix(X: Any) -> Any:
    """``X`` without anndata's view wrapper (same memory, no copy).

    The values of an AnnData view (``adata[:100].X``) are anndata ``ArrayView`` or sparse
    view objects, which torch and scvi-tools do not take; the plain NumPy array or SciPy
    matrix over the same buffers behaves the same for reading.
    """
    if not type(X).__module__.startswith("anndata"):
        return X
    if isinstance(X, np.ndarray):
        return X.view(np.ndarray)
    if sparse.issparse(X):
        base = next(k for k in type(X).__mro__ if k.__module__.startswith("scipy"))
        return base(
            (X.data.view(np.ndarray), X.indices.view(np.ndarray), X.indptr.view(np.ndarray)),
            shape=X.shape,
            copy=False,
        )
    return X


def get_matrix(adata: AnnData, layer: str | None):
    """``adata.X`` or ``adata.layers[layer]``; clear errors for an unknown layer or non-numbers.

    Views of an AnnData give their plain NumPy/SciPy values (see :func:`plain_matrix`).
    """
    if layer is None:
        X = adata.X
    elif layer not in adata.layers:
        msg = (
            f"Layer {layer!r} is not in adata.layers (available: {list(adata.layers.keys())}). "
            "Pass layer=None to use adata.X, or the name of the layer that holds the expression."
        )
        raise KeyError(msg)
    else:
        X = adata.layers[layer]
    X = plain_matrix(X)
    dtype = getattr(X, "dtype", None)
    if dtype is not None and not (np.issubdtype(dtype, np.number) or np.dtype(dtype) == np.bool_):
        where = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
        msg = (
            f"{where} has dtype {dtype}; expression values must be numbers. Convert them, e.g. "
            f"`{where} = {where}.astype(np.float32)` (after fixing any non-numeric entries)."
        )
        raise TypeError(msg)
    if dtype is not None and np.issubdtype(dtype, np.complexfloating):
        msg = f"The expression matrix is complex ({dtype}); expression values must be real."
        raise TypeError(msg)
    return X


def iter_row_chunks(
    X: Any, chunk_size: int = 2048, rows: np.ndarray | None = None
) -> Iterator[np.ndarray]:
    """Yield dense float64 row blocks of a dense, sparse or backed matrix.

    A block of a dense float64 array may be a view of it: read it, never write into it.

    Parameters
    ----------
    X
        Matrix (numpy array, scipy sparse matrix, or an h5py-backed dataset).
    chunk_size
        Rows per block.
    rows
        Optional row indices to read (in this order).

    Examples
    --------
    >>> import numpy as np
    >>> [b.shape for b in iter_row_chunks(np.ones((5, 2)), chunk_size=2)]
    [(2, 2), (2, 2), (1, 2)]
    """
    n = X.shape[0] if rows is None else len(rows)
    for start in range(0, n, chunk_size):
        if rows is None:
            block = X[start : start + chunk_size]
        else:
            idx = np.asarray(rows[start : start + chunk_size])
            block = X[np.sort(idx)] if not isinstance(X, np.ndarray) else X[idx]
            if not isinstance(X, np.ndarray):
                order = np.argsort(np.argsort(idx))
                block = block[order]
        if sparse.issparse(block):
            block = block.toarray()
        yield np.asarray(block, dtype=np.float64)


def _check_finite(block: np.ndarray, where: str, is_sparse: bool = False) -> None:
    if not np.isfinite(block).all():
        n_nan = int(np.isnan(block).sum())
        n_inf = int(np.isinf(block).sum())
        msg = (
            f"{where} contains {n_nan} NaN and {n_inf} infinite values. Generators need finite "
            "expression values: impute or drop them first, e.g. "
            + (
                "`adata = adata[:, np.isfinite(adata.X.toarray()).all(axis=0)].copy()` to drop "
                "genes with missing values, or `adata.X.data = np.nan_to_num(adata.X.data)` to "
                "set them to 0."
                if is_sparse
                else "`adata = adata[:, np.isfinite(adata.X).all(axis=0)].copy()` to drop genes "
                "with missing values, or `adata.X = np.nan_to_num(adata.X)` to set them to 0."
            )
        )
        raise ValueError(msg)


def detect_scaling(adata: AnnData, layer: str | None = None, n_sample: int = 1000) -> str:
    """Guess how the expression values should be scaled for training.

    - integer, non-negative values -> ``"counts"`` (library-size normalisation, ``log1p``,
      per-gene standardisation);
    - non-negative values larger than 50 (TPM, FPKM, RSEM) -> ``"log1p"``;
    - anything else (log-scale RNA-seq, microarrays, z-scores) -> ``"standardize"``.

    Parameters
    ----------
    adata
        Annotated data matrix (samples x genes).
    layer
        Layer to read instead of ``adata.X``.
    n_sample
        Number of rows inspected (evenly spaced).

    Returns
    -------
    The name of the scaling mode.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> sgs.pp.detect_scaling(sgs.datasets.gtex_tissues())
    'standardize'
    """
    X = get_matrix(adata, layer)
    n = X.shape[0]
    rows = np.unique(np.linspace(0, n - 1, min(n, n_sample)).astype(int)) if n else np.array([])
    block = next(iter_row_chunks(X, chunk_size=max(len(rows), 1), rows=rows), np.zeros((0, 0)))
    if block.size == 0:
        return "standardize"
    _check_finite(block, "The expression matrix", sparse.issparse(X))
    if block.min() < 0:
        return "standardize"
    if np.allclose(block, np.round(block)) and block.max() > 1:
        return "counts"
    if block.max() > 50:
        return "log1p"
    return "standardize"


def fit_scaling(
    adata: AnnData,
    mode: str,
    layer: str | None = None,
    rows: np.ndarray | None = None,
    chunk_size: int = 2048,
) -> dict[str, Any]:
    """Fit per-gene scaling statistics in one streaming pass (two for ``"counts"``).

    Also checks that every value is finite. Works on dense, sparse and backed matrices
    without densifying more than ``chunk_size`` rows at a time.

    Parameters
    ----------
    adata
        Annotated data matrix.
    mode
        ``"counts"``, ``"log1p"``, ``"standardize"`` or ``"none"``.
    layer
        Layer to read instead of ``adata.X``.
    rows
        Rows to fit on (default: all).
    chunk_size
        Rows per block.

    Returns
    -------
    ``mean``, ``std``, ``constant`` (per gene), ``target_sum``, ``lower_bound``,
    ``library_size`` (per row read, in ``rows`` order) and ``constant_genes`` (names).

    Examples
    --------
    >>> import scgensynth as sgs
    >>> stats = sgs.pp.fit_scaling(sgs.datasets.gtex_tissues(), "standardize")
    >>> len(stats["constant_genes"])
    7
    """
    X = get_matrix(adata, layer)
    n_genes = X.shape[1]
    # blocks are densified as float64: keep each under ~64 MiB whatever the gene count
    chunk_size = max(1, min(chunk_size, (64 * 2**20) // (8 * max(n_genes, 1))))
    lib_parts: list[np.ndarray] = []
    minimum = np.inf
    for block in iter_row_chunks(X, chunk_size, rows):
        _check_finite(block, "The expression matrix", sparse.issparse(X))
        lib_parts.append(block.sum(axis=1))
        if block.size:
            minimum = min(minimum, float(block.min()))
    library_size = np.concatenate(lib_parts) if lib_parts else np.zeros(0)
    target_sum = 1.0
    if mode == "counts":
        if minimum < 0:
            msg = (
                "scaling='counts' needs non-negative values but the matrix has negative ones. "
                "Use scaling='standardize' for log-scale or centred data."
            )
            raise ValueError(msg)
        positive = library_size[library_size > 0]
        target_sum = float(np.median(positive)) if positive.size else 1.0
    if mode == "log1p" and minimum < 0:
        msg = (
            "scaling='log1p' needs non-negative values but the matrix has negative ones. "
            "Use scaling='standardize' for log-scale or centred data."
        )
        raise ValueError(msg)

    total = np.zeros(n_genes)
    total_sq = np.zeros(n_genes)
    count = 0
    for i, block in enumerate(iter_row_chunks(X, chunk_size, rows)):
        if mode == "counts":
            lib = lib_parts[i][:, None]
            block = np.log1p(block / np.maximum(lib, 1e-8) * target_sum)
        elif mode == "log1p":
            block = np.log1p(block)
        total += block.sum(axis=0)
        total_sq += np.square(block).sum(axis=0)  # never in place: block may be a view of X
        count += block.shape[0]
    mean = total / max(count, 1)
    var = np.maximum(total_sq / max(count, 1) - mean**2, 0.0)
    std = np.sqrt(var)
    constant = std <= _CONSTANT_TOL * np.maximum(1.0, np.abs(mean))
    std = np.where(constant, 1.0, std)
    lower_bound = 0.0 if minimum >= 0 else -np.inf
    names = np.asarray(adata.var_names)[constant]
    return {
        "mode": mode,
        "mean": mean.astype(np.float32),
        "std": std.astype(np.float32),
        "constant": constant,
        "target_sum": target_sum,
        "lower_bound": lower_bound,
        "library_size": library_size.astype(np.float32),
        "constant_genes": names.tolist(),
    }
