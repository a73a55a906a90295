"""What every plot shares: scanpy's ``ax`` / ``show`` / ``return_fig`` contract, table checks."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes, bool]:
    """``(figure, axes, whether ax was given)``: the given Axes, or a new figure's."""
    if ax is not None:
        return ax.figure, ax, True
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax, False


def new_axes_row(
    ax: Axes | Sequence[Axes] | None, n: int, figsize: tuple[float, float], why: str
) -> tuple[Figure, list[Axes], bool]:
    """``(figure, n Axes, whether ax was given)``: the given Axes, or a new row of ``n``.

    ``ax`` is one Axes (when ``n`` is 1) or a sequence of ``n``; ``why`` completes the error
    message when it is not.
    """
    if ax is None:
        fig, axes = plt.subplots(1, n, figsize=figsize, squeeze=False)
        return fig, list(axes[0]), False
    if isinstance(ax, Sequence | np.ndarray):
        axes = list(np.ravel(np.asarray(ax, dtype=object)))
    else:
        axes = [ax]
    if len(axes) != n:
        msg = f"ax must be {n} Axes here, got {len(axes)}: {why}."
        raise ValueError(msg)
    return axes[0].figure, axes, True


def finish(fig: Figure, ax: Any, ax_given: bool, show: bool | None, return_fig: bool):
    """Return the Figure (``return_fig``), show it (``None``), or return the Axes.

    ``show=None`` shows the figure when the plot made its own and does not return it.
    """
    if show is None:
        show = not return_fig and not ax_given
    if return_fig:
        return fig
    if show:
        plt.show()
        return None
    return ax


def check_table(table: Any, columns: Sequence[str], source: str, expected: str) -> None:
    """``table`` must be a DataFrame with ``columns``: the output of ``source``.

    ``expected`` describes that output in the error message (e.g. its columns).
    """
    if not isinstance(table, pd.DataFrame):
        msg = f"table must be a DataFrame (from {source}), not {type(table)}."
        raise TypeError(msg)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        msg = f"table has no column {missing}; pass {expected}."
        raise ValueError(msg)


#: where a label may go around its point, nearest first: (direction, horizontal alignment,
#: vertical alignment), tried at each distance of :data:`_DISTANCES` (points)
_DIRECTIONS = (
    ((1, 1), "left", "bottom"), ((1, -1), "left", "top"), ((-1, 1), "right", "bottom"),
    ((-1, -1), "right", "top"), ((1, 0), "left", "center"), ((-1, 0), "right", "center"),
    ((0, 1), "center", "bottom"), ((0, -1), "center", "top"),
)  # fmt: skip
_DISTANCES = (4, 12, 22, 34, 48, 64)


def _covered(box: np.ndarray, others: np.ndarray) -> float:
    """Area of ``box`` (x0, y0, x1, y1) covered by the rows of ``others``, summed."""
    if not len(others):
        return 0.0
    w = np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0])
    h = np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1])
    return float((np.clip(w, 0, None) * np.clip(h, 0, None)).sum())


