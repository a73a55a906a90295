"""sgs.pl.precision_recall: the precision-recall front across generators."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scgensynth._utils._docs import doctest_skip

from ._docs import fill_doc
from ._palettes import palette_colors
from ._utils import check_table, finish, new_axes, place_labels

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_NEEDED = ("model", "metric", "value", "group")
#: marker area of a model's point (points squared)
_MARKER_AREA = 50


def pareto_front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Positions of the points no other point beats on both ``x`` and ``y``, ordered by ``x``.

    Higher is better on both; equal points do not beat each other.
    """
    keep = []
    for i in range(len(x)):
        dominated = (x >= x[i]) & (y >= y[i]) & ((x > x[i]) | (y > y[i]))
        if not dominated.any():
            keep.append(i)
    keep = np.asarray(keep, dtype=int)
    return keep[np.argsort(x[keep], kind="stable")]


@doctest_skip("trains a generator (minutes)")
@fill_doc
def precision_recall(
    table: pd.DataFrame,
    *,
    x: str = "recall",
    y: str = "precision",
    group: str = "all",
    front: bool = True,
    annotate: bool = True,
    palette: Mapping[str, str] | Sequence[str] | None = None,
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Axes | Figure | None:
    """Precision against recall of every generator, with the front of the best ones.

    The survey's Fig. 5 from the tidy table of :func:`scgensynth.tl.compare_generators` (or
    of several :func:`scgensynth.metrics.evaluate` reports with a ``model`` column): one point
    per model. Where a model has several values of a metric (the tables of several seeds
    concatenated), the point is their mean with standard-deviation error bars. The front
    joins the models no other model beats on both axes.

    Parameters
    ----------
    table
        Tidy table with the columns ``model``, ``metric``, ``value`` and ``group``.
    x, y
        Metrics on the axes (e.g. ``x="coverage", y="density"``); higher is taken as better
        for the front.
    group
        Rows of this ``group`` are drawn (``"all"``: the metrics over all samples).
    front
        Draw the front of the models no other model beats on both metrics.
    annotate
        Write each model's name next to its point; names are placed so that none overlaps
        another (a name set away from its point is joined to it by a thin line).
    palette
        Colours by model name, or a list in the order of the models (default: matplotlib's
        colour cycle).
    {ax}
    {show_return_fig}

    {returns_axes}

    Examples
    --------
    >>> table = sgs.tl.compare_generators(adata, "tissue", models=["wgan", "cvae", "noise"])
    >>> sgs.pl.precision_recall(table)
    """
    check_table(
        table,
        _NEEDED,
        "sgs.tl.compare_generators",
        "the tidy table of sgs.tl.compare_generators (columns model, metric, value, group, ...)",
    )
    stats, models = _model_stats(table, x, y, group)
    colors = palette_colors([str(m) for m in models], palette, "models")
    fig, ax, ax_given = new_axes(ax, (5, 4.5))
    xs = np.array([stats.loc[(m, x), "mean"] for m in models], dtype=float)
    ys = np.array([stats.loc[(m, y), "mean"] for m in models], dtype=float)
    for i, model in enumerate(models):
        _draw_model(ax, model, xs[i], ys[i], stats, x, y, colors[str(model)])
    if front:
        ok = np.isfinite(xs) & np.isfinite(ys)
        idx = np.flatnonzero(ok)[pareto_front(xs[ok], ys[ok])]
        if len(idx):
            ax.plot(xs[idx], ys[idx], color="grey", ls="--", lw=1, zorder=2, label="front")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if {x, y} <= {"precision", "recall", "f1", "coverage"}:
        both = np.r_[xs, ys]
        lo = min(0.0, np.nanmin(both)) if np.isfinite(both).any() else 0.0
        ax.set_xlim(lo, 1.02)
        ax.set_ylim(lo, 1.02)
    ax.legend(loc="best", fontsize="small")
    if annotate:
        place_labels(ax, [str(m) for m in models], xs, ys, marker_size=np.sqrt(_MARKER_AREA))
    return finish(fig, ax, ax_given, show, return_fig)


def _model_stats(
    table: pd.DataFrame, x: str, y: str, group: str
) -> tuple[pd.DataFrame, list[str]]:
    """Mean, standard deviation and count of ``x`` and ``y`` per model; the models with both."""
    rows = table[table["group"].astype(str) == str(group)]
    for metric in (x, y):
        if not (rows["metric"] == metric).any():
            present = sorted(rows["metric"].astype(str).unique())
            msg = (
                f"table has no {metric!r} rows with group={group!r} (metrics there: {present}); "
                "run the comparison with the 'precision_recall' metric or pick x/y."
            )
            raise ValueError(msg)
    rows = rows[rows["metric"].isin([x, y])]
    stats = rows.groupby(["model", "metric"], sort=False, observed=True)["value"].agg(
        ["mean", "std", "count"]
    )
    models = [
        m for m in pd.unique(rows["model"]) if (m, x) in stats.index and (m, y) in stats.index
    ]
    if not models:
        msg = f"No model has both {x!r} and {y!r} values."
        raise ValueError(msg)
    return stats, models


def _draw_model(ax, model, x_mean, y_mean, stats, x, y, color) -> None:
    """One model's point and its error bars where it has several values."""
    xerr = stats.loc[(model, x), "std"] if stats.loc[(model, x), "count"] > 1 else None
    yerr = stats.loc[(model, y), "std"] if stats.loc[(model, y), "count"] > 1 else None
    if xerr is not None or yerr is not None:
        ax.errorbar(x_mean, y_mean, xerr=xerr, yerr=yerr, fmt="none", ecolor=color, lw=1)
    ax.scatter([x_mean], [y_mean], color=color, s=_MARKER_AREA, zorder=3, label=str(model))
