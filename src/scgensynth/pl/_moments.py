"""sgs.pl.gene_moments: per-gene mean and variance, real against synthetic."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scgensynth._utils._anndata import get_matrix, iter_row_chunks
from scgensynth._utils._docs import doctest_skip

from ._docs import fill_doc
from ._palettes import category_colors, uns_palette
from ._utils import check_groupby, check_pair, finish, new_axes_row, place_labels

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

#: the two panels: statistic and its name on the axes
_STATS = (("mean", "mean"), ("var", "variance"))
#: scalings of :func:`scgensynth.pp.detect_scaling` whose values span orders of magnitude
_WIDE_SCALES = ("counts", "log1p")


def _moments(X, rows: np.ndarray | None, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-gene mean and sample variance (``ddof=1``) of ``rows`` (all: ``None``)."""
    n, shift, total, squares = 0, None, 0.0, 0.0
    for block in iter_row_chunks(X, rows=rows):
        block = block[:, columns]
        if shift is None:  # deviations from a first estimate: no cancellation
            shift = block.mean(axis=0)
        d = block - shift
        n += d.shape[0]
        total = total + d.sum(axis=0)
        squares = squares + (d * d).sum(axis=0)
    mean = total / n
    var = (squares - n * mean**2) / max(n - 1, 1)
    return shift + mean, np.maximum(var, 0.0)


def _class_rows(adata: AnnData, groupby: str | None) -> dict[str, np.ndarray | None]:
    """Row positions of each class (one class ``""`` of all rows without ``groupby``)."""
    if groupby is None:
        return {"": None}
    labels = adata.obs[groupby]
    order = (
        [str(c) for c in labels.cat.categories]
        if isinstance(labels.dtype, pd.CategoricalDtype)
        else sorted(map(str, pd.unique(labels.dropna())))
    )  # fmt: skip
    codes = labels.astype(str).where(labels.notna(), None).to_numpy()
    return {c: np.flatnonzero(codes == c) for c in order}


def moments_table(
    real: AnnData, synthetic: AnnData, columns: np.ndarray, groupby: str | None, layer
) -> pd.DataFrame:
    """Per gene (and class): mean and variance in real and in synthetic data.

    Columns ``gene``, ``group``, ``mean_real``, ``mean_synthetic``, ``var_real``,
    ``var_synthetic``; classes with fewer than 2 samples in either set are left out.
    """
    X_real, X_synth = get_matrix(real, layer), get_matrix(synthetic, layer)
    rows_real, rows_synth = _class_rows(real, groupby), _class_rows(synthetic, groupby)
    shared = [c for c in rows_real if c in rows_synth]
    small = [
        c for c in shared
        if rows_real[c] is not None and min(len(rows_real[c]), len(rows_synth[c])) < 2
    ]  # fmt: skip
    dropped = sorted(set(rows_real) ^ set(rows_synth)) + small
    if dropped:
        logger.warning(
            "gene_moments: left out %d classes of %r not in both datasets or with fewer than "
            "2 samples in one (e.g. %s).", len(dropped), groupby, dropped[:3],
        )  # fmt: skip
    frames = []
    genes = np.asarray(real.var_names)
    for c in (c for c in shared if c not in small):
        m_r, v_r = _moments(X_real, rows_real[c], np.arange(len(genes)))
        m_s, v_s = _moments(X_synth, rows_synth[c], columns)
        frames.append(pd.DataFrame({"gene": genes, "group": c, "mean_real": m_r,
                                    "mean_synthetic": m_s, "var_real": v_r,
                                    "var_synthetic": v_s}))  # fmt: skip
    if not frames:
        msg = (
            f"No class of groupby={groupby!r} has 2 or more samples in both datasets; "
            "check that real and synthetic use the same labels."
        )
        raise ValueError(msg)
    return pd.concat(frames, ignore_index=True)


def _use_log(real: AnnData, layer: str | None, log: bool | str) -> bool:
    if isinstance(log, str):
        if log != "auto":
            msg = f"log must be True, False or 'auto', not {log!r}."
            raise ValueError(msg)
        from scgensynth.pp import detect_scaling

        return detect_scaling(real, layer=layer) in _WIDE_SCALES
    return bool(log)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


