"""sgs.pl.correlation: gene-gene correlation heatmaps of real and synthetic data."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from scipy.cluster.hierarchy import dendrogram, leaves_list, linkage
from scipy.stats import rankdata

from ._utils import finish

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

_METHODS = ("pearson", "spearman")
#: gene names are written on the axes up to this many genes
_MAX_LABELS = 60


def _select_genes(real: AnnData, synth: AnnData, genes, n_genes: int, layer, get_values):
    """The genes to draw (names), checked against both datasets."""
    for name, data in (("real", real), ("synth", synth)):
        if not hasattr(data, "var_names"):
            msg = (
                f"correlation matches genes by name: {name} must be an AnnData, "
                f"not {type(data).__name__}."
            )
            raise TypeError(msg)
    if genes is None:
        if not isinstance(n_genes, int | np.integer) or isinstance(n_genes, bool) or n_genes < 3:
            msg = f"n_genes must be an integer >= 3, got {n_genes!r}."
            raise ValueError(msg)
        values = get_values(real, layer=layer, name="real")
        variance = values.var(axis=0)
        top = np.argsort(-variance, kind="stable")[: min(n_genes, real.n_vars)]
        names = [str(g) for g in real.var_names[top]]
    else:
        names = [genes] if isinstance(genes, str) else [str(g) for g in genes]
        if len(set(names)) != len(names):
            msg = "genes lists a gene more than once."
            raise ValueError(msg)
        missing_real = [g for g in names if g not in real.var_names]
        if missing_real:
            msg = (
                f"{len(missing_real)} of the requested genes are not in real.var_names "
                f"(e.g. {missing_real[:3]})."
            )
            raise ValueError(msg)
    missing = [g for g in names if g not in synth.var_names]
    if missing:
        msg = (
            f"{len(missing)} of the genes to draw are not in synth.var_names (e.g. "
            f"{missing[:3]}); genes are matched by name. Pass genes= present in both, e.g. "
            "real.var_names.intersection(synth.var_names)."
        )
        raise ValueError(msg)
    return names


def _corr(X: np.ndarray, method: str) -> np.ndarray:
    from scgensynth.metrics._correlation import _correlation_matrix

    if method == "spearman":
        X = rankdata(X, axis=0)
    return _correlation_matrix(X)


def _axes_pair(ax) -> tuple[Figure, list[Axes], bool]:
    if ax is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 5.2))
        return fig, list(axes), False
    if hasattr(ax, "figure") and not isinstance(ax, Sequence | np.ndarray):
        msg = (
            "correlation draws two panels (real and synthetic): pass ax as a sequence of two "
            "Axes, or None for a new figure."
        )
        raise ValueError(msg)
    axes = list(np.ravel(np.asarray(ax, dtype=object)))
    if len(axes) != 2:
        msg = f"ax must hold two Axes (real, synthetic), got {len(axes)}."
        raise ValueError(msg)
    return axes[0].figure, axes, True


def correlation(
    real: AnnData,
    synth: AnnData,
    genes: Sequence[str] | None = None,
    *,
    n_genes: int = 50,
    layer: str | None = None,
    method: str = "pearson",
    cluster: bool = True,
    cmap: str = "RdBu_r",
    ax: Sequence[Axes] | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> list[Axes] | Figure | None:
    """Gene-gene correlation heatmaps of real and synthetic data, side by side.

    The view of Viñas et al. (2022, Fig. 2): the gene-gene correlation matrix of each
    dataset, both with the genes in the order of the real data's hierarchical clustering
    (complete linkage on ``1 - r``, as :func:`scgensynth.metrics.s_dend`; its dendrogram is
    drawn beside the real panel), so that blocks of co-expressed genes can be compared. The
    title of the synthetic panel gives the correlation score between the two matrices (the
    Pearson correlation of their upper triangles, :func:`scgensynth.metrics.correlation_score`
    on these genes).

    Genes with zero variance in either dataset have no correlation and are left out (with a
    warning).

    Parameters
    ----------
    real, synth
        Real and synthetic data; genes are matched by ``var_names``.
    genes
        Genes to draw (default: the ``n_genes`` most variable genes of ``real``).
    n_genes
        Number of genes when ``genes`` is not given.
    layer
        Layer to read in both instead of ``X``.
    method
        ``"pearson"`` or ``"spearman"`` (Pearson correlation of the ranks).
    cluster
        Order the genes by the clustering of the real correlations and draw its dendrogram;
        ``False`` keeps the order of ``genes`` (default: most variable first).
    cmap
        Colour map of the heatmaps (from -1 to 1).
    ax
        Two Axes (real, synthetic) to draw on (default: a new figure). The dendrogram and the
        colour bar are drawn in axes appended to them.
    show
        Show the figure (default: when no ``ax`` is given and not returning the figure).
    return_fig
        Return the Figure instead of the Axes.

    Returns
    -------
    The two heatmap Axes ``[real, synthetic]`` (or the Figure with ``return_fig=True``);
    ``None`` when shown. Each holds one image, the correlation matrix in the drawn order.

    Examples
    --------
    >>> synth = sgs.tl.generate(model, 500)
    >>> sgs.pl.correlation(adata, synth, n_genes=40)
    """
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    from scgensynth.metrics._correlation import _constant_genes, _pearson, _upper
    from scgensynth.metrics._utils import get_values

    if method not in _METHODS:
        msg = f"method must be one of {list(_METHODS)}, not {method!r}."
        raise ValueError(msg)
    names = _select_genes(real, synth, genes, n_genes, layer, get_values)
    r = get_values(real[:, names], layer=layer, name="real")
    s = get_values(synth[:, names], layer=layer, name="synth")
    constant = _constant_genes(r) | _constant_genes(s)
    if constant.any():
        dropped = [g for g, c in zip(names, constant) if c]
        logger.warning(
            "correlation: left out %d genes with zero variance in real or synthetic data "
            "(e.g. %s); their correlations are undefined.",
            len(dropped),
            dropped[:3],
        )
        keep = ~constant
        names = [g for g, k in zip(names, keep) if k]
        r, s = r[:, keep], s[:, keep]
    if len(names) < 3:
        msg = (
            f"correlation needs at least 3 genes that vary in both datasets; {len(names)} do. "
            "Pass more genes."
        )
        raise ValueError(msg)
    c_real, c_synth = _corr(r, method), _corr(s, method)
    score = _pearson(_upper(c_real), _upper(c_synth), "correlation")
    Z = None
    order = np.arange(len(names))
    if cluster:
        Z = linkage(np.clip(1.0 - _upper(c_real), 0.0, 2.0), method="complete")
        order = leaves_list(Z)
    ordered = [names[i] for i in order]

    fig, axes, ax_given = _axes_pair(ax)
    ax_real, ax_synth = axes
    dividers = [make_axes_locatable(a) for a in axes]
    # the same appended axes on both panels, so both heatmaps keep the same size
    lefts = [d.append_axes("left", size="18%", pad=0.05) for d in dividers]
    rights = [d.append_axes("right", size="4%", pad=0.08) for d in dividers]
    if Z is not None:
        dendrogram(Z, ax=lefts[0], orientation="left", color_threshold=0,
                   above_threshold_color="black", no_labels=True)  # fmt: skip
        # the leaves sit at 5, 15, ... from the bottom: align them with the heatmap's rows
        lefts[0].set_ylim(10 * len(names), 0)
        lefts[0].set_label("dendrogram")
    for extra in (*lefts, rights[0]):
        extra.set_axis_off()
    images = []
    n = len(names)
    for a, C, title in ((ax_real, c_real, "real"), (ax_synth, c_synth, "synthetic")):
        im = a.imshow(C[np.ix_(order, order)], cmap=cmap, vmin=-1, vmax=1,
                      interpolation="nearest", aspect="auto")  # fmt: skip
        images.append(im)
        a.set_xticks([])
        a.set_yticks([])
        if n <= _MAX_LABELS:
            a.set_xticks(range(n), ordered, rotation=90, fontsize="xx-small")
            if a is ax_synth:  # the real panel has the dendrogram on that side
                a.set_yticks(range(n), ordered, fontsize="xx-small")
        a.set_xlabel(f"{n} genes")
        a.set_title(title)
    what = "correlation score" if method == "pearson" else "Spearman correlation score"
    ax_synth.set_title(f"synthetic ({what} {score:.3f})")
    fig.colorbar(images[1], cax=rights[1], label=f"{method} correlation")
    return finish(fig, [ax_real, ax_synth], ax_given, show, return_fig)
