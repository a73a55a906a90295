"""Colours of the new plots: ``.uns[f"{key}_colors"]`` where it exists, matplotlib's cycle else."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import pandas as pd

from scgensynth._utils._keys import SOURCE_KEY

if TYPE_CHECKING:
    from anndata import AnnData

#: the values of the ``.obs[SOURCE_KEY]`` column of combined real + synthetic data
SOURCES = ("real", "synthetic")


def default_colors(n: int) -> list[str]:
    """``n`` distinct colours: matplotlib's cycle, or scanpy's longer palettes (as scanpy).

    Up to the cycle's length (10 by default) its colours; then scanpy's ``default_20``,
    ``default_28`` or ``default_102`` (repeated beyond 102).
    """
    cycle = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    if n > len(cycle):
        from scanpy.plotting import palettes

        for palette in (palettes.default_20, palettes.default_28, palettes.default_102):
            if n <= len(palette):
                break
        cycle = list(palette)
    return [cycle[i % len(cycle)] for i in range(n)]


def uns_palette(adatas: Iterable[AnnData | None], key: str) -> dict[str, str]:
    """``{category: colour}`` of ``obs[key]`` from ``uns[f"{key}_colors"]`` (first that fits).

    A palette is used only when ``obs[key]`` is categorical and the palette has one colour
    per category, as scanpy writes it. Nothing is written.
    """
    out: dict[str, str] = {}
    for adata in adatas:
        if adata is None or key not in adata.obs or f"{key}_colors" not in adata.uns:
            continue
        values = adata.obs[key]
        colors = list(adata.uns[f"{key}_colors"])
        if isinstance(values.dtype, pd.CategoricalDtype) and len(colors) == len(
            values.cat.categories
        ):
            for cat, col in zip(values.cat.categories, colors):
                out.setdefault(str(cat), str(col))
    return out


def category_colors(
    categories: Sequence[str], known: dict[str, str] | None = None
) -> dict[str, str]:
    """Colour of every category: ``known`` ones kept, the others from matplotlib's cycle."""
    known = dict(known or {})
    defaults = default_colors(len(categories))
    return {c: known.get(str(c), defaults[i]) for i, c in enumerate(categories)}


def palette_colors(
    keys: Sequence[str], palette: Mapping | Sequence[str] | None, what: str
) -> dict[str, str]:
    """Colour of every key from a plot's ``palette`` argument.

    A mapping gives the colours of the keys it names (the others come from matplotlib's
    cycle), a sequence the colours in the keys' order, ``None`` matplotlib's cycle. ``what``
    names the keys in the error message (e.g. ``"models"``).
    """
    if isinstance(palette, Mapping):
        return category_colors(keys, {str(k): v for k, v in palette.items()})
    if palette is None:
        return category_colors(keys)
    palette = list(palette)
    if len(palette) < len(keys):
        msg = f"palette has {len(palette)} colours for {len(keys)} {what}."
        raise ValueError(msg)
    return {k: palette[i] for i, k in enumerate(keys)}


def source_colors(*adatas: AnnData | None) -> dict[str, str]:
    """Colours of ``"real"`` and ``"synthetic"`` (``uns["sgs_source_colors"]`` when present)."""
    return category_colors(SOURCES, uns_palette(adatas, SOURCE_KEY))
