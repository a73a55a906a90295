"""Gene-gene structure of synthetic data: correlation matrices, dendrograms, networks, clusters.

The scores of Viñas et al. (2022) and the correlation score of the survey of Lacan et al.
(2023). Every function compares the *genes* of two datasets (real first, synthetic second), so
the samples of both may differ in number and identity; genes are aligned by ``var_names``.

References
----------
R. Viñas, H. Andrés-Terré, P. Liò, K. Bryson (2022). Adversarial generation of gene
expression data. *Bioinformatics* 38(3):730-737. Reference code:
github.com/rvinas/adversarial-gene-expression (``utils.py``: ``gamma_coefficients``,
``compute_tf_tg_corrs``, ``psi_coefficient``, ``phi_coefficient``, ``hierarchical_clustering``).

A. Lacan, M. Sebag, B. Hanczar (2023). GAN-based data augmentation for transcriptomics: survey
and comparative assessment. *Bioinformatics* 39(Supplement 1):i111-i120.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import cophenet, linkage
from scipy.optimize import linear_sum_assignment
from scipy.stats import rankdata
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score
from sklearn.metrics.cluster import contingency_matrix

from ._docs import fill_doc
from ._utils import Streamed, get_values, is_anndata, paired, paired_values

if TYPE_CHECKING:
    from ._utils import ArrayOrAnnData

logger = logging.getLogger(__name__)

#: linkages that are defined for an arbitrary dissimilarity (not only Euclidean distances)
_LINKAGES = ("complete", "average", "single", "weighted")
#: correlations of correlation_matrices
_METHODS = ("pearson", "spearman")


# -- shared numerics ---------------------------------------------------------------------------
def _constant_genes(X: np.ndarray) -> np.ndarray:
    """Genes whose values are all equal (zero variance, computed exactly, without rounding)."""
    return np.ptp(X, axis=0) == 0


def _standardize_columns(X: np.ndarray) -> np.ndarray:
    """Columns centred and scaled to unit (population) standard deviation, in float64.

    Every column must vary (see :func:`_constant_genes`); the statistics are ``X``'s own.
    """
    Z = X - X.mean(axis=0)
    Z /= np.sqrt((Z**2).mean(axis=0))
    return Z


def _correlation_matrix(X: np.ndarray) -> np.ndarray:
    """Gene-gene Pearson correlations of a samples x genes matrix of non-constant genes."""
    Z = _standardize_columns(X)
    C = Z.T @ Z / X.shape[0]
    np.clip(C, -1.0, 1.0, out=C)
    np.fill_diagonal(C, 1.0)
    return C


def _pearson(a: np.ndarray, b: np.ndarray, what: str) -> float:
    """Pearson correlation of two vectors; NaN (with a warning) when one of them is constant."""
    a = a - a.mean()
    b = b - b.mean()
    denom = np.sqrt((a @ a) * (b @ b))
    if denom == 0:
        logger.warning(
            "%s: one of the compared vectors is constant, so their correlation is undefined "
            "(returning NaN).",
            what,
        )
        return float("nan")
    return float(np.clip((a @ b) / denom, -1.0, 1.0))


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / denom) if denom > 0 else 0.0


def _variable_genes(r: np.ndarray, s: np.ndarray, what: str) -> np.ndarray:
    """Indices of the genes with non-zero variance in both sets (logs how many were dropped)."""
    const_r, const_s = _constant_genes(r), _constant_genes(s)
    keep = ~(const_r | const_s)
    if not keep.all():
        logger.debug(
            "%s: dropped %d genes with zero variance (%d in real, %d in synthetic); their "
            "correlations are undefined.",
            what,
            int((~keep).sum()),
            int(const_r.sum()),
            int(const_s.sum()),
        )
    return np.flatnonzero(keep)


def _check_max_genes(max_genes) -> None:
    if max_genes is not None and (
        not isinstance(max_genes, int | np.integer) or isinstance(max_genes, bool) or max_genes < 3
    ):
        msg = f"max_genes must be None or an integer >= 3, got {max_genes!r}."
        raise ValueError(msg)


def _structure_genes(
    r: np.ndarray, s: np.ndarray, max_genes: int | None, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Both matrices restricted to the most variable real genes that vary in both sets.

    The ``max_genes`` genes are chosen by their variance in ``real`` alone (ties broken by
    column order); genes constant in either set are then dropped.
    """
    _check_max_genes(max_genes)
    if max_genes is not None and r.shape[1] > max_genes:
        variance = r.var(axis=0)
        top = np.argsort(-variance, kind="stable")[:max_genes]
        top.sort()
        logger.debug(
            "%s: using the %d most variable real genes of %d.", what, max_genes, r.shape[1]
        )
        r, s = r[:, top], s[:, top]
    keep = _variable_genes(r, s, what)
    if len(keep) < 3:
        msg = (
            f"{what} needs at least 3 genes that vary in both datasets; {len(keep)} do. "
            "Check that the data are not constant, or pass more genes."
        )
        raise ValueError(msg)
    return r[:, keep], s[:, keep]


