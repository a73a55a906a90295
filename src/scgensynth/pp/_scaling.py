from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from scgensynth._utils._anndata import get_matrix, iter_row_chunks, rows_per_block
from scgensynth._utils._logging import RESTORING

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)

_CONSTANT_TOL = 1e-6


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


def _warn_not_counts(n_off: int, n_values: int, example: float, maximum: float) -> None:
    """Say that ``scaling="counts"`` meets values that are not counts, and what to pass."""
    if maximum <= 50:
        seen = "log-scale values (e.g. after sc.pp.normalize_total and sc.pp.log1p)"
        instead = "scaling='standardize' (what scaling='auto' picks for them)"
    else:
        seen = "normalised values (TPM, FPKM) or expected counts"
        instead = "scaling='log1p' for TPM/FPKM (what scaling='auto' picks for them)"
    # a model rebuilt from its file warned when it was trained: once per model
    log = logger.debug if RESTORING.get() else logger.warning
    log(
        "scaling='counts' expects raw counts (non-negative integers), but %d of %d values "
        "(%.1f%%) are not integers (e.g. %.4g; largest value %.4g): this looks like %s. Pass "
        "%s, or train on the raw counts (e.g. layer='counts' if adata.layers['counts'] holds "
        "them); with scaling='counts' the model generates integer counts from these values.",
        n_off, n_values, 100 * n_off / max(n_values, 1), example, maximum, seen, instead,
    )  # fmt: skip


def _matrix_of(data: Any, layer: str | None):
    """The expression matrix of an AnnData (``layer``) or an array / sparse matrix itself."""
    from anndata import AnnData

    if isinstance(data, AnnData):
        return get_matrix(data, layer)
    if layer is not None:
        msg = f"layer={layer!r} needs an AnnData; got a {type(data).__name__}."
        raise TypeError(msg)
    X = data if sparse.issparse(data) else np.asarray(data)
    if X.ndim != 2 or not np.issubdtype(X.dtype, np.number):
        msg = (
            "detect_scaling needs an AnnData or a 2-D numeric matrix (samples x genes), not "
            f"{type(data).__name__} of shape {getattr(X, 'shape', None)} and dtype {X.dtype}."
        )
        raise TypeError(msg)
    return X


def detect_scaling(
    adata: AnnData | np.ndarray | sparse.spmatrix,
    layer: str | None = None,
    n_sample: int = 1000,
) -> str:
    """Guess how the expression values should be scaled for training.

    - integer, non-negative values -> ``"counts"`` (library-size normalisation, ``log1p``,
      per-gene standardization);
    - non-negative values larger than 50 (TPM, FPKM, RSEM) -> ``"log1p"``;
    - anything else (log-scale RNA-seq, microarrays, z-scores) -> ``"standardize"``.

    Parameters
    ----------
    adata
        Annotated data matrix (samples x genes), or the matrix itself (NumPy or SciPy
        sparse).
    layer
        Layer to read instead of ``adata.X`` (AnnData only).
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
    >>> sgs.pp.detect_scaling(np.array([[3, 0, 12], [7, 1, 0]]))
    'counts'
    """
    X = _matrix_of(adata, layer)
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


def _first_pass(X, chunk_size: int, rows, mode: str):
    """Row sums per block, and ``(minimum, maximum, non-integer values, the first of them)``.

    Non-integer values are counted for ``mode="counts"`` only. Every value is checked finite.
    """
    lib_parts: list[np.ndarray] = []
    minimum, maximum = np.inf, -np.inf
    off, example = 0, None
    for block in iter_row_chunks(X, chunk_size, rows):
        _check_finite(block, "The expression matrix", sparse.issparse(X))
        lib_parts.append(block.sum(axis=1))
        if not block.size:
            continue
        minimum = min(minimum, float(block.min()))
        maximum = max(maximum, float(block.max()))
        if mode == "counts":
            fractional = ~np.isclose(block, np.rint(block))
            off += int(fractional.sum())
            if example is None and off:
                example = float(block[fractional][0])
    return lib_parts, (minimum, maximum, off, example)


def fit_scaling(
    adata: AnnData,
    mode: str,
    layer: str | None = None,
    rows: np.ndarray | None = None,
    chunk_size: int = 2048,
) -> dict[str, Any]:
    """Fit per-gene scaling statistics in one streaming pass (two for ``"counts"``).

    Also checks that every value is finite, and for ``"counts"`` that the values are
    non-negative (an error) and integers (a warning naming what was seen, e.g. log-normalised
    values, and the scaling to pass instead). Works on dense, sparse and backed matrices
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
    chunk_size = max(1, min(chunk_size, rows_per_block(n_genes)))
    lib_parts, (minimum, maximum, off, example) = _first_pass(X, chunk_size, rows, mode)
    library_size = np.concatenate(lib_parts) if lib_parts else np.zeros(0)
    target_sum = 1.0
    if mode == "counts":
        if minimum < 0:
            msg = (
                "scaling='counts' needs non-negative values but the matrix has negative ones. "
                "Use scaling='standardize' for log-scale or centred data."
            )
            raise ValueError(msg)
        if off:
            _warn_not_counts(off, library_size.size * n_genes, example, maximum)
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