def place_labels(
    ax: Axes,
    labels: Sequence[str],
    xs: np.ndarray,
    ys: np.ndarray,
    *,
    marker_size: float,
    points: np.ndarray | None = None,
    fontsize: str | float = "small",
) -> list:
    """Write ``labels`` beside their points ``(xs, ys)`` so that no two labels overlap.

    Labels are placed one after the other, each at the nearest place around its point (8
    directions at growing distances) where it covers no label placed before, no point and
    stays inside the axes; where there is none, where it covers least (another label
    counting most). A label set further than the nearest ring is joined to its point by a
    thin grey line. Sizes are measured in the figure as it is when called (limits first
    settled), so call it after everything that moves the limits.

    Parameters
    ----------
    ax
        Axes holding the points (data coordinates).
    labels, xs, ys
        One label per point; points that are not finite get no label.
    marker_size
        Diameter of the drawn markers, in points.
    points
        All drawn points (n x 2, data coordinates) a label should avoid (default: the
        labelled ones).
    fontsize
        Font size of the labels.

    Returns
    -------
    The annotations drawn, in the order of ``labels`` (finite points only).
    """
    ax.get_xlim(), ax.get_ylim()  # settle autoscaled limits and the aspect before measuring
    ax.apply_aspect()
    px = ax.figure.dpi / 72.0  # pixels per point
    frame = ax.get_window_extent()
    frame = np.array([frame.x0, frame.y0, frame.x1, frame.y1])
    radius = marker_size / 2 * px + 1
    xy = np.c_[xs, ys] if points is None else np.asarray(points, dtype=float)
    centres = ax.transData.transform(xy[np.isfinite(xy).all(axis=1)])
    dots = np.c_[centres - radius, centres + radius]
    placed = np.zeros((0, 4))
    style = {"textcoords": "offset points", "fontsize": fontsize, "zorder": 4}
    out = []
    for label, x, y in zip(labels, xs, ys):
        if not np.isfinite([x, y]).all():
            continue
        probe = ax.annotate(str(label), (x, y), xytext=(0, 0), **style)
        best = None
        for d, ((dx, dy), ha, va) in itertools.product(_DISTANCES, _DIRECTIONS):
            probe.xyann = (d * dx, d * dy)
            probe.set(ha=ha, va=va)
            b = probe.get_window_extent().padded(1)
            box = np.array([b.x0, b.y0, b.x1, b.y1])
            outside = b.width * b.height - _covered(box, frame[None])
            cost = 10 * _covered(box, placed) + _covered(box, dots) + outside
            if best is None or cost < best[0]:
                best = (cost, d, probe.xyann, ha, va, box)
            if cost == 0:
                break
        probe.remove()
        _, d, offset, ha, va, box = best
        line = None
        if d > _DISTANCES[0]:  # away from its point: a thin line says whose label it is
            line = {"arrowstyle": "-", "color": "grey", "lw": 0.6, "shrinkA": 0,
                    "shrinkB": radius / px}  # fmt: skip
        out.append(ax.annotate(str(label), (x, y), xytext=offset, ha=ha, va=va,
                               arrowprops=line, **style))  # fmt: skip
        placed = np.vstack([placed, box])
    return out


def check_pair(real: AnnData, synthetic: AnnData, what: str) -> np.ndarray:
    """Positions of ``real``'s genes in ``synthetic``; a clear error unless the genes match.

    Both must be AnnData (views too) with the same genes (``var_names``), in any order.
    """
    for name, data in (("real", real), ("synthetic", synthetic)):
        if not (hasattr(data, "var_names") and hasattr(data, "obs")):
            msg = f"{what} takes AnnData objects: {name} is a {type(data).__name__}."
            raise TypeError(msg)
        if data.n_obs < 2:
            msg = f"{what} needs at least 2 samples in {name}, which has {data.n_obs}."
            raise ValueError(msg)
    if real.var_names.has_duplicates or synthetic.var_names.has_duplicates:
        msg = "var_names must be unique in real and synthetic (see .var_names_make_unique())."
        raise ValueError(msg)
    only_real = real.var_names.difference(synthetic.var_names)
    only_synth = synthetic.var_names.difference(real.var_names)
    if len(only_real) or len(only_synth):
        msg = (
            f"{what} compares the same genes: {len(only_real)} genes of real are not in "
            f"synthetic (e.g. {list(only_real[:3])}) and {len(only_synth)} of synthetic are "
            f"not in real (e.g. {list(only_synth[:3])}). Subset both to the shared genes: "
            "genes = real.var_names.intersection(synthetic.var_names); "
            "real[:, genes], synthetic[:, genes]."
        )
        raise ValueError(msg)
    return synthetic.var_names.get_indexer(real.var_names)


def check_groupby(real: AnnData, synthetic: AnnData, groupby: str) -> None:
    """``groupby`` must be an ``.obs`` column of both."""
    for name, data in (("real", real), ("synthetic", synthetic)):
        if groupby not in data.obs.columns:
            msg = (
                f"groupby={groupby!r} is not a column of {name}.obs (columns: "
                f"{list(data.obs.columns)}); pass a column both datasets have."
            )
            raise KeyError(msg)
