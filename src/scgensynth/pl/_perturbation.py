"""TSPG's Fig. 2: a sample, its perturbation, the perturbed sample and the target's mean."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm

from scgensynth._utils._docs import doctest_skip

from ._docs import fill_doc
from ._utils import finish, new_axes

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

#: the heatmap's columns, left to right
COLUMNS = ("sample", "perturbation", "perturbed", "target mean")


def _dense_row(X, i: int) -> np.ndarray:
    row = X[i]
    if hasattr(row, "toarray"):
        row = row.toarray()
    return np.asarray(row, dtype=np.float64).ravel()


def _sample_position(perturbed: AnnData, sample: int | str) -> int:
    if isinstance(sample, str):
        if sample not in perturbed.obs_names:
            msg = (
                f"sample={sample!r} is not an obs name of the perturbed AnnData (e.g. "
                f"{perturbed.obs_names[:3].tolist()}); pass an obs name or a position."
            )
            raise KeyError(msg)
        return int(perturbed.obs_names.get_loc(sample))
    if isinstance(sample, bool) or not isinstance(sample, int | np.integer):
        msg = f"sample must be a position (int) or an obs name (str), not {sample!r}."
        raise TypeError(msg)
    if not -perturbed.n_obs <= int(sample) < perturbed.n_obs:
        msg = f"sample={sample} is out of range for {perturbed.n_obs} perturbed samples."
        raise IndexError(msg)
    return int(sample) % perturbed.n_obs


def _default_genes(perturbed: AnnData, position: int, n_genes: int, key: str) -> list[str]:
    """The most perturbed genes (by |mean perturbation|) of the sample's source class."""
    source = str(perturbed.obs["source"].iloc[position]) if "source" in perturbed.obs else None
    ranking = perturbed.uns.get(key)
    if ranking is not None and source is not None and source in ranking["names"].dtype.names:
        names = np.asarray(ranking["names"][source]).astype(str)
        change = np.abs(np.asarray(ranking["logfoldchanges"][source], dtype=float))
        return names[np.argsort(-change, kind="stable")[:n_genes]].tolist()
    logger.info("No ranking in uns[%r] for this sample's class; using its own largest |p|.", key)
    p = _dense_row(perturbed.layers["perturbation"], position)
    return perturbed.var_names[np.argsort(-np.abs(p), kind="stable")[:n_genes]].tolist()


def _target_mean(
    perturbed: AnnData, genes: list[str], target_mean, reference: AnnData | None
) -> np.ndarray:
    if target_mean is not None:
        if isinstance(target_mean, pd.Series):
            missing = [g for g in genes if g not in target_mean.index]
            if missing:
                msg = f"target_mean has no value for {len(missing)} gene(s) (e.g. {missing[:5]})."
                raise ValueError(msg)
            return target_mean.loc[genes].to_numpy(dtype=float)
        values = np.asarray(target_mean, dtype=float).ravel()
        if values.shape != (perturbed.n_vars,):
            msg = (
                f"target_mean must have one value per gene of the perturbed AnnData "
                f"({perturbed.n_vars}), or be a pandas Series indexed by gene; got shape "
                f"{values.shape}."
            )
            raise ValueError(msg)
        return values[perturbed.var_names.get_indexer(genes)]
    info = perturbed.uns.get("tspg", {})
    if reference is not None:
        labels_key, target = info.get("labels_key"), info.get("target")
        if labels_key is None or labels_key not in reference.obs:
            msg = (
                f"reference has no labels column {labels_key!r} to find the target class "
                "in; pass target_mean=... instead."
            )
            raise KeyError(msg)
        rows = np.flatnonzero(reference.obs[labels_key].astype(str).to_numpy() == str(target))
        if not len(rows):
            msg = f"reference has no samples of the target class {target!r} in {labels_key!r}."
            raise ValueError(msg)
        cols = reference.var_names.get_indexer(genes)
        if (cols < 0).any():
            missing = [g for g, c in zip(genes, cols) if c < 0]
            msg = f"reference lacks {len(missing)} of the genes (e.g. {missing[:5]})."
            raise ValueError(msg)
        X = reference.X[rows][:, cols]
        X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
        return np.asarray(X, dtype=float).mean(0)
    if "target_mean" in perturbed.var:
        return perturbed.var.loc[genes, "target_mean"].to_numpy(dtype=float)
    msg = (
        "No target-class mean: the AnnData has no var['target_mean'] (written by "
        "sgs.tl.perturb); pass reference=<AnnData with the target class> or target_mean=..."
    )
    raise ValueError(msg)


