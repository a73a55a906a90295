"""sgs.pl.marker_dotplot: the real classes' marker genes in real and synthetic samples."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from scgensynth._utils._anndata import get_matrix, in_memory
from scgensynth._utils._docs import doctest_skip
from scgensynth._utils._keys import SOURCE_KEY

from ._docs import fill_doc
from ._palettes import SOURCES
from ._utils import check_groupby, check_pair

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes

logger = logging.getLogger(__name__)

#: arguments of :func:`scanpy.pl.dotplot` that marker_dotplot sets itself
_OWN = ("adata", "var_names", "groupby", "layer", "use_raw")


def _classes(labels: pd.Series) -> list[str]:
    """The classes of ``labels`` in their categories' order (sorted when not categorical)."""
    if isinstance(labels.dtype, pd.CategoricalDtype):
        present = set(labels.dropna().astype(str))
        return [str(c) for c in labels.cat.categories if str(c) in present]
    return sorted(map(str, pd.unique(labels.dropna())))


def _slim(
    adata: AnnData, columns: np.ndarray, groupby: str, layer: str | None, var: pd.DataFrame
) -> AnnData:
    """A new AnnData: the values (``layer`` or ``X``) of ``columns``, ``obs[groupby]``."""
    X = in_memory(get_matrix(adata, layer))[:, columns]
    X = X.astype(np.float32) if sparse.issparse(X) else np.array(X, dtype=np.float32)
    labels = adata.obs[groupby]
    obs = pd.DataFrame(
        {groupby: labels.astype(str).where(labels.notna(), None).to_numpy()},
        index=adata.obs_names.astype(str),
    )
    return ad.AnnData(X=X, obs=obs, var=var.copy())


def _markers(real: AnnData, groupby: str, classes: list[str], n_genes: int, method: str):
    """``{class: its n_genes top genes}`` by :func:`scanpy.tl.rank_genes_groups` on ``real``.

    ``real`` is this module's own copy: the ranking is written into it, never into the
    user's data.
    """
    import scanpy as sc

    sizes = real.obs[groupby].value_counts()
    small = [c for c in classes if sizes.get(c, 0) < 2]
    if small:
        msg = (
            f"marker_dotplot ranks each class of {groupby!r} against the others and needs 2 or "
            f"more real samples per class; {small[:5]} have fewer. Leave them out, e.g. "
            f"real[~real.obs[{groupby!r}].isin({small[:5]})]."
        )
        raise ValueError(msg)
    real.obs[groupby] = pd.Categorical(real.obs[groupby], categories=classes)
    # every gene ranked: scanpy picks its top n_genes among equal scores arbitrarily
    sc.tl.rank_genes_groups(real, groupby, method=method, n_genes=real.n_vars, use_raw=False)
    out = {}
    for c in classes:
        df = sc.get.rank_genes_groups_df(real, c)
        keys = [k for k in ("scores", "logfoldchanges") if k in df and df[k].notna().any()]
        df = df.sort_values(keys, ascending=False, kind="stable") if keys else df
        out[c] = [str(g) for g in df["names"][:n_genes]]
    return out


def _combined(real: AnnData, synth: AnnData, groupby: str, classes: list[str], key: str):
    """Real and synthetic rows in one AnnData; ``obs[key]``: "<class> (real|synthetic)"."""
    extra = sorted(set(synth.obs[groupby].dropna()) - set(classes))
    missing = [c for c in classes if c not in set(synth.obs[groupby])]
    if extra or missing:
        logger.warning(
            "marker_dotplot: synthetic classes not in real are left out (%s); real classes "
            "without synthetic samples have no synthetic row (%s).", extra[:5], missing[:5],
        )  # fmt: skip
    both = ad.concat({s: a for s, a in zip(SOURCES, (real, synth))}, label=SOURCE_KEY,
                     index_unique="-", merge="first")  # fmt: skip
    both = both[both.obs[groupby].isin(classes).to_numpy()].copy()
    label = both.obs[groupby].astype(str) + " (" + both.obs[SOURCE_KEY].astype(str) + ")"
    order = [f"{c} ({s})" for c in classes for s in SOURCES]
    both.obs[key] = pd.Categorical(label, categories=[o for o in order if o in set(label)])
    return both