@doctest_skip("needs a trained model")
@fill_doc
def gene_moments(
    real: AnnData,
    synthetic: AnnData,
    *,
    groupby: str | None = None,
    layer: str | None = None,
    log: bool | str = "auto",
    n_labels: int = 5,
    gene_symbols: str | None = None,
    ax: Sequence[Axes] | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> list[Axes] | Figure | None:
    """Per-gene mean and variance of the synthetic data against the real data's.

    Two panels, one point per gene: its mean (left) and its variance (right) in the real
    data (x) and in the synthetic data (y), with the identity line. A generator that keeps
    each gene's level and spread puts the points on the line. Each panel's title gives the
    Pearson correlation of the points, on the plotted scale; the ``n_labels`` genes furthest
    from the line (on that scale) are named.

    With ``groupby``, the moments are computed within each class (e.g. within each tissue):
    one point per gene and class, coloured by class, and the correlation is over all of
    them. Class-conditional generators must get each class right, which pooled moments can
    hide. Classes that are not in both datasets, or have fewer than 2 samples in one, are
    left out with a warning.

    Parameters
    ----------
    real, synthetic
        Real and synthetic samples (AnnData, views too) with the same genes (any order);
        they are only read.
    groupby
        ``.obs`` column of both to compute the moments within (default: all samples).
    layer
        Layer to read in both instead of ``X``.
    log
        Plot ``log10(1 + value)`` of the means and variances; ``"auto"``: when the real
        values look like counts or unlogged TPM (:func:`scgensynth.pp.detect_scaling`
        answers ``"counts"`` or ``"log1p"``), whose moments span orders of magnitude.
    n_labels
        Genes named in each panel (0: none).
    gene_symbols
        ``real.var`` column with the names to write (default: ``var_names``).
    ax
        Two Axes (mean, variance) to draw on (default: a new figure).
    {show_return_fig}

    Returns
    -------
    The two Axes ``[mean, variance]`` (or the Figure with ``return_fig=True``); ``None``
    when shown.

    Examples
    --------
    >>> synth = sgs.tl.generate(model, 500)
    >>> sgs.pl.gene_moments(adata, synth)
    >>> sgs.pl.gene_moments(adata, synth, groupby="tissue")
    """
    columns = check_pair(real, synthetic, "gene_moments")
    if groupby is not None:
        check_groupby(real, synthetic, groupby)
    if gene_symbols is not None and gene_symbols not in real.var.columns:
        msg = f"gene_symbols={gene_symbols!r} is not a column of real.var ({list(real.var)})."
        raise KeyError(msg)
    n_labels = int(n_labels)
    table = moments_table(real, synthetic, columns, groupby, layer)
    logged = _use_log(real, layer, log)
    names = real.var[gene_symbols].astype(str) if gene_symbols else real.var_names.to_series()
    table["label"] = names.to_numpy()[real.var_names.get_indexer(table["gene"])]
    if groupby is not None:
        table["label"] += " (" + table["group"] + ")"
    fig, axes, ax_given = new_axes_row(
        ax, 2, (10.5 if groupby else 9, 4.5), "gene_moments draws the means and the variances"
    )
    colors = None
    if groupby is not None:
        groups = list(pd.unique(table["group"]))
        colors = category_colors(groups, uns_palette([real, synthetic], groupby))
    for panel, (stat, what) in zip(axes, _STATS):
        x, y = table[f"{stat}_real"].to_numpy(), table[f"{stat}_synthetic"].to_numpy()
        if logged:
            x, y = np.log10(1 + x), np.log10(1 + y)
        _draw_panel(panel, x, y, table, colors, n_labels)
        scale = f"log10(1 + {what})" if logged else what
        panel.set_xlabel(f"real: {scale}")
        panel.set_ylabel(f"synthetic: {scale}")
        within = f" within {groupby}" if groupby else ""
        panel.set_title(f"gene {what}{within} (Pearson r = {_pearson(x, y):.3f})")
    if colors is not None:
        _class_legend(axes[-1], colors, groupby)
    return finish(fig, axes, ax_given, show, return_fig)


def _draw_panel(ax: Axes, x, y, table: pd.DataFrame, colors, n_labels: int) -> None:
    """The points, the identity line and the names of the genes furthest from it."""
    size = float(np.clip(4000 / max(len(x), 1), 4, 30))
    if colors is None:
        ax.scatter(x, y, s=size, alpha=0.7, linewidths=0, color="C0", label="genes")
    else:
        groups = table["group"].to_numpy()
        for group, color in colors.items():
            sel = groups == group
            ax.scatter(x[sel], y[sel], s=size, alpha=0.7, linewidths=0, color=color,
                       label=group)  # fmt: skip
    ok = np.isfinite(x) & np.isfinite(y)
    lo = float(min(x[ok].min(), y[ok].min())) if ok.any() else 0.0
    hi = float(max(x[ok].max(), y[ok].max())) if ok.any() else 1.0
    pad = 0.04 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="grey", lw=0.8, ls="--",
            zorder=0, label="identity")  # fmt: skip
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal", adjustable="box")
    if n_labels > 0 and ok.any():
        off = np.where(ok, np.abs(y - x), -np.inf)
        top = np.argsort(-off, kind="stable")[: min(n_labels, int(ok.sum()))]
        labels = table["label"].to_numpy()[top]
        place_labels(ax, labels, x[top], y[top], marker_size=np.sqrt(size),
                     points=np.c_[x, y], fontsize="x-small")  # fmt: skip


def _class_legend(ax: Axes, colors: dict[str, str], groupby: str) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls="none", marker="o", color=c) for c in colors.values()]
    ncol = 1 if len(colors) <= 14 else 2 if len(colors) <= 30 else 3  # as scanpy
    ax.legend(handles, list(colors), title=groupby, loc="center left", bbox_to_anchor=(1, 0.5),
              fontsize="small", frameon=False, ncol=ncol)  # fmt: skip
