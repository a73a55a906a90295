"""sgs.pl.reconstruction_error: REM distributions of real and synthetic samples."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from scgensynth._utils._deprecation import renamed_arguments
from scgensynth._utils._docs import doctest_skip

from ._docs import fill_doc
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


def _labels(adata: Any, key: str, name: str, n_obs: int) -> np.ndarray:
    if not hasattr(adata, "obs"):
        msg = (
            f"labels_key={key!r} needs AnnData for real and synth; with arrays or the "
            "metric's output, leave labels_key=None."
        )
        raise TypeError(msg)
    if key not in adata.obs:
        msg = f"labels_key={key!r} is not an .obs column of {name} (columns: {list(adata.obs)})."
        raise KeyError(msg)
    values = adata.obs[key]
    labels = values.astype(str).where(values.notna(), "NA").to_numpy()
    if len(labels) != n_obs:  # pragma: no cover - the metric keeps one error per sample
        msg = f"{name} has {len(labels)} labels for {n_obs} errors."
        raise ValueError(msg)
    return labels


def _result(real, synth, labels_key: str | None, metric_kwargs: dict[str, Any]):
    """The metric's output, and the AnnData it was computed from (none when it was given)."""
    from scgensynth.metrics import reconstruction_error as _metric

    if _is_result(real):
        if synth is not None or labels_key is not None:
            msg = (
                "reconstruction_error got the metric's output: pass it alone (without synth "
                "or labels_key), or pass real and synth data to compute it here."
            )
            raise ValueError(msg)
        return real, ()
    if synth is None:
        msg = (
            "reconstruction_error needs the real and the synthetic data "
            "(reconstruction_error(real, synth)) or the output of "
            "sgs.metrics.reconstruction_error."
        )
        raise ValueError(msg)
    if labels_key is not None:  # fail before the PCA
        _labels(real, labels_key, "real", real.shape[0])
        _labels(synth, labels_key, "synth", synth.shape[0])
    return _metric(real, synth, **metric_kwargs), (real, synth)


def _groups(real, adatas: tuple, labels_key: str | None, errors: dict[str, np.ndarray]):
    """The box pairs and, for each, the samples of each source in it.

    ``"all"`` first, then one pair per label (in the order of ``real``'s categories).
    """
    groups = [ALL]
    members = {ALL: {s: np.ones(len(errors[s]), dtype=bool) for s in SOURCES}}
    if labels_key is None:
        return groups, members
    labels = {
        s: _labels(a, labels_key, name, len(errors[s]))
        for s, a, name in zip(SOURCES, adatas, ("real", "synth"))
    }
    values = real.obs[labels_key]
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
    return groups, members


def _draw_boxes(ax, groups: list[str], members: dict, errors: dict, colors: dict) -> None:
    """One box per group and source, side by side; each tagged ``"<source>: <group>"``."""
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


@doctest_skip("needs a trained model")
@renamed_arguments({"groupby": "labels_key"})
@fill_doc
def reconstruction_error(
    real: AnnData | np.ndarray | Mapping[str, Any],
    synth: AnnData | np.ndarray | None = None,
    *,
    labels_key: str | None = None,
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
    all samples and then per group of samples with the same label. Synthetic boxes above the
    real ones show samples off the real subspace (noise, structure the real data lack); boxes
    below, collapse onto it. The title gives the median ratio synthetic / real.

    Parameters
    ----------
    real
        Real data (AnnData or samples x genes array), or the output of
        :func:`scgensynth.metrics.reconstruction_error` (then ``synth`` is not given).
    {synth}
    labels_key
        ``.obs`` column of both AnnData (e.g. ``"tissue"``): one box pair per label after
        the overall one. Labels are ordered as ``real``'s categories.
    n_components, layer, obsm, cv, seed
        As for :func:`scgensynth.metrics.reconstruction_error` (not with its output).
    log
        Logarithmic y axis.
    {ax}
    {show_return_fig}

    {returns_axes}
    {source_colors}

    Examples
    --------
    >>> synth = sgs.tl.generate(model, 500)
    >>> sgs.pl.reconstruction_error(adata, synth, labels_key="tissue", n_components=0.9)
    """
    metric_kwargs = {"n_components": n_components, "layer": layer, "obsm": obsm, "cv": cv}
    result, adatas = _result(real, synth, labels_key, {**metric_kwargs, "seed": seed})
    errors = {s: np.asarray(result[s], dtype=float) for s in SOURCES}
    groups, members = _groups(real, adatas, labels_key, errors)
    colors = source_colors(*(a for a in adatas if hasattr(a, "obs")))

    fig, ax, ax_given = new_axes(ax, (max(4.0, 1.0 + 0.8 * len(groups)), 4))
    _draw_boxes(ax, groups, members, errors, colors)
    ax.set_xticks(np.arange(len(groups)))
    tilt = len(groups) > 4
    ax.set_xticklabels(groups, rotation=45 if tilt else 0, ha="right" if tilt else "center")
    ax.set_xlim(-0.6, len(groups) - 0.4)
    if labels_key is not None:
        ax.set_xlabel(labels_key)
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
