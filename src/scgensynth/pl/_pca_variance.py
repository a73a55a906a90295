"""sgs.pl.pca_variance: cumulative explained variance of real and synthetic data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scgensynth._utils._docs import doctest_skip

from ._docs import fill_doc
from ._palettes import SOURCES, source_colors
from ._utils import finish, new_axes

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _is_result(obj: Any) -> bool:
    return isinstance(obj, Mapping) and "curves" in obj


@doctest_skip("needs a trained model")
@fill_doc
def pca_variance(
    real: AnnData | np.ndarray | Mapping[str, pd.DataFrame],
    synth: AnnData | np.ndarray | None = None,
    *,
    layer: str | None = None,
    obsm: str | None = None,
    thresholds: Sequence[float] = (0.9,),
    max_components: int | None = None,
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Axes | Figure | None:
    """Cumulative explained variance of real and synthetic data, each from its own PCA.

    The curves of :func:`scgensynth.metrics.pca_variance` (the survey's Fig. 4): for
    ``j = 1, 2, ...`` the share of a dataset's variance explained by its first ``j``
    principal components. Mode-collapsed or over-smoothed synthetic data rise faster than
    the real data. Each threshold is drawn as a dotted line, with a marker where each curve
    first reaches it.

    Parameters
    ----------
    real
        Real data (AnnData or samples x genes array), or the output of
        :func:`scgensynth.metrics.pca_variance` (then ``synth`` is not given).
    {synth}
    layer, obsm, max_components
        As for :func:`scgensynth.metrics.pca_variance` (not with a precomputed result).
    thresholds
        Shares of variance to mark (with a precomputed result: those it was computed for).
    {ax}
    {show_return_fig}

    {returns_axes}
    {source_colors}

    Examples
    --------
    >>> synth = sgs.tl.generate(model, 500)
    >>> sgs.pl.pca_variance(adata, synth)
    >>> # or from the metric's output
    >>> sgs.pl.pca_variance(sgs.metrics.pca_variance(adata, synth))
    """
    from scgensynth.metrics import pca_variance as _metric

    if _is_result(real):
        if synth is not None or layer is not None or obsm is not None or max_components:
            msg = (
                "pca_variance got the metric's output: pass it alone, or pass real and synth "
                "data (with layer/obsm/max_components) to compute it here."
            )
            raise ValueError(msg)
        result = real
        adatas: tuple = ()
    else:
        if synth is None:
            msg = (
                "pca_variance needs the real and the synthetic data (pca_variance(real, synth)) "
                "or the output of sgs.metrics.pca_variance."
            )
            raise ValueError(msg)
        result = _metric(
            real, synth, layer=layer, obsm=obsm, thresholds=thresholds,
            max_components=max_components,
        )  # fmt: skip
        adatas = (real, synth)
    curves: pd.DataFrame = result["curves"]
    components: pd.DataFrame | None = result.get("components")
    missing = [s for s in SOURCES if s not in curves.columns]
    if missing:
        msg = f"The curves have no column {missing}; expected the columns {list(SOURCES)}."
        raise ValueError(msg)
    colors = source_colors(*(a for a in adatas if hasattr(a, "obs")))

    fig, ax, ax_given = new_axes(ax, (5, 4))
    x = np.asarray(curves.index, dtype=float)
    for source in SOURCES:
        ax.plot(x, curves[source].to_numpy(dtype=float), color=colors[source], label=source)
    if components is not None:
        for t, row in components.iterrows():
            ax.axhline(float(t), color="grey", lw=0.6, ls=":")
            for source in SOURCES:
                n = row[source]
                if pd.notna(n) and n >= 1:
                    ax.plot([int(n)], [float(curves[source].loc[int(n)])], ls="none",
                            marker="o", color=colors[source])  # fmt: skip
    ax.set_xlabel("principal components")
    ax.set_ylabel("cumulative explained variance")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=x.min() if x.size else 0)
    ax.legend(loc="lower right", fontsize="small")
    return finish(fig, ax, ax_given, show, return_fig)
