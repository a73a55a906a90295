"""Gene graphs for sparse gene attention: co-expression, edge lists, degree-preserving shuffles.

Every graph is a scipy CSR ``n_genes x n_genes`` float32 matrix in the order of
``adata.var_names`` whose **row is the target gene i and column the neighbour j**: a stored
entry ``(i, j)`` lets gene ``i`` attend to gene ``j`` in
:class:`~scgensynth.nn.SparseGeneAttention`. Values are edge weights (the attention layer
uses only the structure).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from scgensynth._utils._anndata import rows_per_block
from scgensynth._utils._keys import check_new_key, check_params_key, record_params

from ._scaling import _CONSTANT_TOL, _check_finite, get_matrix, iter_row_chunks

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)

#: the standardized matrix is kept in memory (float64) when it is at most this large
_CACHE_BYTES = 256 * 2**20


# -- co-expression ---------------------------------------------------------------------------
def coexpression_graph(
    adata: AnnData,
    *,
    layer: str | None = None,
    top_k: int | None = 10,
    threshold: float | None = None,
    block_size: int | None = None,
    key_added: str = "sgs_coexpression",
    inplace: bool = True,
    copy: bool = False,
    overwrite: bool = False,
) -> sparse.csr_matrix | AnnData | None:
    """Gene co-expression graph: each gene's most correlated genes (Pearson, absolute value).

    Correlations between genes are computed over the samples of ``adata`` (pass the training
    samples only, e.g. ``adata[train_idx]``, to keep held-out data out of the graph) in blocks
    of genes: one block of ``block_size`` genes x all genes at a time, so memory stays
    bounded for ~20,000 genes (no ``n_genes x n_genes`` dense matrix). For each target gene
    i the neighbours j are

    - ``top_k`` only: the ``top_k`` genes with the largest ``|r_ij|`` (ties broken by the
      lower column index);
    - ``threshold`` only: every gene with ``|r_ij| >= threshold``;
    - both: the ``top_k`` largest among those with ``|r_ij| >= threshold``.

    No self edges. Genes with zero variance (constant over the samples) get no neighbours
    and are nobody's neighbour. Edge weights are ``|r_ij|``. A top-k graph is in general not
    symmetric (j among i's top k does not put i among j's); a threshold-only graph is.

    Parameters
    ----------
    adata
        Annotated data matrix (samples x genes); dense, sparse or backed. Use a log-scale
        layer (log1p-normalised counts, log TPM, microarray log intensities): correlations on
        raw counts are dominated by a few very high values.
    layer
        Layer to read instead of ``adata.X``.
    top_k
        Neighbours per gene; ``None`` to use ``threshold`` alone.
    threshold
        Minimum absolute correlation, in ``(0, 1]``; ``None`` for none.
    block_size
        Genes per block of correlations (default: as many as fit in 64 MiB of float64).
        The result does not depend on it.
    key_added
        Where the graph is written: ``adata.varp[key_added]`` and
        ``adata.uns[key_added]["params"]``.
    inplace
        Write the graph into ``adata`` (see Returns). ``False``: return the matrix and leave
        ``adata`` untouched.
    copy
        Work on a copy of ``adata`` and return it (with the graph written).
    overwrite
        Replace a graph already in ``adata.varp[key_added]``; without it that is refused.

    Returns
    -------
    With ``inplace=True`` (default), ``None``; sets

    - ``adata.varp[key_added]``: the graph, ``scipy.sparse.csr_matrix`` float32,
      ``n_genes x n_genes``, row = target gene, column = neighbour, value = ``|r|``;
    - ``adata.uns[key_added]["params"]``: ``method`` (``"pearson"``), ``n_edges`` and
      ``top_k`` / ``threshold`` / ``layer`` where given.

    With ``copy=True``, the copy of ``adata`` with these set. With ``inplace=False``, the
    matrix.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> adata = sgs.datasets.gtex_tissues()
    >>> sgs.pp.coexpression_graph(adata, top_k=5)
    >>> g = adata.varp["sgs_coexpression"]
    >>> g.shape, g.nnz
    ((467, 467), 2300)
    >>> graph = sgs.pp.coexpression_graph(adata, top_k=None, threshold=0.8, inplace=False)
    >>> bool((graph.data >= 0.8).all())
    True
    """
    if copy and not inplace:
        msg = (
            "copy=True returns a copy of adata with the graph written in it; inplace=False "
            "returns the graph alone. Pass only one of them."
        )
        raise ValueError(msg)
    if inplace:
        check_new_key(adata.varp, key_added, "adata.varp", overwrite)
        check_params_key(adata, key_added)
    X = get_matrix(adata, layer)
    graph = coexpression_matrix(X, top_k=top_k, threshold=threshold, block_size=block_size)
    if not inplace:
        return graph
    if copy:
        adata = adata.copy()
    params: dict[str, Any] = {"method": "pearson", "n_edges": int(graph.nnz)}
    for name, value in (("top_k", top_k), ("threshold", threshold), ("layer", layer)):
        if value is not None:
            params[name] = value
    adata.varp[key_added] = graph
    record_params(adata, key_added, params)
    return adata if copy else None


def coexpression_matrix(
    X: Any,
    *,
    top_k: int | None = 10,
    threshold: float | None = None,
    rows: np.ndarray | None = None,
    block_size: int | None = None,
) -> sparse.csr_matrix:
    """Co-expression graph of a samples x genes matrix (the work of :func:`coexpression_graph`).

    Parameters
    ----------
    X
        Dense, sparse or backed matrix, samples x genes.
    top_k, threshold, block_size
        As in :func:`coexpression_graph`.
    rows
        Sample (row) indices to use, e.g. the training samples; default all.

    Returns
    -------
    CSR float32 ``n_genes x n_genes`` matrix: row = target gene, column = neighbour,
    value = ``|r|``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(50, 1))
    >>> X = np.hstack([a, -a + 0.1 * rng.normal(size=(50, 1)), rng.normal(size=(50, 2))])
    >>> g = coexpression_matrix(X, top_k=1)
    >>> g.indices[:2].tolist()  # genes 0 and 1 are each other's top neighbour
    [1, 0]
    """
    top_k, threshold = _check_selection(top_k, threshold)
    n_obs = X.shape[0] if rows is None else len(rows)
    n_genes = X.shape[1]
    if n_obs < 3:
        msg = (
            f"Correlations need at least 3 samples; got {n_obs}. Compute the graph on more "
            "samples, or supply one with graph_from_edges()."
        )
        raise ValueError(msg)
    if block_size is None:  # float64 correlations of a block of genes x all genes: 64 MiB
        block_size = rows_per_block(n_genes)
    block_size = int(max(1, min(int(block_size), n_genes)))
    standardized = _StandardizedRows(X, rows, n_obs)
    edges = [
        _block_edges(standardized, start, min(start + block_size, n_genes), top_k, threshold)
        for start in range(0, n_genes, block_size)
    ]
    graph = _csr(*(np.concatenate([e[i] for e in edges]) for i in range(3)), n_genes)
    n_isolated = int(np.sum(np.diff(graph.indptr) == 0))
    logger.info(
        "Co-expression graph (Pearson |r|, top_k=%s, threshold=%s) on %d samples: %d edges "
        "over %d genes; %d genes without neighbours (%d constant).",
        top_k,
        threshold,
        n_obs,
        graph.nnz,
        n_genes,
        n_isolated,
        int(standardized.constant.sum()),
    )
    return graph


class _StandardizedRows:
    """Row chunks of a samples x genes matrix standardized to unit-norm, zero-mean columns.

    ``Z.T @ Z`` over the chunks is the gene correlation matrix (0 for constant genes). Each
    chunk is densified as float64 (at most 64 MiB); all of them are kept in memory when the
    whole standardized matrix fits in 256 MiB, else they are recomputed on every pass.
    """

    def __init__(self, X: Any, rows: np.ndarray | None, n_obs: int):
        self.X, self.rows = X, rows
        n_genes = X.shape[1]
        self.chunk = rows_per_block(n_genes)
        self.mean, self.scale, self.constant = self._moments(n_obs)
        self.cached = list(self._chunks()) if n_obs * n_genes * 8 <= _CACHE_BYTES else None

    def _moments(self, n_obs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-gene mean, ``1 / norm`` of the centred column (0 if constant), constant flags."""
        X, is_sparse = self.X, sparse.issparse(self.X)
        total = np.zeros(X.shape[1])
        for block in iter_row_chunks(X, self.chunk, self.rows):
            _check_finite(block, "The expression matrix", is_sparse)
            total += block.sum(axis=0)
        mean = total / n_obs
        sum_sq = np.zeros(X.shape[1])
        for block in iter_row_chunks(X, self.chunk, self.rows):
            block = block - mean  # not in place: a float64 block may be a view of the user's X
            sum_sq += np.einsum("ij,ij->j", block, block)
        std = np.sqrt(sum_sq / n_obs)
        constant = std <= _CONSTANT_TOL * np.maximum(1.0, np.abs(mean))
        scale = np.where(constant, 0.0, 1.0 / np.sqrt(np.where(constant, 1.0, sum_sq)))
        return mean, scale, constant

    def _chunks(self) -> Iterator[np.ndarray]:
        for block in iter_row_chunks(self.X, self.chunk, self.rows):
            z = block - self.mean  # a new array: never write into the user's matrix
            z *= self.scale  # unit-norm columns: Z.T @ Z is the correlation matrix
            yield z

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self.cached) if self.cached is not None else self._chunks()


