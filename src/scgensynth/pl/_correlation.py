"""sgs.pl.correlation: gene-gene correlation heatmaps of real and synthetic data."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy.cluster.hierarchy import dendrogram, leaves_list, linkage
from scipy.spatial.distance import squareform

from scgensynth._utils._docs import doctest_skip

from ._docs import fill_doc
from ._utils import finish, new_axes_row

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: font size (points) of the gene names: readable, never shrunk (labels are thinned instead)
_LABEL_SIZE = 7.0
#: space a gene name needs along the axis, in multiples of its font size
_LABEL_PITCH = 1.25


def _check_inputs(real: AnnData, synth: AnnData, genes, n_genes: int) -> None:
    for name, data in (("real", real), ("synth", synth)):
        if not hasattr(data, "var_names"):
            msg = (
                f"correlation matches genes by name: {name} must be an AnnData, "
                f"not {type(data).__name__}."
            )
            raise TypeError(msg)
    if genes is None and (
        not isinstance(n_genes, int | np.integer) or isinstance(n_genes, bool) or n_genes < 3
    ):
        msg = f"n_genes must be an integer >= 3, got {n_genes!r}."
        raise ValueError(msg)


def _draw_dendrogram(ax: Axes, Z: np.ndarray, n_genes: int) -> None:
    """The real genes' dendrogram, its leaves level with the heatmap's rows."""
    dendrogram(Z, ax=ax, orientation="left", color_threshold=0,
               above_threshold_color="black", no_labels=True)  # fmt: skip
    # the leaves sit at 5, 15, ... from the bottom: align them with the heatmap's rows
    ax.set_ylim(10 * n_genes, 0)
    ax.set_label("dendrogram")


def _label_step(ax: Axes, n: int) -> int:
    """Every how many genes a name fits at :data:`_LABEL_SIZE` on the heatmap's sides.

    Read from the heatmap's place in the figure (after the axes appended beside it).
    """
    fig = ax.figure
    locator = ax.get_axes_locator()
    box = locator(ax, None) if locator is not None else ax.get_position()
    width, height = fig.get_size_inches()
    side = 72.0 * min(box.width * width, box.height * height)  # points
    return max(1, int(np.ceil(n * _LABEL_SIZE * _LABEL_PITCH / max(side, 1e-9))))


def _gene_ticks(ax: Axes, names: list[str], right: bool) -> int:
    """Gene names on both axes of a heatmap, every ``step``-th one where not all fit."""
    step = _label_step(ax, len(names))
    ticks = np.arange(0, len(names), step)
    labels = [names[i] for i in ticks]
    ax.set_xticks(ticks, labels, rotation=90, fontsize=_LABEL_SIZE)
    ax.set_yticks(ticks, labels, fontsize=_LABEL_SIZE)
    if right:  # the real panel has its dendrogram on the left
        ax.yaxis.tick_right()
    return step


def _evaluate_genes(real: AnnData) -> int:
    """Genes :func:`scgensynth.metrics.evaluate`'s correlation score uses (its default)."""
    from scgensynth.metrics import correlation_score

    default = inspect.signature(correlation_score).parameters["max_genes"].default
    return real.n_vars if default is None else min(int(default), real.n_vars)


def _score_note(method: str, n_genes: int, n_evaluate: int, n_vars: int) -> str:
    """Why the score in the title is not :func:`scgensynth.metrics.evaluate`'s."""
    statistic = "Pearson" if method == "pearson" else "Spearman"
    which = (
        f"all {n_vars} real genes" if n_evaluate == n_vars
        else f"the {n_evaluate} most variable real genes"
    )  # fmt: skip
    return (
        f"Score: Pearson r of the upper triangles of the two {statistic} matrices, over these "
        f"{n_genes} genes.\nsgs.metrics.evaluate's correlation_score: the same statistic on "
        f"Pearson matrices over {which}, so the two differ."
    )


@doctest_skip("needs a trained model")
@fill_doc
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

    The matrices and the score are those of :func:`scgensynth.metrics.correlation_matrices`;
    genes with zero variance in either dataset have no correlation and are left out (with a
    warning).

    The score differs from the ``correlation_score`` row of
    :func:`scgensynth.metrics.evaluate`, and a note under the plot says so: both are the
    Pearson correlation between the upper triangles of a real and a synthetic gene-gene
    matrix, but here over the genes drawn (``genes``, or the ``n_genes`` most variable real
    genes: 50 by default) and, with ``method="spearman"``, between Spearman matrices, while
    ``evaluate`` uses Pearson matrices over the 2,000 most variable real genes (all genes of
    a smaller set).

    Gene names are written on both axes of both panels at a readable size (7 pt); when
    there are more genes than names fit beside a panel, every second (third, ...) gene is
    named, and the axis label says so.

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
    {show_return_fig}

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

    from scgensynth.metrics import correlation_matrices

    _check_inputs(real, synth, genes, n_genes)
    matrices = correlation_matrices(
        real, synth, genes, max_genes=n_genes, layer=layer, method=method
    )
    c_real = matrices["real"].to_numpy()
    c_synth = matrices["synthetic"].to_numpy()
    names = [str(g) for g in matrices["real"].index]
    Z = None
    order = np.arange(len(names))
    if cluster:
        # complete linkage on 1 - r, as s_dend (the condensed form is the upper triangle)
        Z = linkage(np.clip(squareform(1.0 - c_real, checks=False), 0.0, 2.0), method="complete")
        order = leaves_list(Z)
    ordered = [names[i] for i in order]

    fig, axes, ax_given = new_axes_row(
        ax, 2, (10, 5.2), "correlation draws two Axes, real and synthetic (or None: a new figure)"
    )
    ax_real, ax_synth = axes
    dividers = [make_axes_locatable(a) for a in axes]
    # the same appended axes on both panels, so both heatmaps keep the same size
    lefts = [d.append_axes("left", size="18%", pad=0.05) for d in dividers]
    rights = [d.append_axes("right", size="4%", pad=0.08) for d in dividers]
    if Z is not None:
        _draw_dendrogram(lefts[0], Z, len(names))
    for extra in (*lefts, rights[0]):
        extra.set_axis_off()
    images = []
    n = len(names)
    for a, C, title in ((ax_real, c_real, "real"), (ax_synth, c_synth, "synthetic")):
        im = a.imshow(C[np.ix_(order, order)], cmap=cmap, vmin=-1, vmax=1,
                      interpolation="nearest", aspect="auto")  # fmt: skip
        images.append(im)
        step = _gene_ticks(a, ordered, right=a is ax_real)
        a.set_xlabel(f"{n} genes" + (f" (one name in {step})" if step > 1 else ""))
        a.set_title(title)
    what = "correlation score" if method == "pearson" else "Spearman correlation score"
    ax_synth.set_title(f"synthetic ({what} {matrices['score']:.3f})")
    fig.colorbar(images[1], cax=rights[1], label=f"{method} correlation")
    ax_real.annotate(
        _score_note(method, n, _evaluate_genes(real), real.n_vars), (0, 0),
        xycoords=("axes fraction", ax_real.xaxis.label), xytext=(0, -6),
        textcoords="offset points", ha="left", va="top", fontsize="small", color="0.3",
    )  # fmt: skip
    return finish(fig, [ax_real, ax_synth], ax_given, show, return_fig)