def _streamed_structure(
    r: np.ndarray, s: Streamed, max_genes: int | None, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_structure_genes` with ``s`` read in blocks, then ``s``'s correlation matrix.

    Returns ``r`` restricted to the genes kept and ``s``'s correlations over them. One
    block: exactly the in-memory computation. Several: per-gene minima and maxima (for
    the constant genes) and sums of deviations from the first block's mean and of their
    outer products, over the ``max_genes`` genes only.
    """
    _check_max_genes(max_genes)
    blocks = iter(s.blocks())
    _, first = next(blocks)
    rest = next(blocks, None)
    if rest is None:
        r, s_kept = _structure_genes(r, first, max_genes, what)
        return r, _correlation_matrix(s_kept)
    top = np.arange(r.shape[1])
    if max_genes is not None and r.shape[1] > max_genes:
        top = np.sort(np.argsort(-r.var(axis=0), kind="stable")[:max_genes])
    shift = first[:, top].mean(0, dtype=np.float64)
    lo, hi = first[:, top].min(0), first[:, top].max(0)
    n, total, outer = 0, np.zeros(len(top)), np.zeros((len(top), len(top)))
    for _, block in itertools.chain([(0, first), rest], blocks):
        d = np.asarray(block[:, top], dtype=np.float64) - shift
        lo, hi = np.minimum(lo, block[:, top].min(0)), np.maximum(hi, block[:, top].max(0))
        n += d.shape[0]
        total += d.sum(0)
        outer += d.T @ d
    # the genes kept are those of _structure_genes: variable in both sets
    r_top = r[:, top]
    keep = ~(_constant_genes(r_top) | (hi == lo))
    if len(np.flatnonzero(keep)) < 3:
        msg = (
            f"{what} needs at least 3 genes that vary in both datasets; "
            f"{int(keep.sum())} do. Check that the data are not constant, or pass more genes."
        )
        raise ValueError(msg)
    mean = total[keep] / n
    cov = outer[np.ix_(keep, keep)] / n - np.outer(mean, mean)
    sd = np.sqrt(np.diag(cov))
    C = cov / np.outer(sd, sd)
    np.clip(C, -1.0, 1.0, out=C)
    np.fill_diagonal(C, 1.0)
    return r_top[:, keep], C


def _upper(C: np.ndarray) -> np.ndarray:
    return C[np.triu_indices(C.shape[0], k=1)]


def _paired_structure(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    layer: str | None,
    max_genes: int | None,
    what: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Real and synthetic correlation matrices over the genes of :func:`_structure_genes`."""
    r, s = paired(real, synth, layer=layer)
    r, c_synth = _streamed_structure(r, s, max_genes, what)
    return _correlation_matrix(r), c_synth


# -- whole-matrix scores -----------------------------------------------------------------------
@fill_doc
def correlation_score(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    *,
    layer: str | None = None,
    max_genes: int | None = 2000,
) -> float:
    """Correlation between the real and the synthetic gene-gene correlation matrices.

    The "correlation score" of the survey of Lacan et al. (2023): the gene-gene Pearson
    correlation matrix is computed in each dataset, and the score is the Pearson correlation
    between their upper triangles (diagonal excluded). 1 means the same correlation structure
    (up to an affine map); 0 means none of it is kept. It is identical to :func:`s_dist`.

    Genes with zero variance in either dataset have undefined correlations and are dropped
    (logged at debug level). The cost is quadratic in the number of genes, so only the
    ``max_genes`` most variable genes of ``real`` are used (chosen from ``real`` alone, so the
    choice does not depend on ``synth``).

    Parameters
    ----------
    {real_synth}
        The numbers of samples may differ.
    {layer}
    {max_genes}

    Returns
    -------
    The score, in [-1, 1].

    Examples
    --------
    >>> import numpy as np
    >>> import scgensynth as sgs
    >>> rng = np.random.default_rng(0)
    >>> mixing = rng.normal(size=(6, 6))
    >>> real = rng.normal(size=(300, 6)) @ mixing
    >>> synth = rng.normal(size=(300, 6)) @ mixing
    >>> round(sgs.metrics.correlation_score(real, synth), 2)
    0.99
    >>> round(sgs.metrics.correlation_score(real, rng.normal(size=(300, 6))), 2)
    0.13
    """
    c_real, c_synth = _paired_structure(real, synth, layer, max_genes, "correlation_score")
    return _pearson(_upper(c_real), _upper(c_synth), "correlation_score")


@fill_doc
def s_dist(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    *,
    layer: str | None = None,
    max_genes: int | None = 2000,
) -> float:
    """S_dist of Viñas et al. (2022): agreement of the gene-gene dissimilarity matrices.

    Each dataset gives a gene-gene dissimilarity matrix ``D = 1 - r`` (``r``: Pearson
    correlation between the genes' expression across samples); S_dist is the Pearson
    correlation between the upper triangles of the real and the synthetic ``D`` (the paper's
    Γ(D^X, D^Z), ``gamma_coefficients`` in the authors' ``utils.py``).

    Because ``D`` is an affine function of the correlation matrix and Pearson correlation is
    invariant to affine maps, S_dist is mathematically identical to :func:`correlation_score`;
    it is kept under the paper's name for readers of that paper.

    Genes with zero variance in either dataset are dropped (logged at debug level); the
    ``max_genes`` most variable genes of ``real`` are used (chosen from ``real`` alone).

    Parameters
    ----------
    {real_synth}
    {layer}
    {max_genes}

    Returns
    -------
    S_dist, in [-1, 1]; 1 for identical correlation structure.

    Examples
    --------
    >>> import numpy as np
    >>> import scgensynth as sgs
    >>> rng = np.random.default_rng(0)
    >>> mixing = rng.normal(size=(6, 6))
    >>> real = rng.normal(size=(300, 6)) @ mixing
    >>> synth = rng.normal(size=(300, 6)) @ mixing
    >>> round(sgs.metrics.s_dist(real, synth), 2)
    0.99
    """
    c_real, c_synth = _paired_structure(real, synth, layer, max_genes, "s_dist")
    return _pearson(1.0 - _upper(c_real), 1.0 - _upper(c_synth), "s_dist")


@fill_doc
def s_dend(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    *,
    layer: str | None = None,
    max_genes: int | None = 2000,
    method: str = "complete",
) -> float:
    """S_dend of Viñas et al. (2022): agreement of the real and synthetic gene dendrograms.

    In each dataset the genes are clustered hierarchically (agglomerative clustering with
    ``method`` linkage, complete in the paper) on the dissimilarity ``1 - r``, ``r`` the
    Pearson correlation between genes. Each dendrogram gives the cophenetic distance of every
    gene pair (the height at which the pair is first merged); S_dend is the Pearson
    correlation between the real and the synthetic cophenetic distances (the paper's
    Γ(T^X, T^Z); ``hierarchical_clustering`` and ``compare_cophenetic`` in the authors'
    ``utils.py``). Computed with :func:`scipy.cluster.hierarchy.linkage` and
    :func:`~scipy.cluster.hierarchy.cophenet` on condensed matrices.

    Genes with zero variance in either dataset are dropped (logged at debug level); the
    ``max_genes`` most variable genes of ``real`` are used (chosen from ``real`` alone).

    Parameters
    ----------
    {real_synth}
    {layer}
    {max_genes}
    method
        Linkage: ``"complete"`` (the paper's), ``"average"``, ``"single"`` or ``"weighted"``
        (the linkages defined for a dissimilarity that is not a Euclidean distance).

    Returns
    -------
    S_dend, in [-1, 1]; 1 for identical dendrograms.

    Examples
    --------
    >>> import numpy as np
    >>> import scgensynth as sgs
    >>> rng = np.random.default_rng(0)
    >>> mixing = rng.normal(size=(6, 6))
    >>> real = rng.normal(size=(300, 6)) @ mixing
    >>> round(sgs.metrics.s_dend(real, real), 2)
    1.0
    """
    if method not in _LINKAGES:
        msg = (
            f"method must be one of {list(_LINKAGES)}, not {method!r} (centroid, median and "
            "ward linkages need Euclidean distances, and 1 - correlation is not one)."
        )
        raise ValueError(msg)
    heights = []
    for C in _paired_structure(real, synth, layer, max_genes, "s_dend"):
        dissimilarity = np.clip(1.0 - _upper(C), 0.0, 2.0)
        heights.append(cophenet(linkage(dissimilarity, method=method)))
    return _pearson(heights[0], heights[1], "s_dend")


@fill_doc
def mean_correlation(
    real: ArrayOrAnnData, synth: ArrayOrAnnData, *, layer: str | None = None
) -> float:
    """Pearson correlation between the per-gene means of real and synthetic samples.

    A first-order check: 1 when every gene has the same average level up to an affine map.
    It says nothing about gene-gene structure (see :func:`correlation_score`).

    Parameters
    ----------
    {real_synth}
    {layer}

    Returns
    -------
    The correlation, in [-1, 1] (NaN, with a warning, when all the means of a set are equal).

    Examples
    --------
    >>> import numpy as np
    >>> import scgensynth as sgs
    >>> rng = np.random.default_rng(0)
    >>> means = rng.normal(5, 2, size=20)
    >>> real = means + rng.normal(size=(100, 20))
    >>> synth = means + rng.normal(size=(80, 20))
    >>> round(sgs.metrics.mean_correlation(real, synth), 2)
    1.0
    """
    r, s = paired(real, synth, layer=layer)  # synthetic means summed block by block
    sums = [block.sum(axis=0) for _, block in s.blocks()]
    s_mean = sums[0] / s.shape[0] if len(sums) == 1 else np.sum(sums, axis=0) / s.shape[0]
    return _pearson(r.mean(axis=0), s_mean, "mean_correlation")


# -- the matrices themselves ------------------------------------------------------------------
def _gene_index(data: ArrayOrAnnData) -> pd.Index:
    """The labels of the columns: ``var_names``, or positions for arrays."""
    return data.var_names if is_anndata(data) else pd.RangeIndex(np.shape(data)[1])


def _matrix_genes(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    genes: Sequence | None,
    max_genes: int | None,
    layer: str | None,
) -> list:
    """The genes of :func:`correlation_matrices`, checked against both datasets."""
    if genes is None:
        _check_max_genes(max_genes)
        variance = get_values(real, layer=layer, name="real").var(axis=0)
        top = np.argsort(-variance, kind="stable")[:max_genes]
        names = _gene_index(real)[top].tolist()
    else:
        names = [genes] if isinstance(genes, str) else list(genes)
        if len(set(names)) != len(names):
            msg = "genes lists a gene more than once."
            raise ValueError(msg)
        missing = [g for g in names if g not in _gene_index(real)]
        if missing:
            msg = (
                f"{len(missing)} of the requested genes are not in real.var_names "
                f"(e.g. {missing[:3]})."
            )
            raise ValueError(msg)
    missing = [g for g in names if g not in _gene_index(synth)]
    if missing:
        msg = (
            f"{len(missing)} of the genes are not in synth.var_names (e.g. {missing[:3]}); "
            "genes are matched by name. Pass genes= present in both, e.g. "
            "real.var_names.intersection(synth.var_names)."
        )
        raise ValueError(msg)
    return names


def _columns(data: ArrayOrAnnData, names: list, layer: str | None, what: str) -> np.ndarray:
    """The values of the genes ``names`` (labels of :func:`_gene_index`), in that order."""
    if is_anndata(data):
        return get_values(data[:, names], layer=layer, name=what)
    columns = np.asarray(names, dtype=np.int64)
    return get_values(data, layer=layer, name=what, columns=columns)


@fill_doc
def correlation_matrices(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    genes: Sequence[str] | None = None,
    *,
    max_genes: int | None = 2000,
    layer: str | None = None,
    method: str = "pearson",
) -> dict[str, pd.DataFrame | float]:
    """Gene-gene correlation matrices of real and synthetic data over the same genes.

    The matrices that :func:`correlation_score` compares (and
    :func:`scgensynth.pl.correlation` draws): the gene-gene correlation matrix of each
    dataset over ``genes`` (default: the ``max_genes`` most variable genes of ``real``, most
    variable first), and the correlation score between them, the Pearson correlation of
    their upper triangles (for ``method="pearson"``, :func:`correlation_score` on these
    genes). Genes with zero variance in either dataset have undefined correlations and are
    left out, with a warning.

    Parameters
    ----------
    real, synth
        AnnData (genes matched by ``var_names``; ``synth`` needs only the genes used) or
        samples x genes arrays with the same columns.
    genes
        Genes to use, in this order: names in ``var_names`` (column positions for arrays).
    max_genes
        Without ``genes``: use this many genes, the most variable in ``real``; ``None`` uses
        all (the cost grows with the square of the number of genes).
    {layer}
    method
        ``"pearson"``, or ``"spearman"`` (Pearson correlation of the ranks in each dataset).

    Returns
    -------
    ``{"real": DataFrame, "synthetic": DataFrame, "score": float}``: the genes x genes
    matrices (indexed by gene, in the order used) and the score, in [-1, 1].

    Examples
    --------
    >>> import numpy as np
    >>> import scgensynth as sgs
    >>> rng = np.random.default_rng(0)
    >>> mixing = rng.normal(size=(6, 6))
    >>> real = rng.normal(size=(300, 6)) @ mixing
    >>> synth = rng.normal(size=(300, 6)) @ mixing
    >>> matrices = sgs.metrics.correlation_matrices(real, synth)
    >>> matrices["real"].shape, round(matrices["score"], 2)
    ((6, 6), 0.99)
    >>> bool(np.isclose(matrices["score"], sgs.metrics.correlation_score(real, synth)))
    True
    """
    if method not in _METHODS:
        msg = f"method must be one of {list(_METHODS)}, not {method!r}."
        raise ValueError(msg)
    names = _matrix_genes(real, synth, genes, max_genes, layer)
    r = _columns(real, names, layer, "real")
    s = _columns(synth, names, layer, "synthetic")
    constant = _constant_genes(r) | _constant_genes(s)
    if constant.any():
        logger.warning(
            "correlation_matrices: left out %d genes with zero variance in real or synthetic "
            "data (e.g. %s); their correlations are undefined.",
            int(constant.sum()),
            [g for g, c in zip(names, constant) if c][:3],
        )
        names = [g for g, c in zip(names, constant) if not c]
        r, s = r[:, ~constant], s[:, ~constant]
    if len(names) < 3:
        msg = (
            f"correlation_matrices needs at least 3 genes that vary in both datasets; "
            f"{len(names)} do. Pass more genes."
        )
        raise ValueError(msg)
    if method == "spearman":
        r, s = rankdata(r, axis=0), rankdata(s, axis=0)
    c_real, c_synth = _correlation_matrix(r), _correlation_matrix(s)
    return {
        "real": pd.DataFrame(c_real, index=names, columns=names),
        "synthetic": pd.DataFrame(c_synth, index=names, columns=names),
        "score": _pearson(_upper(c_real), _upper(c_synth), "correlation_matrices"),
    }


# -- regulatory networks -----------------------------------------------------------------------
def _check_enough(n: int, what: str, metric: str) -> None:
    """A network score needs 3 correlations (``what``) at least."""
    if n < 3:
        msg = (
            f"{metric}: only {n} {what} remain (fewer than 3) after dropping edges with genes "
            "missing from the data or with zero variance; check that the network's gene "
            "names match var_names."
        )
        raise ValueError(msg)


def _mean_cosine(
    r: np.ndarray,
    s: np.ndarray,
    correlations: Callable[[np.ndarray], Iterator[tuple[int, np.ndarray]]],
) -> float:
    """Weighted mean cosine similarity of the real and the synthetic correlation vectors.

    ``correlations(z)`` yields ``(weight, vector)`` for the standardized columns ``z`` of
    either dataset, in the same order for both.
    """
    total, weights = 0.0, 0
    pairs = zip(correlations(_standardize_columns(r)), correlations(_standardize_columns(s)))
    for (weight, corr_r), (_, corr_s) in pairs:
        total += weight * _cosine(corr_r, corr_s)
        weights += weight
    return float(total / weights)


def _check_network(network: pd.DataFrame, tf_col: str, target_col: str) -> None:
    if not isinstance(network, pd.DataFrame):
        msg = (
            "network must be a pandas DataFrame with one row per TF -> target edge, "
            f"not {type(network).__name__}."
        )
        raise TypeError(msg)
    for col in (tf_col, target_col):
        if col not in network.columns:
            msg = (
                f"network has no column {col!r} (columns: {list(network.columns)}); "
                "pass tf_col= and target_col= to name the TF and target columns."
            )
            raise KeyError(msg)


def _gene_indices(values: pd.Series, real: ArrayOrAnnData, n_genes: int) -> np.ndarray:
    """Column index of each network entry (-1 where missing from the data)."""
    if is_anndata(real):
        if not real.var_names.is_unique:
            msg = "var_names are not unique; call .var_names_make_unique() on both datasets."
            raise ValueError(msg)
        names = pd.Index(values.astype(object).where(values.notna(), None))
        return np.asarray(real.var_names.get_indexer(names), dtype=np.int64)
    present = values.notna().to_numpy()
    entries = values[present].tolist()
    if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in entries):
        msg = (
            f"network[{values.name!r}] must hold integer column indices when the data are "
            "arrays; gene names need AnnData input with matching var_names."
        )
        raise TypeError(msg)
    idx = np.full(len(values), -1, dtype=np.int64)
    cols = np.asarray(entries, dtype=np.int64)
    cols[(cols < 0) | (cols >= n_genes)] = -1
    idx[present] = cols
    return idx


def _network_groups(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    network: pd.DataFrame,
    layer: str | None,
    tf_col: str,
    target_col: str,
    what: str,
    need_tf: bool,
) -> tuple[np.ndarray, np.ndarray, list[int], list[np.ndarray]]:
    """Values of the genes a network score uses and, per TF, the columns of its targets.

    Returns the real and synthetic values restricted to the used genes, the column of each
    TF in them (-1 when ``need_tf`` is false: the TF is then only a grouping key) and, for
    each TF, the columns of its targets.
    """
    _check_network(network, tf_col, target_col)
    r, s = paired_values(real, synth, layer=layer)
    variable = ~(_constant_genes(r) | _constant_genes(s))
    tg = _gene_indices(network[target_col], real, r.shape[1])
    absent = tg < 0
    constant = ~absent & ~variable[np.maximum(tg, 0)]
    if need_tf:
        tf = _gene_indices(network[tf_col], real, r.shape[1])
        key = tf
        absent |= tf < 0
        constant = ~absent & ~(variable[np.maximum(tg, 0)] & variable[np.maximum(tf, 0)])
    else:
        tf = np.full(len(tg), -1, dtype=np.int64)
        key = pd.factorize(network[tf_col])[0]  # -1 for a missing TF
        absent |= key < 0
        constant &= ~absent
    n_dropped = int(absent.sum() + constant.sum())
    if n_dropped:
        logger.warning(
            "%s: dropped %d of %d network edges: %d with a gene missing from the data, %d with "
            "a gene of zero variance in real or synthetic.",
            what,
            n_dropped,
            len(tg),
            int(absent.sum()),
            int(constant.sum()),
        )
    usable = ~absent & ~constant
    edges = pd.DataFrame({"key": key[usable], "tf": tf[usable], "tg": tg[usable]})
    if need_tf:
        self_loop = (edges["tf"] == edges["tg"]).to_numpy()
        if self_loop.any():
            logger.warning(
                "%s: dropped %d self-regulation edges (a gene's correlation with itself is 1).",
                what,
                int(self_loop.sum()),
            )
            edges = edges[~self_loop]
    duplicated = edges.duplicated(["key", "tg"]).to_numpy()
    if duplicated.any():
        logger.debug("%s: dropped %d duplicated edges.", what, int(duplicated.sum()))
        edges = edges[~duplicated]
    used = edges["tg"].to_numpy()
    if need_tf:
        used = np.concatenate([used, edges["tf"].to_numpy()])
    genes = np.unique(used)
    local = np.full(r.shape[1], -1, dtype=np.int64)
    local[genes] = np.arange(len(genes))
    tfs, targets = [], []
    for _, group in edges.groupby("key", sort=True):
        tfs.append(int(local[group["tf"].iloc[0]]) if need_tf else -1)
        targets.append(local[group["tg"].to_numpy()])
    return r[:, genes], s[:, genes], tfs, targets


@fill_doc
def s_tf_tg(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    network: pd.DataFrame,
    *,
    layer: str | None = None,
    tf_col: str = "tf",
    target_col: str = "target",
) -> float:
    """S_TF-TG of Viñas et al. (2022): agreement of the TF-target correlations of a network.

    For every transcription factor (TF) with targets in the data, the Pearson correlations
    between the TF and each of its targets form a vector in each dataset; the TF's score is the
    cosine similarity between its real and synthetic vectors, and S_TF-TG is the average of the
    TFs' scores weighted by their numbers of targets (``compute_tf_tg_corrs`` and
    ``psi_coefficient`` in the authors' ``utils.py``). 1: every TF correlates with its targets
    as in the real data (up to a common positive scale per TF).

    Edges whose TF or target is missing from the data, or has zero variance in either dataset,
    are dropped with a logged warning saying how many; self-regulation edges (a gene's
    correlation with itself is always 1) and duplicated edges are dropped too.

    Parameters
    ----------
    {real_synth}
    {network}
    {layer}
    {tf_target_cols}

    Returns
    -------
    S_TF-TG, in [-1, 1].

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> import scgensynth as sgs
    >>> rng = np.random.default_rng(0)
    >>> def sample(n):
    ...     tf = rng.normal(size=(n, 1))
    ...     targets = tf * [1.0, 0.5, -1.0, 2.0] + rng.normal(size=(n, 4))
    ...     return np.hstack([tf, targets])
    >>> network = pd.DataFrame({"tf": [0, 0, 0, 0], "target": [1, 2, 3, 4]})
    >>> round(sgs.metrics.s_tf_tg(sample(200), sample(150), network), 2)
    1.0
    """
    r, s, tfs, targets = _network_groups(
        real, synth, network, layer, tf_col, target_col, "s_tf_tg", need_tf=True
    )
    _check_enough(sum(len(t) for t in targets), "usable TF -> target edges", "s_tf_tg")

    def tf_target_correlations(z: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        for tf, tg in zip(tfs, targets):
            yield len(tg), z[:, tf] @ z[:, tg] / z.shape[0]

    return _mean_cosine(r, s, tf_target_correlations)


@fill_doc
def s_tg_tg(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    network: pd.DataFrame,
    *,
    layer: str | None = None,
    tf_col: str = "tf",
    target_col: str = "target",
) -> float:
    """S_TG-TG of Viñas et al. (2022): agreement of the correlations of co-regulated targets.

    For every TF with at least two targets in the data, the Pearson correlations between all
    pairs of its targets form a vector in each dataset; the TF's score is the cosine
    similarity between its real and synthetic vectors, and S_TG-TG is the weighted average of
    the TFs' scores with weight ``m - 1`` for a TF with ``m`` targets (``compute_tf_tg_corrs``
    and ``phi_coefficient`` in the authors' ``utils.py``, whose weight solves
    ``w (w + 1) / 2 = m (m - 1) / 2``). 1: co-regulated genes co-vary as in the real data.

    The TF itself need not be in the data (only its targets are correlated); unlike the
    authors' code, a TF missing from the data still contributes its targets' pairs. Edges
    whose target is missing from the data, or has zero variance in either dataset, are dropped
    with a logged warning saying how many; duplicated edges are dropped too.

    Parameters
    ----------
    {real_synth}
    {network}
        (The TF column may then hold any label.)
    {layer}
    {tf_target_cols}

    Returns
    -------
    S_TG-TG, in [-1, 1].

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> import scgensynth as sgs
    >>> rng = np.random.default_rng(0)
    >>> def sample(n):  # four targets of a regulator that is not measured
    ...     regulator = rng.normal(size=(n, 1))
    ...     return regulator * [1.0, 0.5, -1.0, 2.0] + rng.normal(size=(n, 4))
    >>> network = pd.DataFrame({"tf": ["A"] * 4, "target": [0, 1, 2, 3]})
    >>> round(sgs.metrics.s_tg_tg(sample(200), sample(150), network), 2)
    1.0
    """
    r, s, _, targets = _network_groups(
        real, synth, network, layer, tf_col, target_col, "s_tg_tg", need_tf=False
    )
    n_pairs = sum(len(t) * (len(t) - 1) // 2 for t in targets)
    _check_enough(n_pairs, "pairs of targets sharing a TF", "s_tg_tg")

    def target_pair_correlations(z: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        for tg in targets:
            if len(tg) >= 2:
                yield len(tg) - 1, _upper(z[:, tg].T @ z[:, tg]) / z.shape[0]

    return _mean_cosine(r, s, target_pair_correlations)


# -- gene clusters -----------------------------------------------------------------------------
def _gene_embedding(X: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    """Genes as points: z-scored expression profiles, reduced by PCA to ``n_components``."""
    genes = _standardize_columns(X).T  # genes x samples; squared distances are 2 n (1 - r)
    d = min(n_components, genes.shape[0], genes.shape[1])
    if d >= min(genes.shape):
        return genes  # a full PCA would only rotate the points
    # exact (and independent of the order of the samples) up to 2000 samples
    solver = "covariance_eigh" if genes.shape[1] <= 2000 else "randomized"
    return PCA(d, svd_solver=solver, random_state=seed).fit_transform(genes)


@fill_doc
def gene_cluster_agreement(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    *,
    k: int = 10,
    layer: str | None = None,
    seed: int = 0,
    n_components: int = 50,
) -> dict[str, float]:
    """Agreement of the gene clusters of real and synthetic data (Viñas et al. 2022).

    The global clustering analysis of Viñas et al. (2022, Fig. 3): the genes are clustered
    with k-means separately in each dataset, and the two clusterings are compared. Each gene
    is a point whose coordinates are its expression profile across samples, z-scored per gene
    so that Euclidean distances follow correlations (``|z_a - z_b|² = 2 n (1 - r_ab)``),
    reduced by PCA to at most ``n_components`` dimensions for speed. (The authors ran k-means
    on the raw profiles; z-scoring makes genes with high expression or variance no different
    from the others.) k-means uses ``random_state=seed`` and ``n_init=10``.

    The clusters of the two datasets are then matched one-to-one to maximise the number of
    shared genes (:func:`scipy.optimize.linear_sum_assignment` on the contingency table).
    Genes with zero variance in either dataset are dropped (logged at debug level).

    Parameters
    ----------
    {real_synth}
    k
        Number of gene clusters (at least 2, at most the number of usable genes).
    {layer}
    seed
        Random state of k-means (and of the PCA on very large data).
    n_components
        PCA dimensions of the gene points.

    Returns
    -------
    ``{"agreement": share of genes in matched clusters, "adjusted_rand": adjusted Rand index
    between the two gene labellings}``; both 1 for identical clusterings. The agreement of two
    unrelated clusterings is above ``1 / k`` (the matching picks the best pairs); the adjusted
    Rand index is about 0.

    Examples
    --------
    >>> import numpy as np
    >>> import scgensynth as sgs
    >>> rng = np.random.default_rng(0)
    >>> def sample(n):
    ...     programs = rng.normal(size=(n, 3))
    ...     return np.repeat(programs, 4, axis=1) + 0.5 * rng.normal(size=(n, 12))
    >>> sgs.metrics.gene_cluster_agreement(sample(100), sample(80), k=3)
    {'agreement': 1.0, 'adjusted_rand': 1.0}
    """
    if not isinstance(k, int | np.integer) or isinstance(k, bool) or k < 2:
        msg = f"k must be an integer >= 2 (the number of gene clusters), got {k!r}."
        raise ValueError(msg)
    if not isinstance(n_components, int | np.integer) or n_components < 1:
        msg = f"n_components must be a positive integer, got {n_components!r}."
        raise ValueError(msg)
    r, s = paired_values(real, synth, layer=layer)
    keep = _variable_genes(r, s, "gene_cluster_agreement")
    if k > len(keep):
        msg = (
            f"k={k} gene clusters need at least {k} genes that vary in both datasets, but "
            f"only {len(keep)} do; pass k<={len(keep)}."
        )
        raise ValueError(msg)
    labels = []
    for X in (r[:, keep], s[:, keep]):
        points = _gene_embedding(X, int(n_components), seed)
        kmeans = KMeans(n_clusters=int(k), n_init=10, random_state=seed)
        labels.append(kmeans.fit_predict(points))
    table = contingency_matrix(labels[0], labels[1])
    rows, cols = linear_sum_assignment(table, maximize=True)
    agreement = float(table[rows, cols].sum() / len(keep))
    return {
        "agreement": agreement,
        "adjusted_rand": float(adjusted_rand_score(labels[0], labels[1])),
    }


__all__ = [
    "correlation_matrices",
    "correlation_score",
    "gene_cluster_agreement",
    "mean_correlation",
    "s_dend",
    "s_dist",
    "s_tf_tg",
    "s_tg_tg",
]
