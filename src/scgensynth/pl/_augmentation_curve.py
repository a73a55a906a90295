"""sgs.pl.augmentation_curve: test accuracy against the number of synthetic samples added."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scgensynth._utils._docs import doctest_skip

from ._docs import fill_doc
from ._palettes import palette_colors
from ._utils import check_table, finish, new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_YLABELS = {"accuracy": "test accuracy", "delta": "accuracy gain (ΔAcc)"}


@doctest_skip("needs a trained model")
@fill_doc
def augmentation_curve(
    table: pd.DataFrame,
    *,
    y: str = "accuracy",
    error_bars: bool = True,
    log_x: bool = False,
    palette: Mapping[int, str] | Sequence[str] | None = None,
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Axes | Figure | None:
    """Accuracy against the number of synthetic samples added, one curve per real size.

    The survey's Figs. 2-3 from the table of :func:`scgensynth.metrics.augmentation_gain`:
    for each number of real training samples (``n_real``), the mean test accuracy (or its
    gain ``ΔAcc`` over the real samples alone) against the number of synthetic samples
    added (``n_synth``), with error bars of one standard deviation over the seeds.

    Parameters
    ----------
    table
        Output of :func:`~scgensynth.metrics.augmentation_gain` (columns ``n_real``,
        ``n_synth``, ``accuracy_mean``, ``accuracy_std``, ``delta_mean``, ``delta_std``).
    y
        ``"accuracy"`` (``accuracy_mean``) or ``"delta"`` (``delta_mean``, with a line at 0).
    error_bars
        Draw ± one standard deviation over seeds (none where it is NaN: a single seed).
    log_x
        Symmetric-log x axis (linear up to the smallest positive ``n_synth``), for sizes
        spanning orders of magnitude.
    palette
        Colours by ``n_real``, or a list in increasing ``n_real`` (default: matplotlib's
        colour cycle).
    {ax}
    {show_return_fig}

    {returns_axes}

    Examples
    --------
    >>> table = sgs.metrics.augmentation_gain(train, test, synth, "tissue")
    >>> sgs.pl.augmentation_curve(table)
    >>> sgs.pl.augmentation_curve(table, y="delta")
    """
    if y not in _YLABELS:
        msg = f"y must be 'accuracy' or 'delta', not {y!r}."
        raise ValueError(msg)
    check_table(
        table,
        ["n_real", "n_synth", f"{y}_mean", f"{y}_std"],
        "sgs.metrics.augmentation_gain",
        "the output of sgs.metrics.augmentation_gain (columns n_real, n_synth, accuracy_mean, "
        "accuracy_std, delta_mean, delta_std, n_seeds)",
    )
    if table.empty:
        msg = "table has no rows."
        raise ValueError(msg)
    sizes = sorted(pd.unique(table["n_real"]))
    colors = palette_colors([str(n) for n in sizes], palette, "values of n_real")

    fig, ax, ax_given = new_axes(ax, (5, 4))
    for n in sizes:
        rows = table[table["n_real"] == n].sort_values("n_synth")
        x = rows["n_synth"].to_numpy(dtype=float)
        mean = rows[f"{y}_mean"].to_numpy(dtype=float)
        std = rows[f"{y}_std"].to_numpy(dtype=float)
        yerr = (
            np.where(np.isnan(std), 0.0, std) if error_bars and not np.isnan(std).all() else None
        )
        ax.errorbar(x, mean, yerr=yerr, marker="o", ms=4, capsize=3, color=colors[str(n)],
                    label=f"{n} real")  # fmt: skip
    if y == "delta":
        ax.axhline(0.0, color="grey", lw=0.8, ls=":")
    if log_x:
        positive = table["n_synth"][table["n_synth"] > 0]
        ax.set_xscale("symlog", linthresh=float(positive.min()) if len(positive) else 1.0)
    ax.set_xlabel("synthetic samples added")
    ax.set_ylabel(_YLABELS[y])
    ax.legend(title="training samples", loc="best", fontsize="small")
    return finish(fig, ax, ax_given, show, return_fig)
