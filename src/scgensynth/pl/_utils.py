"""What every plot shares: scanpy's ``ax`` / ``show`` / ``return_fig`` contract, table checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

if TYPE_CHECKING:
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