@doctest_skip("needs a trained model")
@fill_doc
def perturbation_heatmap(
    perturbed: AnnData,
    genes: Sequence[str] | None = None,
    *,
    sample: int | str = 0,
    n_genes: int = 20,
    key: str = "rank_genes_groups",
    target_mean: Sequence[float] | pd.Series | None = None,
    reference: AnnData | None = None,
    cmap: str = "viridis",
    cmap_perturbation: str = "RdBu_r",
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Axes | Figure | None:
    """One perturbed sample, gene by gene, as in Fig. 2 of Targonski et al. (2020).

    Four columns for the chosen genes: the original sample ``x``, the perturbation ``p``, the
    perturbed sample ``x + p`` and the mean of the target class. Expression columns share
    ``cmap``; the perturbation has a diverging scale centred at 0.

    Parameters
    ----------
    perturbed
        Output of :func:`scgensynth.tl.perturb`.
    genes
        Genes to show (default: the ``n_genes`` with the largest mean perturbation, up or
        down, in the ranking ``uns[key]`` of the sample's source class).
    sample
        The sample: a position or an obs name.
    n_genes
        Number of genes by default.
    key
        ``uns`` key of the ranking written by :func:`scgensynth.tl.perturb`.
    target_mean
        The target class's mean per gene (one value per gene of ``perturbed``, or a Series
        indexed by gene); default: from ``reference``, else ``perturbed.var["target_mean"]``
        (the model's training data).
    reference
        An AnnData with samples of the target class (labels in the column the perturbation
        used), to compute the target mean from.
    cmap, cmap_perturbation
        Colour maps of the expression columns and of the perturbation.
    {ax}
    {show_return_fig}

    {returns_axes}

    Examples
    --------
    >>> liver = sgs.tl.perturb(adata, model, source="Lung", target="Liver")
    >>> sgs.pl.perturbation_heatmap(liver, sample=0, n_genes=15)
    """
    for layer in ("perturbation", "original"):
        if layer not in perturbed.layers:
            msg = (
                f"The AnnData has no layers[{layer!r}]; pass the output of sgs.tl.perturb "
                "(perturbed samples with their perturbation and originals)."
            )
            raise ValueError(msg)
    position = _sample_position(perturbed, sample)
    if genes is None:
        if int(n_genes) < 1:
            msg = f"n_genes must be >= 1, not {n_genes}."
            raise ValueError(msg)
        genes = _default_genes(perturbed, position, int(n_genes), key)
    else:
        genes = [genes] if isinstance(genes, str) else [str(g) for g in genes]
        missing = [g for g in genes if g not in perturbed.var_names]
        if missing:
            msg = (
                f"{len(missing)} gene(s) are not in the perturbed AnnData (e.g. {missing[:5]}); "
                "a gene-set model's output has only the set's genes."
            )
            raise ValueError(msg)
    cols = perturbed.var_names.get_indexer(genes)
    values = np.column_stack(
        [
            _dense_row(perturbed.layers["original"], position)[cols],
            _dense_row(perturbed.layers["perturbation"], position)[cols],
            _dense_row(perturbed.X, position)[cols],
            _target_mean(perturbed, list(genes), target_mean, reference),
        ]
    )

    fig, ax, ax_given = new_axes(ax, (3.2, 1.2 + 0.28 * len(genes)))
    extent = (-0.5, 3.5, len(genes) - 0.5, -0.5)
    is_p = np.zeros(values.shape, dtype=bool)
    is_p[:, 1] = True
    expr = np.ma.masked_array(values, mask=is_p)
    image = ax.imshow(expr, aspect="auto", cmap=cmap, extent=extent, interpolation="nearest")
    bound = float(np.abs(values[:, 1]).max()) or 1.0
    pert = ax.imshow(
        np.ma.masked_array(values, mask=~is_p),
        aspect="auto",
        cmap=cmap_perturbation,
        norm=TwoSlopeNorm(0.0, -bound, bound),
        extent=extent,
        interpolation="nearest",
    )
    ax.set_xticks(range(4), list(COLUMNS), rotation=30, ha="right")
    ax.set_yticks(range(len(genes)), list(genes))
    ax.set_ylabel("gene")
    obs = perturbed.obs.iloc[position]
    source = obs.get("source", "?")
    target = obs.get("target", perturbed.uns.get("tspg", {}).get("target", "?"))
    ax.set_title(f"{perturbed.obs_names[position]}: {source} → {target}")
    # colour bars in inset axes right of the heatmap, so a given ax keeps its size
    fig.colorbar(pert, cax=ax.inset_axes((1.04, 0.0, 0.05, 1.0)), label="perturbation")
    fig.colorbar(image, cax=ax.inset_axes((1.42, 0.0, 0.05, 1.0)), label="expression")
    return finish(fig, ax, ax_given, show, return_fig)
