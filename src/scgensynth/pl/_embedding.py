"""sgs.pl.embedding: real and synthetic samples in one embedding, overlaid or side by side."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import anndata as ad
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from scipy import sparse

from scgensynth._utils._docs import doctest_skip

from ._docs import fill_doc
from ._palettes import SOURCE_KEY, SOURCES, category_colors, source_colors, uns_palette
from ._utils import finish, new_axes_row

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

_BASES = ("umap", "pca", "tsne")
#: real samples are filled circles, synthetic ones hollow circles (edge in the sample's colour),
#: whatever colours the groups get
_FILLED = {"real": True, "synthetic": False}
#: edge width of the hollow markers, in points
_EDGE = 0.8


def _obsm_key(adata: AnnData, basis: str) -> str | None:
    for key in (f"X_{basis}", basis):
        if key in adata.obsm:
            return key
    return None


def _slim(adata: AnnData, genes: pd.Index, layer: str | None, keep: list[str]) -> AnnData:
    """A new AnnData with the values of ``genes`` and the ``keep`` columns of ``.obs`` only."""
    if layer is not None and layer not in adata.layers:
        msg = f"layer={layer!r} is not in .layers (layers: {list(adata.layers)})."
        raise KeyError(msg)
    sub = adata[:, genes]
    X = sub.layers[layer] if layer is not None else sub.X
    X = X.copy() if sparse.issparse(X) else np.array(X, dtype=np.float32)
    obs = pd.DataFrame(
        {k: adata.obs[k].astype(object).to_numpy() for k in keep}, index=adata.obs_names.copy()
    )
    return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=genes.copy()))


def _combine(real: AnnData, synth: AnnData, layer: str | None, keep: list[str]) -> AnnData:
    genes = real.var_names.intersection(synth.var_names, sort=False)
    if len(genes) == 0:
        msg = "real and synth share no gene (var_names); both must describe the same genes."
        raise ValueError(msg)
    if len(genes) < max(real.n_vars, synth.n_vars):
        logger.warning(
            "embedding: real (%d genes) and synth (%d genes) share %d genes; using those.",
            real.n_vars, synth.n_vars, len(genes),
        )  # fmt: skip
    both = ad.concat(
        {s: _slim(a, genes, layer, keep) for s, a in zip(SOURCES, (real, synth))},
        label=SOURCE_KEY,
        index_unique="-",
    )
    return both


def _compute(both: AnnData, basis: str, n_pcs: int, seed: int) -> str:
    import scanpy as sc

    n_comps = max(1, min(n_pcs, both.n_obs - 1, both.n_vars - 1))
    sc.pp.pca(both, n_comps=n_comps, random_state=seed)
    if basis == "umap":
        sc.pp.neighbors(both, n_pcs=n_comps, random_state=seed)
        with warnings.catch_warnings():
            # well-separated classes (26 tissues) give a graph in pieces; UMAP's spectral
            # start then warns, yet lays the pieces out fine: nothing for the user to do
            warnings.filterwarnings("ignore", message="Graph is not fully connected")
            sc.tl.umap(both, random_state=seed)
    elif basis == "tsne":
        sc.tl.tsne(both, n_pcs=n_comps, random_state=seed)
    return f"X_{basis}"


def _colour_values(both: AnnData, color: str, origin: list[AnnData]):
    """``("categorical", labels, {label: colour})`` or ``("continuous", values, None)``."""
    if color in both.obs:
        values = both.obs[color]
    elif color in both.var_names:
        col = both[:, color].X
        col = col.toarray() if sparse.issparse(col) else np.asarray(col)
        return "continuous", col.ravel().astype(float), None
    else:
        msg = f"color={color!r} is neither an .obs column nor a gene of both datasets."
        raise KeyError(msg)
    numeric = pd.api.types.is_numeric_dtype(values) and not isinstance(
        values.dtype, pd.CategoricalDtype
    )
    if numeric:
        return "continuous", values.to_numpy(dtype=float), None
    labels = values.astype(str).where(values.notna(), "NA").to_numpy()
    order: list[str] = []
    for a in origin:  # categories in the inputs' order, then any others
        if color in a.obs and isinstance(a.obs[color].dtype, pd.CategoricalDtype):
            order += [str(c) for c in a.obs[color].cat.categories if str(c) not in order]
    order += [c for c in pd.unique(labels) if c not in order]
    order = [c for c in order if c in set(labels)]
    return "categorical", labels, category_colors(order, uns_palette(origin, color))


@doctest_skip("needs a trained model")
@fill_doc
def embedding(
    real: AnnData,
    synth: AnnData | None = None,
    basis: str = "umap",
    color: str | None = None,
    *,
    side_by_side: bool = False,
    layer: str | None = None,
    n_pcs: int = 50,
    size: float | None = None,
    alpha: float = 0.8,
    seed: int = 0,
    ax: Axes | Sequence[Axes] | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Axes | list[Axes] | Figure | None:
    """Real and synthetic samples in one embedding, overlaid or side by side.

    The survey's Fig. 1 (Viñas et al., Fig. 4): the embedding is computed on the real and the
    synthetic samples together (:func:`anndata.concat` with ``label="sgs_source"``, then
    :func:`scanpy.pp.pca`, and :func:`scanpy.pp.neighbors` + :func:`scanpy.tl.umap` or
    :func:`scanpy.tl.tsne`), so both live in the same coordinates. A combined AnnData
    (``anndata.concat({"real": ..., "synthetic": ...}, label="sgs_source")``) whose ``.obsm``
    already holds the basis is
    drawn as it is. The inputs are never modified: the embedding is computed on a copy, and
    ``uns[f"{color}_colors"]`` palettes are read, never written.
    Values are used as they are (normalise / log-transform both datasets beforehand).

    Parameters
    ----------
    real
        Real samples, or a combined AnnData with ``obs["sgs_source"]`` (``"real"`` /
        ``"synthetic"``) when ``synth`` is not given.
    {synth}
    basis
        ``"umap"``, ``"pca"`` or ``"tsne"`` (a combined AnnData may also name any ``.obsm``
        key it holds, with or without the ``X_`` prefix).
    color
        ``.obs`` column (in both datasets) or gene to colour by; categories use
        ``uns[f"{color}_colors"]`` where an input has it. Default: colour by source
        (``uns["sgs_source_colors"]`` where present). Whatever the colours, real samples
        are filled circles and synthetic samples hollow circles (edged in their colour);
        overlaid, a legend above the axes shows the two.
    side_by_side
        Draw real and synthetic in two panels with the same limits, instead of overlaid.
    layer
        Layer to compute the embedding from instead of ``.X``.
    n_pcs
        Principal components computed (and used for neighbours / t-SNE).
    size
        Marker size (default: from the number of samples).
    alpha
        Marker opacity.
    seed
        Random state of the PCA, neighbours, UMAP and t-SNE.
    ax
        Axes to draw on (two Axes with ``side_by_side``; default: a new figure).
    {show_return_fig}

    Returns
    -------
    The Axes (a list of two with ``side_by_side``), or the Figure with ``return_fig=True``;
    ``None`` when shown.

    Examples
    --------
    >>> synth = sgs.tl.generate(model, 500)
    >>> sgs.pl.embedding(adata, synth, basis="umap", color="tissue")
    >>> sgs.pl.embedding(adata, synth, basis="pca", side_by_side=True)
    """
    origin, key, color, keep = _check_inputs(real, synth, basis, color)
    both, key = _embedded(real, synth, basis, key, layer, keep, n_pcs, seed)
    coords = np.asarray(both.obsm[key])[:, :2]
    source = both.obs[SOURCE_KEY].astype(str).to_numpy()
    if color is None:
        kind, values, colors = "source", source, source_colors(*origin)
    else:
        kind, values, colors = _colour_values(both, color, origin)

    n_panels = 2 if side_by_side else 1
    fig, axes, ax_given = new_axes_row(
        ax, n_panels, (4.5 * n_panels + 1.5, 4.5), f"side_by_side={side_by_side}"
    )
    if size is None:
        size = float(np.clip(12000 / max(len(source), 1), 3, 60))
    style = {"s": size, "alpha": alpha, "linewidths": 0}
    scatter = None
    for panel, panel_ax in enumerate(axes):
        for s in SOURCES if not side_by_side else (SOURCES[panel],):
            drawn = _draw_source(panel_ax, coords, source == s, s, kind, values, colors, style)
            scatter = drawn if drawn is not None else scatter
        name = basis.upper() if basis in _BASES else basis
        panel_ax.set_xlabel(f"{name}1")
        panel_ax.set_ylabel(f"{name}2")
        panel_ax.set_xticks([])
        panel_ax.set_yticks([])
        if side_by_side:
            panel_ax.set_title(SOURCES[panel])
    if side_by_side:
        _same_limits(axes, coords)
    _legend(fig, axes, kind, colors, color, side_by_side, scatter)
    return finish(fig, axes if side_by_side else axes[0], ax_given, show, return_fig)


def _check_inputs(
    real: AnnData, synth: AnnData | None, basis: str, color: str | None
) -> tuple[list[AnnData], str | None, str | None, list[str]]:
    """The inputs, the ``.obsm`` key to draw as it is, the colour and the columns to keep."""
    if synth is None and SOURCE_KEY not in real.obs:
        msg = (
            "embedding needs the real and the synthetic data (embedding(real, synth)) or "
            f"one combined AnnData with obs[{SOURCE_KEY!r}] (anndata.concat(..., "
            f"label={SOURCE_KEY!r}))."
        )
        raise ValueError(msg)
    origin = [real] if synth is None else [real, synth]
    key = _obsm_key(real, basis) if synth is None else None
    if key is None and basis not in _BASES:
        msg = (
            f"basis must be one of {_BASES} (or an .obsm key of a combined AnnData), "
            f"not {basis!r}."
        )
        raise ValueError(msg)
    if color == SOURCE_KEY:
        color = None
    keep = [color] if color is not None and all(color in a.obs for a in origin) else []
    if color is not None and not keep and any(color in a.obs for a in origin):
        msg = f"color={color!r} must be an .obs column of both real and synth."
        raise KeyError(msg)
    return origin, key, color, keep


def _embedded(
    real: AnnData,
    synth: AnnData | None,
    basis: str,
    key: str | None,
    layer: str | None,
    keep: list[str],
    n_pcs: int,
    seed: int,
) -> tuple[AnnData, str]:
    """Real and synthetic samples in one AnnData, and the ``.obsm`` key of their embedding."""
    if synth is not None:
        both = _combine(real, synth, layer, keep)
        return both, _compute(both, basis, n_pcs, seed)
    sources = real.obs[SOURCE_KEY].astype(str)
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown:
        msg = f"obs[{SOURCE_KEY!r}] must hold 'real' / 'synthetic', also has {unknown}."
        raise ValueError(msg)
    if key is not None:
        return real, key  # read only
    both = _slim(real, real.var_names, layer, [SOURCE_KEY, *keep])
    return both, _compute(both, basis, n_pcs, seed)


def _marker_style(source: str, color, style: dict) -> dict:
    """Scatter keywords of one source: filled (real) or hollow (synthetic) circles."""
    if _FILLED[source]:
        return {**style, "marker": "o", "color": color}
    return {**style, "marker": "o", "facecolors": "none", "edgecolors": color,
            "linewidths": _EDGE}  # fmt: skip


def _draw_source(ax, coords, mask, source: str, kind: str, values, colors, style: dict):
    """Draw the samples of one source; the collection with the colour scale, if any."""
    if kind == "source":
        ax.scatter(*coords[mask].T, label=source, **_marker_style(source, colors[source], style))
        return None
    if kind == "categorical":
        for cat, col in colors.items():
            sel = mask & (values == cat)
            if sel.any():
                ax.scatter(*coords[sel].T, **_marker_style(source, col, style))
        return None
    drawn = ax.scatter(
        *coords[mask].T, c=values[mask], marker="o", cmap="viridis",
        vmin=np.nanmin(values), vmax=np.nanmax(values), **style,
    )  # fmt: skip
    if not _FILLED[source]:  # edges take the colour scale, faces stay empty
        drawn.set_facecolor("none")
        drawn.set_edgecolor(None)
        drawn.set_linewidth(_EDGE)
    return drawn


def _source_handle(source: str, color: str = "black") -> Line2D:
    """Legend handle of a source: a filled or a hollow circle."""
    face = color if _FILLED[source] else "none"
    return Line2D([], [], ls="none", marker="o", markersize=6, markerfacecolor=face,
                  markeredgecolor=color, markeredgewidth=1.0)  # fmt: skip


def _same_limits(axes: list[Axes], coords: np.ndarray) -> None:
    """The same limits on every panel: those of all the samples, with a margin."""
    pad = 0.05 * (coords.max(axis=0) - coords.min(axis=0))
    for panel_ax in axes:
        panel_ax.set_xlim(coords[:, 0].min() - pad[0], coords[:, 0].max() + pad[0])
        panel_ax.set_ylim(coords[:, 1].min() - pad[1], coords[:, 1].max() + pad[1])


def _legend(fig, axes, kind: str, colors, color, side_by_side: bool, scatter) -> None:
    """Legend of the sources (marker fill) and of the colours, or a colour bar.

    Colour by source: one legend, each source in its colour and fill. Otherwise the colours
    (categories, or a colour bar) and, overlaid, a second legend above the axes with a black
    filled circle for real and a hollow one for synthetic samples.
    """
    last = axes[-1]
    if kind == "source":
        if not side_by_side:
            last.legend([_source_handle(s, colors[s]) for s in SOURCES], list(SOURCES),
                        loc="center left", bbox_to_anchor=(1, 0.5), fontsize="small",
                        frameon=False)  # fmt: skip
        return
    key = None
    if not side_by_side:
        key = last.legend([_source_handle(s) for s in SOURCES], list(SOURCES),
                          loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2,
                          fontsize="small", frameon=False)  # fmt: skip
        key.set_label("sources")
    if kind == "categorical":
        handles = [Line2D([], [], ls="none", marker="o", color=col) for col in colors.values()]
        labels = list(colors)
        ncol = 1 if len(labels) <= 14 else 2 if len(labels) <= 30 else 3  # as scanpy
        last.legend(handles, labels, loc="center left", bbox_to_anchor=(1, 0.5),
                    fontsize="small", frameon=False, title=color, ncol=ncol)  # fmt: skip
        if key is not None:
            last.add_artist(key)  # a second legend replaces the first: keep both
            key.set_clip_on(False)  # outside the axes: drawn, and counted by tight layouts
    if kind == "continuous" and scatter is not None:
        bar = fig.colorbar(scatter, ax=axes, pad=0.02)
        bar.set_label(color)
