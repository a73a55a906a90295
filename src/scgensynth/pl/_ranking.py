"""sgs.pl.ranked_genes: the most increased and decreased genes of a ranking."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import Normalize

from scgensynth._utils._docs import doctest_skip

from ._docs import fill_doc
from ._utils import finish, new_axes

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: colours of increased / decreased genes when the ranking has no sign agreement
_UP, _DOWN = "#b2182b", "#2166ac"
#: methods whose ``logfoldchanges`` hold a mean difference (scgensynth's paired rankings)
_DIFFERENCE_METHODS = ("counterfactual", "tspg")


def _groups(ranking: dict) -> list[str]:
    return list(ranking["names"].dtype.names)


@doctest_skip("needs a trained model")
@fill_doc
def ranked_genes(
    adata: AnnData,
    group: str | None = None,
    *,
    n_genes: int = 10,
    key: str = "rank_genes_groups",
    gene_symbols: str | None = None,
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Axes | Figure | None:
    """Diverging bar chart of the most increased and the most decreased genes of one group.

    Draws the ``n_genes`` first (most increased) and ``n_genes`` last (most decreased) genes
    of a ranking in the structure of :func:`scanpy.tl.rank_genes_groups`, as written by
    :func:`scgensynth.tl.counterfactual`, :func:`scgensynth.tl.perturb` or scanpy itself.
    Genes are listed in rank order from the top; the bar length is ``logfoldchanges`` (for
    scgensynth's rankings the mean difference ``group - reference`` in the data's units; for
    scanpy's, its log2 fold change; its ``scores`` when a method writes no fold changes).
    Bars are coloured by ``sign_agreement`` (the share of draws whose difference has the
    mean's sign, with a colour bar) when the ranking has it and it varies among the genes
    drawn, else red for increased and blue for decreased; when every gene drawn has the
    same share (often 100 % at the ends of a ranking), the title says so instead of a
    colour bar of one colour.

    Parameters
    ----------
    adata
        AnnData with the ranking in ``uns[key]``.
    group
        Group to draw (default: the only group; required when the ranking has several).
    n_genes
        Genes drawn at each end.
    key
        ``uns`` key of the ranking.
    gene_symbols
        ``var`` column with the labels to show instead of the ranking's names.
    {ax}
    {show_return_fig}

    {returns_axes}

    Examples
    --------
    >>> cf = sgs.tl.counterfactual(model, "cancer", reference="normal", target="tumour")
    >>> sgs.pl.ranked_genes(cf, n_genes=15)
    """
    ranking = adata.uns.get(key)
    if ranking is None or "names" not in ranking:
        msg = (
            f"No gene ranking in adata.uns[{key!r}]; run sgs.tl.counterfactual(...), "
            "sgs.tl.perturb(...) or sc.tl.rank_genes_groups(...) first, or pass key=... ."
        )
        raise KeyError(msg)
    group = _pick_group(ranking, group)
    n_genes = int(n_genes)
    if n_genes < 1:
        msg = f"n_genes must be >= 1, not {n_genes}."
        raise ValueError(msg)

    names = np.asarray(ranking["names"][group]).astype(str)
    total = len(names)
    order = np.r_[np.arange(min(n_genes, total)), np.arange(max(n_genes, total - n_genes), total)]
    params = dict(ranking.get("params", {}))
    reference = str(params.get("reference", "rest"))
    method = str(params.get("method", ""))
    values, xlabel = _bar_lengths(ranking, group, reference, method)
    values = values[order]
    labels = _gene_labels(adata, names[order], gene_symbols)

    fig, ax, ax_given = new_axes(ax, (5, 1.0 + 0.25 * len(order)))
    y = np.arange(len(order))
    share = _drawn_shares(ranking, group, order)
    constant = share is not None and _constant(share)
    if share is not None and not constant:
        norm = Normalize(vmin=0.5, vmax=1.0)
        cmap = plt.get_cmap("viridis")
        ax.barh(y, values, color=cmap(norm(share)))
        bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, pad=0.02)
        bar.set_label("share of draws with the same sign")
    else:
        ax.barh(y, values, color=np.where(values >= 0, _UP, _DOWN))
    ax.axvline(0.0, color="black", lw=0.8)
    if len(order) > n_genes and total > 2 * n_genes:
        ax.axhline(n_genes - 0.5, color="grey", lw=0.6, ls=":")  # gap in the ranking
    ax.set_yticks(y)
    ax.set_yticklabels(labels)
    ax.set_ylim(len(order) - 0.5, -0.5)  # rank 1 at the top
    ax.set_xlabel(xlabel)
    title = f"{group} vs {reference}"
    title = f"{title} ({method})" if method else title
    if constant and np.isnan(share).all():
        title += "\nno sign agreement recorded for these genes"
    elif constant:  # a colour bar would show one colour: say it instead
        title += f"\nall {len(order)} genes drawn: the same sign in {share[0]:.0%} of draws"
    ax.set_title(title)
    return finish(fig, ax, ax_given, show, return_fig)


def _drawn_shares(ranking: dict, group: str, order: np.ndarray) -> np.ndarray | None:
    """The drawn genes' ``sign_agreement`` (``None`` when the ranking has none)."""
    agreement = ranking.get("sign_agreement")
    if agreement is None:
        return None
    return np.asarray(agreement[group], dtype=float)[order]


def _constant(share: np.ndarray) -> bool:
    """Whether every drawn gene has the same share (a colour bar would carry nothing)."""
    finite = share[np.isfinite(share)]
    return finite.size == 0 or (finite.size == share.size and bool(np.ptp(finite) < 1e-12))


def _pick_group(ranking: dict, group: str | None) -> str:
    """The group to draw: the one asked for, or the ranking's only one."""
    groups = _groups(ranking)
    if group is None:
        if len(groups) != 1:
            msg = f"The ranking has {len(groups)} groups {groups}; pick one with group=... ."
            raise ValueError(msg)
        group = groups[0]
    group = str(group)
    if group not in groups:
        msg = f"Group {group!r} is not in the ranking; it has {groups}."
        raise ValueError(msg)
    return group


def _bar_lengths(ranking: dict, group: str, reference: str, method: str):
    """Every gene's bar length in the ranking's order, and what it is (the axis label)."""
    if "logfoldchanges" not in ranking:
        values = np.asarray(ranking["scores"][group], dtype=float)
        return values, f"score ({method or 'ranking'})"
    values = np.asarray(ranking["logfoldchanges"][group], dtype=float)
    if "mean_difference" in ranking or method in _DIFFERENCE_METHODS:
        return values, f"mean difference ({group} − {reference})"
    return values, f"log2 fold change ({group} vs {reference})"


def _gene_labels(adata: AnnData, names: np.ndarray, gene_symbols: str | None) -> np.ndarray:
    """The genes' names, or their ``var[gene_symbols]`` labels."""
    if gene_symbols is None:
        return names
    if gene_symbols not in adata.var.columns:
        msg = (
            f"gene_symbols={gene_symbols!r} is not a column of adata.var; it has "
            f"{list(adata.var.columns)}."
        )
        raise KeyError(msg)
    symbols = adata.var[gene_symbols].astype(str)
    return np.array([symbols.get(g, g) for g in names])
