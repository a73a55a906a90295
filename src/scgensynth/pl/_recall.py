"""sgs.pl.recall_by_group: per-group precision and recall, blind spots highlighted."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scgensynth._utils._deprecation import renamed_arguments
from scgensynth._utils._docs import doctest_skip

from ._docs import fill_doc
from ._palettes import default_colors
from ._utils import finish, new_axes

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

#: colour of the groups with recall 0
BLIND_SPOT_COLOR = "tab:red"


def _from_tidy(table: pd.DataFrame, model: str | None) -> pd.DataFrame:
    """Per-group recall rows of an ``evaluate`` / ``compare_generators`` table."""
    if "model" in table.columns:
        models = list(pd.unique(table["model"]))
        if model is None:
            if len(models) != 1:
                msg = f"The table compares several models ({models}); choose one with model=..."
                raise ValueError(msg)
            model = models[0]
        elif model not in models:
            msg = f"model {model!r} is not in the table (models: {models})."
            raise ValueError(msg)
        table = table[table["model"] == model]
    elif model is not None:
        msg = "model= selects rows of a compare_generators table; this table has no 'model'."
        raise ValueError(msg)
    rows = table[(table["metric"] == "recall") & (table["group"] != "all")]
    if rows.empty:
        msg = (
            "The table has no per-group recall rows (metric 'recall' with a group other than "
            "'all'): run evaluate / compare_generators with labels_key and the "
            "'precision_recall' metric."
        )
        raise ValueError(msg)
    out = pd.DataFrame(
        {"precision": np.nan, "recall": rows["value"].to_numpy(dtype=float)},
        index=pd.Index(rows["group"].astype(str).to_numpy(), name="group"),
    )
    return out


def _table(real, synth, labels_key, k, layer, obsm, n_components, model) -> pd.DataFrame:
    """Precision and recall per group (precision NaN where the source has none)."""
    if isinstance(real, pd.DataFrame):
        if synth is not None or labels_key is not None:
            msg = (
                "recall_by_group got a table: pass it alone, or pass real and synthetic data "
                "with labels_key to compute it here."
            )
            raise ValueError(msg)
        if {"metric", "value", "group"} <= set(real.columns):
            return _from_tidy(real, model)
        if "recall" not in real.columns:
            msg = (
                "The table has neither a 'recall' column (sgs.metrics.precision_recall with "
                "labels_key) nor the columns metric/value/group (sgs.metrics.evaluate, "
                "sgs.tl.compare_generators)."
            )
            raise ValueError(msg)
        frame = real.copy()
        if "precision" not in frame.columns:
            frame["precision"] = np.nan
        return frame
    if model is not None:
        msg = "model= selects rows of a compare_generators table; not used with data."
        raise ValueError(msg)
    if synth is None or labels_key is None:
        msg = (
            "recall_by_group needs real and synthetic data and labels_key "
            "(recall_by_group(real, synth, 'tissue')), or a table of "
            "sgs.metrics.precision_recall(..., labels_key=...), sgs.metrics.evaluate or "
            "sgs.tl.compare_generators."
        )
        raise ValueError(msg)
    from scgensynth.metrics import precision_recall

    return precision_recall(
        real, synth, k=k, labels_key=labels_key, layer=layer, obsm=obsm, n_components=n_components
    )


@doctest_skip("needs a trained model")
@renamed_arguments({"groupby": "labels_key"})
@fill_doc
def recall_by_group(
    real: AnnData | np.ndarray | pd.DataFrame,
    synth: AnnData | np.ndarray | None = None,
    labels_key: str | None = None,
    *,
    k: int = 5,
    layer: str | None = None,
    obsm: str | None = None,
    n_components: int | None = None,
    model: str | None = None,
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Axes | Figure | None:
    """Precision and recall within each group; groups with recall 0 highlighted.

    The blind-spot view of the survey (Alsamadi et al.): one row of bars per group of samples
    with the same label (tissue, cancer type, ...), precision and recall of
    :func:`scgensynth.metrics.precision_recall` computed within the group, sorted by recall
    (highest first). Groups the generator misses entirely (recall 0) are written in red on a
    shaded row; the title gives their number and the share of real samples they hold.

    Parameters
    ----------
    real
        Real data (AnnData or samples x genes array), or a table: the DataFrame of
        ``sgs.metrics.precision_recall(..., labels_key=...)``, or the tidy table of
        :func:`scgensynth.metrics.evaluate` / :func:`scgensynth.tl.compare_generators`
        (its per-group ``recall`` rows; these tables hold no per-group precision, so only
        recall is drawn). Then ``synth`` and ``labels_key`` are not given.
    {synth}
    labels_key
        ``.obs`` column present in both holding the labels that define the groups, e.g.
        ``"tissue"``.
    k, layer, obsm, n_components
        As for :func:`scgensynth.metrics.precision_recall` (``k`` is lowered in small
        groups).
    model
        With a :func:`~scgensynth.tl.compare_generators` table of several models: the one to
        draw.
    {ax}
    {show_return_fig}

    {returns_axes}
    Groups without real samples are left out; a group without synthetic samples has no
    precision bar.

    Examples
    --------
    >>> synth = sgs.tl.generate(model, 500)
    >>> sgs.pl.recall_by_group(adata, synth, "tissue")
    >>> # or from a report
    >>> sgs.pl.recall_by_group(sgs.metrics.evaluate(adata, synth, labels_key="tissue"))
    """
    frame = _table(real, synth, labels_key, k, layer, obsm, n_components, model)
    if "n_real" in frame.columns:
        empty = frame["n_real"] == 0
        if empty.any():
            logger.info(
                "recall_by_group: left out %d groups without real samples: %s",
                int(empty.sum()), list(frame.index[empty]),
            )  # fmt: skip
        frame = frame[~empty]
    frame = frame[frame["recall"].notna()]
    if frame.empty:
        msg = "No group has a recall value to draw."
        raise ValueError(msg)
    frame = frame.assign(_p=frame["precision"].fillna(-1.0))
    frame = frame.sort_values(["recall", "_p"], ascending=False, kind="stable")
    groups = [str(g) for g in frame.index]
    recall = frame["recall"].to_numpy(dtype=float)
    precision = frame["precision"].to_numpy(dtype=float)
    zero = recall == 0
    has_precision = bool(np.isfinite(precision).any())

    n = len(groups)
    fig, ax, ax_given = new_axes(ax, (6, 1.0 + 0.28 * n))
    y = np.arange(n)
    colors = default_colors(2)
    height = 0.4 if has_precision else 0.7
    if has_precision:
        ax.barh(y - height / 2, precision, height, color=colors[0], label="precision")
        ax.barh(y + height / 2, recall, height, color=colors[1], label="recall")
    else:
        ax.barh(y, recall, height, color=colors[1], label="recall")
    for i in np.flatnonzero(zero):
        ax.axhspan(i - 0.5, i + 0.5, color=BLIND_SPOT_COLOR, alpha=0.12, lw=0)
    ax.set_yticks(y, groups)
    for label, is_zero in zip(ax.get_yticklabels(), zero):
        if is_zero:
            label.set_color(BLIND_SPOT_COLOR)
            label.set_fontweight("bold")
    ax.set_ylim(n - 0.5, -0.5)  # the first group on top
    ax.set_xlim(0, 1.05)
    ax.set_xlabel("precision / recall within the group" if has_precision else "recall")
    if "n_real" in frame.columns:
        n_real = frame["n_real"].to_numpy(dtype=float)
        sample_share = float(n_real[zero].sum() / n_real.sum())
        ax.set_title(
            f"recall 0 in {int(zero.sum())} of {n} groups ({sample_share:.0%} of real samples)"
        )
    else:
        ax.set_title(f"recall 0 in {int(zero.sum())} of {n} groups")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return finish(fig, ax, ax_given, show, return_fig)
