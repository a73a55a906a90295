"""What every plot shares: scanpy's ``ax`` / ``show`` / ``return_fig`` contract."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes, bool]:
    """``(figure, axes, whether ax was given)``: the given Axes, or a new figure's."""
    if ax is not None:
        return ax.figure, ax, True
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax, False


def finish(fig: Figure, ax: Axes, ax_given: bool, show: bool | None, return_fig: bool):
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