@doctest_skip("needs a trained model")
@fill_doc
def marker_dotplot(
    real: AnnData,
    synthetic: AnnData,
    groupby: str,
    *,
    n_genes: int = 3,
    method: str = "wilcoxon",
    layer: str | None = None,
    gene_symbols: str | None = None,
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
    **kwargs: Any,
) -> dict[str, Axes] | Any | None:
    """Marker genes of each real class, in the real and the synthetic samples of the class.

    Does a synthetic Liver sample express what marks Liver? The markers are the ``n_genes``
    top genes of each class of ``groupby`` in the real data
    (:func:`scanpy.tl.rank_genes_groups`, each class against the rest; equal scores, common
    when a class separates perfectly, go to the larger log fold change), and
    :func:`scanpy.pl.dotplot` draws them for the real and the synthetic samples of every
    class, in rows "Liver (real)", "Liver (synthetic)", ...: dot colour is the mean value in
    the row's samples, dot size the share of samples above ``expression_cutoff`` (scanpy's
    defaults: 0). Colours are scaled per gene (``standard_scale="var"``, over all rows) unless
    you pass another ``standard_scale``, so the two rows of a class compare directly.

    Everything is computed on copies: the inputs are never written (no
    ``uns["rank_genes_groups"]`` appears in them). Values are used as they are: normalise and
    log-transform counts first, as for scanpy's marker genes.

    Parameters
    ----------
    real, synthetic
        Real and synthetic samples (AnnData, views too) with the same genes (any order) and
        the column ``groupby`` in ``.obs``.
    groupby
        ``.obs`` column with the classes. Synthetic samples of classes the real data lack are
        left out (with a warning).
    n_genes
        Marker genes per class.
    method
        Test of :func:`scanpy.tl.rank_genes_groups` (``"wilcoxon"``, ``"t-test"``, ...).
    layer
        Layer to read in both instead of ``X`` (for the markers and the dots).
    gene_symbols
        ``real.var`` column with the names to show (scanpy's ``gene_symbols``).
    ax
        Axes to draw in (scanpy's ``ax``; default: a new figure).
    show
        Show the figure (default: when no ``ax`` is given and not returning the figure).
    return_fig
        Return scanpy's :class:`~scanpy.pl.DotPlot` (to style it, then ``.show()``).
    **kwargs
        Passed to :func:`scanpy.pl.dotplot` (``standard_scale``, ``cmap``,
        ``expression_cutoff``, ``dendrogram``, ...).

    Returns
    -------
    What :func:`scanpy.pl.dotplot` returns: the :class:`~scanpy.pl.DotPlot` with
    ``return_fig=True``, else a dict of its Axes (``"mainplot_ax"``, ...) when not shown,
    ``None`` when shown.

    Examples
    --------
    >>> synth = sgs.tl.generate(model, 500)
    >>> sgs.pl.marker_dotplot(adata, synth, "tissue", n_genes=2)
    """
    import scanpy as sc

    columns = check_pair(real, synthetic, "marker_dotplot")
    check_groupby(real, synthetic, groupby)
    own = [k for k in _OWN if k in kwargs]
    if own:
        msg = f"marker_dotplot sets {own} itself; pass groupby=/layer= as its own arguments."
        raise TypeError(msg)
    if not isinstance(n_genes, int | np.integer) or isinstance(n_genes, bool) or n_genes < 1:
        msg = f"n_genes must be an integer >= 1, not {n_genes!r}."
        raise ValueError(msg)
    if gene_symbols is not None and gene_symbols not in real.var.columns:
        msg = f"gene_symbols={gene_symbols!r} is not a column of real.var ({list(real.var)})."
        raise KeyError(msg)
    var = real.var[[gene_symbols]] if gene_symbols else pd.DataFrame(index=real.var_names)
    classes = _classes(real.obs[groupby])
    mine = _slim(real, np.arange(real.n_vars), groupby, layer, var)
    markers = _markers(mine, groupby, classes, int(n_genes), method)
    key = f"{groupby} (source)"
    both = _combined(mine, _slim(synthetic, columns, groupby, layer, var), groupby, classes, key)
    if gene_symbols:
        markers = {c: list(both.var.loc[g, gene_symbols]) for c, g in markers.items()}
    if show is None:
        show = not return_fig and ax is None
    kwargs.setdefault("standard_scale", "var")
    return sc.pl.dotplot(both, markers, groupby=key, gene_symbols=gene_symbols, ax=ax,
                         show=show, return_fig=return_fig, **kwargs)  # fmt: skip
