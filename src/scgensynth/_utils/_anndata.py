"""Reading an AnnData's expression values: views, backed files and blocks of rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

if TYPE_CHECKING:
    from anndata import AnnData


#: bytes of a block of rows read (or converted) at a time
BLOCK_BYTES = 64 * 2**20


def rows_per_block(n_columns: int, itemsize: int = 8) -> int:
    """Rows of ``n_columns`` values of ``itemsize`` bytes that fill about :data:`BLOCK_BYTES`.

    Examples
    --------
    >>> rows_per_block(20_000)
    419
    """
    return max(1, BLOCK_BYTES // (itemsize * max(int(n_columns), 1)))


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


def in_memory(X: Any) -> Any:
    """``X`` read into memory if it is backed (an HDF5 dataset or anndata's sparse dataset)."""
    if hasattr(X, "to_memory"):  # anndata's backed sparse matrix
        return X.to_memory()
    if hasattr(X, "id") and hasattr(X, "file"):  # an h5py dataset
        return X[()]
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
