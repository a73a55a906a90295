"""sgs.pl.reconstruction_error: REM distributions of real and synthetic samples."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from ._palettes import SOURCES, source_colors
from ._utils import finish, new_axes

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: label of the box pair over all samples
ALL = "all"


def _is_result(obj: Any) -> bool:
    return isinstance(obj, Mapping) and "real" in obj and "synthetic" in obj


def _labels(adata: Any, key: str, name: str, n: int) -> np.ndarray:
    if not hasattr(adata, "obs"):
        msg = (
            f"groupby={key!r} needs AnnData for real and synth; with arrays or the metric's "
            "output, leave groupby=None."
        )
        raise TypeError(msg)
    if key not in adata.obs:
        msg = f"groupby={key!r} is not an .obs column of {name} (columns: {list(adata.obs)})."
        raise KeyError(msg)
    values = adata.obs[key]
    labels = values.astype(str).where(values.notna(), "NA").to_numpy()
    if len(labels) != n:  # pragma: no cover - the metric keeps one error per sample
        msg = f"{name} has {len(labels)} labels for {n} errors."
        raise ValueError(msg)
    return labels


def reconstruction_error(
    real: AnnData | np.ndarray | Mapping[str, Any],
    synth: AnnData | np.ndarray | None = None,
    *,
    groupby: str | None = None,
    n_components: int | float = 2000,
    layer: str | None = None,
    obsm: str | None = None,
    cv: int | None = 5,
    seed: int = 0,
    log: bool = False,
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Axes | Figure | None:
    """Box plots of the reconstruction errors (REM) of real and synthetic samples.

    The blind-spots paper's Fig. 1: the errors of :func:`scgensynth.metrics.reconstruction_error`
    (distance of each sample to the real principal subspace), real next to synthetic, over
    all samples and then per group. Synthetic boxes above the real ones show samples off the
    real subspace (noise, structure the real data lack); boxes below, collapse onto it. The
    title gives the median ratio synthetic / real.

    Parameters
    ----------
    real
        Real data (AnnData or samples x genes array), or the output of
        :func:`scgensynth.metrics.reconstruction_error` (then ``synth`` is not given).
    synth
        Synthetic data, genes matched to ``real`` by name.
    groupby
        ``.obs`` column of both AnnData (e.g. ``"tissue"``): one box pair per group after
        the overall one. Groups are ordered as ``real``'s categories.
    n_components, layer, obsm, cv, seed
        As for :func:`scgensynth.metrics.reconstruction_error` (not with its output).
    log
        Logarithmic y axis.
    ax
        Axes to draw on (default: a new figure).
    show
        Show the figure (default: when no ``ax`` is given and not returning the figure).
    return_fig
        Return the Figure instead of the Axes.

    Returns
    -------
    The Axes (or Figure with ``return_fig=True``); ``None`` when shown.
    Boxes are coloured by ``uns["sgs_source_colors"]`` when an input has one.

    Examples
    --------
    >>> synth = sgs.tl.generate(model, 500)
    >>> sgs.pl.reconstruction_error(adata, synth, groupby="tissue", n_components=0.9)
    """
    from scgensynth.metrics import reconstruction_error as _metric

    if _is_result(real):
        if synth is not None or groupby is not None:
            msg = (
                "reconstruction_error got the metric's output: pass it alone (without synth "
                "or groupby), or pass real and synth data to compute it here."
            )
            raise ValueError(msg)
        result = real
        adatas: tuple = ()
    else:
        if synth is None:
            msg = (
                "reconstruction_error needs the real and the synthetic data "
                "(reconstruction_error(real, synth)) or the output of "
                "sgs.metrics.reconstruction_error."
            )
            raise ValueError(msg)
        if groupby is not None:  # fail before the PCA
            _labels(real, groupby, "real", real.shape[0])
            _labels(synth, groupby, "synth", synth.shape[0])
        result = _metric(
            real, synth, n_components=n_components, layer=layer, obsm=obsm, cv=cv, seed=seed
        )
        adatas = (real, synth)
    errors = {s: np.asarray(result[s], dtype=float) for s in SOURCES}

    groups = [ALL]
    members = {ALL: {s: np.ones(len(errors[s]), dtype=bool) for s in SOURCES}}
    if groupby is not None:
        labels = {
            s: _labels(a, groupby, name, len(errors[s]))
            for s, a, name in zip(SOURCES, adatas, ("real", "synth"))
        }
        values = real.obs[groupby]
        order = (
            [str(c) for c in values.cat.categories]
            if isinstance(values.dtype, pd.CategoricalDtype)
            else []
        )
        seen = set(labels["real"]) | set(labels["synthetic"])
        order = [g for g in order if g in seen]
        order += sorted(seen - set(order))
        for g in order:
            groups.append(g)
            members[g] = {s: labels[s] == g for s in SOURCES}
    colors = source_colors(*(a for a in adatas if hasattr(a, "obs")))

    fig, ax, ax_given = new_axes(ax, (max(4.0, 1.0 + 0.8 * len(groups)), 4))
    width = 0.35
    for i, g in enumerate(groups):
        for j, s in enumerate(SOURCES):
            data = errors[s][members[g][s]]
            if data.size == 0:
                continue
            parts = ax.boxplot(
                [data], positions=[i + (j - 0.5) * (width + 0.05)], widths=width,
                patch_artist=True, manage_ticks=False, flierprops={"markersize": 2},
                medianprops={"color": "black"},
            )  # fmt: skip
            for box in parts["boxes"]:
                box.set_facecolor(colors[s])
                box.set_gid(f"{s}: {g}")  # for tests and callers: which box is which
            for median in parts["medians"]:
                median.set_gid(f"{s}: {g}")
    ax.set_xticks(np.arange(len(groups)))
    tilt = len(groups) > 4
    ax.set_xticklabels(groups, rotation=45 if tilt else 0, ha="right" if tilt else "center")
    ax.set_xlim(-0.6, len(groups) - 0.4)
    if groupby is not None:
        ax.set_xlabel(groupby)
    ax.set_ylabel("reconstruction error")
    if log:
        ax.set_yscale("log")
    ratio = result.get("median_ratio")
    if ratio is not None:
        ax.set_title(f"median ratio synthetic / real: {float(ratio):.2f}")
    ax.legend(
        [Patch(facecolor=colors[s]) for s in SOURCES], list(SOURCES), loc="best", fontsize="small"
    )
    return finish(fig, ax, ax_given, show, return_fig)