def _block_edges(
    standardized: _StandardizedRows,
    start: int,
    stop: int,
    top_k: int | None,
    threshold: float | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges ``(rows, cols, |r|)`` of the target genes ``start:stop``."""
    n_genes = standardized.X.shape[1]
    constant = standardized.constant
    corr = np.zeros((stop - start, n_genes))
    for z in standardized:
        corr += np.ascontiguousarray(z[:, start:stop].T) @ z
    np.abs(corr, out=corr)
    if constant.any():
        corr[:, constant] = -np.inf
        corr[constant[start:stop]] = -np.inf
    corr[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # no self edges
    if top_k is None:
        r, c = np.nonzero(corr >= threshold)
    else:
        if threshold is not None:
            corr[corr < threshold] = -np.inf
        r, c = _top_k_entries(corr, top_k)
    return r + start, c, np.minimum(corr[r, c], 1.0).astype(np.float32)


def _check_selection(top_k: Any, threshold: Any) -> tuple[int | None, float | None]:
    if top_k is None and threshold is None:
        msg = "Pass top_k (neighbours per gene), threshold (minimum |r|), or both."
        raise ValueError(msg)
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int | np.integer) or top_k < 1:
            msg = f"top_k must be a positive integer (neighbours per gene) or None; got {top_k!r}."
            raise ValueError(msg)
        top_k = int(top_k)
    if threshold is not None:
        if not isinstance(threshold, int | float | np.number) or not 0 < threshold <= 1:
            msg = (
                f"threshold is a minimum absolute correlation in (0, 1] or None; got "
                f"{threshold!r}."
            )
            raise ValueError(msg)
        threshold = float(threshold)
    return top_k, threshold


def _top_k_entries(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of each row's ``k`` largest finite scores (ties: lower column)."""
    n_cols = scores.shape[1]
    k = min(k, n_cols)
    kth = np.partition(scores, n_cols - k, axis=1)[:, n_cols - k]  # the k-th largest per row
    # a row with fewer than k finite scores (kth = -inf) keeps all of its finite ones
    kth = np.where(np.isfinite(kth), kth, np.finfo(scores.dtype).min)
    r, c = np.nonzero(scores >= kth[:, None])  # about k per row, more only where tied
    order = np.lexsort((c, -scores[r, c], r))  # by row, score (descending), column
    r, c = r[order], c[order]
    rank = np.arange(len(r)) - np.searchsorted(r, r, side="left")
    keep = rank < k
    return r[keep], c[keep]


def _csr(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n: int) -> sparse.csr_matrix:
    graph = sparse.csr_matrix(
        (np.asarray(vals, dtype=np.float32), (np.asarray(rows), np.asarray(cols))), shape=(n, n)
    )
    graph.sort_indices()
    return graph


# -- user edge lists -------------------------------------------------------------------------
def graph_from_edges(
    var_names_or_adata: AnnData | Sequence[str] | pd.Index,
    edges: pd.DataFrame,
    *,
    source_col: str = "source",
    target_col: str = "target",
    weight_col: str | None = None,
    gene_symbols: str | None = None,
    symmetric: bool = True,
) -> sparse.csr_matrix:
    """Gene graph from a list of gene pairs, e.g. protein–protein interactions from STRING.

    An edge ``source -> target`` makes ``source`` a neighbour of ``target`` (entry
    ``[target, source]``); with ``symmetric=True`` also the reverse. Genes not in the data
    are dropped (a warning says how many, with examples), self-edges are dropped, duplicate
    edges are merged.

    Parameters
    ----------
    var_names_or_adata
        The genes, in order: an AnnData (its ``var_names``, or ``var[gene_symbols]``) or a
        sequence of gene names.
    edges
        One row per edge.
    source_col, target_col
        Columns of ``edges`` holding the gene names of each edge's ends.
    weight_col
        Optional numeric column of edge weights (e.g. STRING's ``combined_score``); merged
        duplicates keep the largest. Default: every weight is 1.
    gene_symbols
        Column of ``adata.var`` to match the names against instead of ``var_names`` (e.g.
        symbols when ``var_names`` are Ensembl ids or probe sets). A symbol shared by several
        genes (probe sets) connects all of them.
    symmetric
        Add every edge in both directions (undirected interactions).

    Returns
    -------
    ``scipy.sparse.csr_matrix`` float32, ``n_genes x n_genes``: row = target gene, column
    = neighbour, value = weight. Store it where you like, e.g. ``adata.varp["ppi"] = graph``.

    Examples
    --------
    >>> import pandas as pd
    >>> import scgensynth as sgs
    >>> edges = pd.DataFrame({"source": ["A", "A", "B", "X"], "target": ["B", "C", "A", "C"]})
    >>> g = sgs.pp.graph_from_edges(["A", "B", "C"], edges)  # drops the edge with "X"
    >>> g.toarray().astype(int).tolist()
    [[0, 1, 1], [1, 0, 0], [1, 0, 0]]
    """
    names = _gene_names(var_names_or_adata, gene_symbols)
    n_genes = len(names)
    frame = _edge_frame(edges, source_col, target_col, weight_col)
    n_input = len(frame)
    frame = _known_edges(frame, names, gene_symbols)
    pairs = _index_pairs(frame, names, symmetric)
    if pairs.empty:
        msg = (
            f"No edge of the {n_input} given joins two different genes of the data. Check that "
            f"the names in {source_col!r}/{target_col!r} are the same kind of identifier as "
            f"{_matched_names(gene_symbols)} (e.g. {list(names[:3])}): symbols vs Ensembl ids "
            "vs probe sets; pass gene_symbols= to match a column of adata.var instead."
        )
        raise ValueError(msg)
    graph = _csr(pairs["i"].to_numpy(), pairs["j"].to_numpy(), pairs["weight"].to_numpy(), n_genes)
    logger.info(
        "Gene graph from %d listed edges: %d edges (symmetric=%s) over %d of %d genes.",
        n_input,
        graph.nnz,
        symmetric,
        int(np.sum(np.diff(graph.indptr) > 0)),
        n_genes,
    )
    return graph


def _edge_frame(
    edges: Any, source_col: str, target_col: str, weight_col: str | None
) -> pd.DataFrame:
    """The edge list as columns ``source``, ``target`` (names) and ``weight`` (float64)."""
    if not isinstance(edges, pd.DataFrame):
        msg = f"edges must be a pandas DataFrame with one row per edge; got {type(edges)}."
        raise TypeError(msg)
    columns = [source_col, target_col] + ([weight_col] if weight_col is not None else [])
    missing = [c for c in columns if c not in edges.columns]
    if missing:
        msg = (
            f"Column(s) {missing} not in the edge list (columns: {list(edges.columns)}). Name "
            "the columns with source_col=, target_col= (and weight_col=)."
        )
        raise KeyError(msg)
    frame = pd.DataFrame(
        {
            "source": _as_names(edges[source_col]),
            "target": _as_names(edges[target_col]),
            "weight": (
                pd.to_numeric(edges[weight_col], errors="coerce").to_numpy(dtype=np.float64)
                if weight_col is not None
                else np.ones(len(edges))
            ),
        }
    )
    if weight_col is not None and not np.isfinite(frame["weight"]).all():
        msg = (
            f"Column {weight_col!r} has missing or non-numeric weights; fill them or pass "
            "weight_col=None for unweighted edges."
        )
        raise ValueError(msg)
    return frame


def _matched_names(gene_symbols: str | None) -> str:
    """What the edge list's names are matched against, for messages."""
    return f"adata.var[{gene_symbols!r}]" if gene_symbols is not None else "var_names"


def _known_edges(frame: pd.DataFrame, names: pd.Series, gene_symbols: str | None) -> pd.DataFrame:
    """The edges whose both ends are genes of the data (a warning says what was dropped)."""
    n_input = len(frame)
    known = set(names.dropna())
    ends = pd.concat([frame["source"], frame["target"]])
    unknown = ends[~ends.isin(known)].dropna().unique()
    ok = frame["source"].isin(known) & frame["target"].isin(known)
    if not ok.all():
        logger.warning(
            "graph_from_edges: %d of %d genes in the edge list are not in %s (e.g. %s); "
            "dropped the %d of %d edges that touch them (or have a missing name).",
            len(unknown),
            ends.dropna().nunique(),
            _matched_names(gene_symbols),
            ", ".join(map(repr, unknown[:5])),
            int((~ok).sum()),
            n_input,
        )
    return frame[ok]


def _index_pairs(frame: pd.DataFrame, names: pd.Series, symmetric: bool) -> pd.DataFrame:
    """Edges as gene indices ``i`` (target), ``j`` (neighbour) with their ``weight``.

    Self-edges are dropped, duplicates merged (largest weight), rows sorted by ``i``, ``j``.
    """
    lookup = pd.DataFrame({"name": names.to_numpy(), "index": np.arange(len(names))}).dropna()
    frame = frame.merge(lookup.rename(columns={"name": "source", "index": "j"}), on="source")
    frame = frame.merge(lookup.rename(columns={"name": "target", "index": "i"}), on="target")
    pairs = frame[["i", "j", "weight"]]
    if symmetric:
        pairs = pd.concat([pairs, pairs.rename(columns={"i": "j", "j": "i"})], ignore_index=True)
    self_edges = pairs["i"] == pairs["j"]
    if self_edges.any():
        logger.info("graph_from_edges: dropped %d self-edges.", int(self_edges.sum()))
    return pairs[~self_edges].groupby(["i", "j"], as_index=False, sort=True)["weight"].max()


def _as_names(values: Any) -> pd.Series:
    series = pd.Series(values).reset_index(drop=True)
    return series.where(series.isna(), series.astype(str))


def _gene_names(var_names_or_adata: Any, gene_symbols: str | None) -> pd.Series:
    if hasattr(var_names_or_adata, "var_names") and hasattr(var_names_or_adata, "var"):
        var = var_names_or_adata.var
        if gene_symbols is None:
            return _as_names(var_names_or_adata.var_names)
        if gene_symbols not in var.columns:
            msg = (
                f"gene_symbols={gene_symbols!r} is not a column of adata.var (columns: "
                f"{list(var.columns)}). Pass gene_symbols=None to match var_names."
            )
            raise KeyError(msg)
        return _as_names(var[gene_symbols])
    if gene_symbols is not None:
        msg = "gene_symbols= needs an AnnData (it names a column of adata.var)."
        raise ValueError(msg)
    if isinstance(var_names_or_adata, str) or not hasattr(var_names_or_adata, "__len__"):
        msg = (
            "Pass an AnnData or a sequence of gene names (e.g. adata.var_names); got "
            f"{type(var_names_or_adata).__name__}."
        )
        raise TypeError(msg)
    return _as_names(list(var_names_or_adata))


# -- random lesion ---------------------------------------------------------------------------
def random_graph(graph: sparse.spmatrix | sparse.sparray, *, seed: int = 0) -> sparse.csr_matrix:
    """A random gene graph with the same degrees: the RandAttGAN lesion.

    The neighbour ends of all edges are shuffled across the graph (a degree-preserving
    rewiring): edge ``(i, j)`` becomes ``(i, π(j))`` for a random permutation of the
    neighbour ends. Self-loops and duplicate edges this creates are removed by swapping the
    neighbour ends of two edges (``(i, j), (k, l) -> (i, l), (k, j)``) whenever the swap
    creates neither.

    What is preserved, exactly:

    - the shape, the number of edges and **every row's degree** (each target gene keeps
      its number of neighbours);
    - **every column's degree** (how many genes have gene j as a neighbour), except for
      edges whose self-loop or duplicate no swap can remove (every edge is tried): those
      get a random new neighbour instead (the number is logged; in practice 0 unless the
      graph is nearly complete);
    - each row's multiset of edge weights (assigned to the new neighbours at random).

    Not preserved: the neighbours themselves, symmetry, correlation between degrees of
    neighbouring genes. The result has no self-loops and no duplicate edges.

    Parameters
    ----------
    graph
        Square scipy sparse matrix, row = target gene, column = neighbour (e.g. from
        :func:`coexpression_graph`). Stored entries are edges.
    seed
        Random seed.

    Returns
    -------
    ``scipy.sparse.csr_matrix``, float32, same shape.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import sparse
    >>> import scgensynth as sgs
    >>> g = sparse.random(200, 200, density=0.05, format="csr", random_state=0)
    >>> g.setdiag(0)
    >>> g.eliminate_zeros()
    >>> r = sgs.pp.random_graph(g, seed=0)
    >>> bool((np.diff(r.indptr) == np.diff(g.indptr)).all()), int(r.diagonal().sum())
    (True, 0)
    """
    g = _simple_graph(graph)
    n = g.shape[0]
    degree = np.diff(g.indptr)
    rng = np.random.default_rng(seed)
    t = np.repeat(np.arange(n, dtype=np.int64), degree)
    s = rng.permutation(g.indices.astype(np.int64))
    n_swapped, n_fallback = _rewire(t, s, n, rng)

    out = _csr(t, s, g.data.copy(), n)
    n_edges = len(t)
    overlap = np.intersect1d(t * n + s, t * n + g.indices).size  # edges of the input kept
    logger.info(
        "Random graph (seed %d): %d edges, row degrees kept; %d self-loops/duplicates removed "
        "by swaps, %d by new random neighbours (column degree changed); %d edges (%.1f %%) "
        "shared with the input.",
        seed,
        out.nnz,
        n_swapped,
        n_fallback,
        overlap,
        100.0 * overlap / max(n_edges, 1),
    )
    return out


def _simple_graph(graph: Any) -> sparse.csr_matrix:
    """``graph`` as a float32 CSR copy, checked square and with at most n - 1 edges a row."""
    if not sparse.issparse(graph) or graph.shape[0] != graph.shape[1]:
        msg = (
            "graph must be a square scipy sparse matrix (genes x genes, row = target, column = "
            f"neighbour); got {type(graph).__name__} of shape {getattr(graph, 'shape', None)}."
        )
        raise ValueError(msg)
    n = graph.shape[0]
    g = sparse.csr_matrix(graph, dtype=np.float32, copy=True)
    g.sum_duplicates()
    degree = np.diff(g.indptr)
    if degree.size and degree.max() > n - 1:
        msg = (
            f"A gene has {degree.max()} neighbours in a {n}-gene graph: a graph without "
            "self-loops allows at most n_genes - 1. Remove self-loops first (graph.setdiag(0); "
            "graph.eliminate_zeros())."
        )
        raise ValueError(msg)
    return g


class _EdgeCounts:
    """How many times each edge ``(target i, neighbour j)`` occurs in a graph being rewired."""

    def __init__(self, key: np.ndarray, n: int):
        self.n = n
        self.counts: dict[int, int] = {}
        for k in key.tolist():
            self.counts[k] = self.counts.get(k, 0) + 1

    def free(self, i: int, j: int) -> bool:
        """Whether ``(i, j)`` would be a new edge and not a self-loop."""
        return i != j and self.counts.get(i * self.n + j, 0) == 0

    def move(self, i: int, old: int, new: int) -> None:
        """Record that the edge ``(i, old)`` became ``(i, new)``."""
        self.counts[i * self.n + old] -= 1
        self.counts[i * self.n + new] = self.counts.get(i * self.n + new, 0) + 1

    def is_bad(self, i: int, j: int) -> bool:
        """Whether the edge ``(i, j)`` is a self-loop or occurs more than once."""
        return i == j or self.counts[i * self.n + j] > 1


def _rewire(t: np.ndarray, s: np.ndarray, n: int, rng: np.random.Generator) -> tuple[int, int]:
    """Remove the self-loops and duplicates of edges ``(t, s)`` by changing ``s`` in place.

    Each bad edge (in random order) swaps its neighbour end with a partner edge (see
    :func:`_swap_partner`); if none exists it takes a random new neighbour. Returns the
    numbers of swaps and of new neighbours.
    """
    key = t * n + s
    _, first = np.unique(key, return_index=True)
    duplicate = np.ones(len(t), dtype=bool)
    duplicate[first] = False
    bad = np.flatnonzero((s == t) | duplicate)
    rng.shuffle(bad)
    counts = _EdgeCounts(key, n)
    n_swapped = n_fallback = 0
    for e in bad.tolist():
        te, se = int(t[e]), int(s[e])
        if not counts.is_bad(te, se):  # already repaired as the partner of an earlier swap
            continue
        partner = _swap_partner(t, s, e, counts, rng)
        if partner >= 0:
            tp, sp = int(t[partner]), int(s[partner])
            counts.move(te, se, sp)
            counts.move(tp, sp, se)
            s[e], s[partner] = sp, se
            n_swapped += 1
        else:  # no swap exists: a random new neighbour (this edge's column degree moves)
            n_fallback += 1
            taken = np.append(s[t == te], te)
            new = int(rng.choice(np.setdiff1d(np.arange(n), taken)))
            counts.move(te, se, new)
            s[e] = new
    return n_swapped, n_fallback


def _swap_partner(
    t: np.ndarray, s: np.ndarray, e: int, counts: _EdgeCounts, rng: np.random.Generator
) -> int:
    """An edge ``p`` whose neighbour end edge ``e`` may swap with; -1 if there is none.

    The swap ``(te, se), (tp, sp) -> (te, sp), (tp, se)`` must create neither a self-loop
    nor a duplicate. Up to 100 random edges are tried, then every edge.
    """
    te, se = int(t[e]), int(s[e])
    for _ in range(100):
        p = int(rng.integers(len(t)))
        tp, sp = int(t[p]), int(s[p])
        if tp != te and sp != se and counts.free(te, sp) and counts.free(tp, se):
            return p
    # rare: search every edge for a valid partner
    n = counts.n
    current = np.unique(t * n + s)
    ok = (t != te) & (s != se) & (s != te) & (t != se)
    ok &= ~np.isin(te * n + s, current) & ~np.isin(t * n + se, current)
    candidates = np.flatnonzero(ok)
    return int(rng.choice(candidates)) if candidates.size else -1
