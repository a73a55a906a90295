"""sgs.pl.ranked_genes: the bars and labels of a ranking, scgensynth's or scanpy's."""

from __future__ import annotations

import anndata as ad
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import scanpy as sc

import scgensynth as sgs
from scgensynth.tl._rank import rank_genes_structure

matplotlib.use("Agg")


@pytest.fixture
def ranked():
    """A counterfactual-shaped ranking of 30 genes with known mean differences."""
    rng = np.random.default_rng(0)
    genes = [f"g{i}" for i in range(30)]
    shift = np.linspace(-3, 3, 30)
    diff = shift + rng.normal(scale=0.2, size=(50, 30))
    adata = ad.AnnData(
        np.zeros((2, 30), dtype=np.float32),
        obs=pd.DataFrame({"cancer": ["normal", "tumour"]}, index=["a", "b"]),
        var=pd.DataFrame({"symbol": [f"SYM{i}" for i in range(30)]}, index=genes),
    )
    adata.uns["rank_genes_groups"] = rank_genes_structure(
        {"tumour": diff}, genes, method="counterfactual", groupby="cancer", reference="normal",
        pvalues=False,
    )  # fmt: skip
    return adata


def _bars(ax):
    return [p for p in ax.patches if isinstance(p, matplotlib.patches.Rectangle)]


def test_bars_follow_the_ranking(ranked):
    ax = sgs.pl.ranked_genes(ranked, n_genes=4, show=False)
    df = sc.get.rank_genes_groups_df(ranked, "tumour")
    expected = [*df["names"][:4], *df["names"][-4:]]
    assert expected[:2] == ["g29", "g28"]
    assert expected[-1] == "g0"
    assert [t.get_text() for t in ax.get_yticklabels()] == expected
    bars = _bars(ax)
    assert len(bars) == 8
    widths = np.array([b.get_width() for b in bars])
    lfc = np.r_[df["logfoldchanges"][:4], df["logfoldchanges"][-4:]]
    np.testing.assert_allclose(widths, lfc, rtol=1e-6)
    assert (widths[:4] > 0).all()
    assert (widths[4:] < 0).all()
    # rank 1 on top
    ys = [b.get_y() + b.get_height() / 2 for b in bars]
    assert ax.transData.transform((0, ys[0]))[1] > ax.transData.transform((0, ys[-1]))[1]
    assert ax.get_xlabel() == "mean difference (tumour − normal)"
    assert "tumour vs normal" in ax.get_title()
    # every draw of these genes agrees in sign: said in the title, no one-colour colour bar
    assert ax.figure.axes == [ax]
    assert "all 8 genes drawn: the same sign in 100% of draws" in ax.get_title()
    plt.close("all")


def test_conventions(ranked):
    fig, ax = plt.subplots()
    assert sgs.pl.ranked_genes(ranked, ax=ax) is ax
    assert len(_bars(ax)) == 20
    fig = sgs.pl.ranked_genes(ranked, return_fig=True, gene_symbols="symbol", n_genes=2)
    assert isinstance(fig, matplotlib.figure.Figure)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["SYM29", "SYM28", "SYM1", "SYM0"]
    assert sgs.pl.ranked_genes(ranked, show=True) is None
    plt.close("all")


def test_scanpy_rank_genes_groups_output(pbmc):
    """scanpy's own output (log-normalised PBMCs): no sign agreement, a log2 fold change."""
    groups = ["CD14+ Monocyte", "CD19+ B"]
    sc.tl.rank_genes_groups(
        pbmc, "bulk_labels", groups=groups[:1], reference=groups[1], method="t-test"
    )
    ax = sgs.pl.ranked_genes(pbmc, n_genes=5, show=False)
    df = sc.get.rank_genes_groups_df(pbmc, groups[0])
    assert [t.get_text() for t in ax.get_yticklabels()] == [*df["names"][:5], *df["names"][-5:]]
    bars = _bars(ax)
    assert len(bars) == 10
    lfc = np.r_[df["logfoldchanges"][:5], df["logfoldchanges"][-5:]]
    np.testing.assert_allclose([b.get_width() for b in bars], lfc, rtol=1e-6)
    assert ax.get_xlabel() == "log2 fold change (CD14+ Monocyte vs CD19+ B)"
    assert len(ax.figure.axes) == 1  # no colour bar without sign agreement
    # several groups: pick one
    sc.tl.rank_genes_groups(pbmc, "bulk_labels", groups=groups, method="t-test", key_added="two")
    with pytest.raises(ValueError, match=r"2 groups \['CD14\+ Monocyte', 'CD19\+ B'\]"):
        sgs.pl.ranked_genes(pbmc, key="two", show=False)
    ax = sgs.pl.ranked_genes(pbmc, "CD19+ B", key="two", n_genes=3, show=False)
    assert ax.get_title().startswith("CD19+ B vs rest")
    plt.close("all")


def test_errors(ranked):
    with pytest.raises(KeyError, match=r"No gene ranking in adata.uns\['perturbation'\]"):
        sgs.pl.ranked_genes(ranked, key="perturbation")
    with pytest.raises(ValueError, match=r"'Lung' is not in the ranking; it has \['tumour'\]"):
        sgs.pl.ranked_genes(ranked, "Lung")
    with pytest.raises(ValueError, match="n_genes"):
        sgs.pl.ranked_genes(ranked, n_genes=0)
    with pytest.raises(KeyError, match="gene_symbols"):
        sgs.pl.ranked_genes(ranked, gene_symbols="hgnc")
    plt.close("all")


def test_a_colour_bar_only_when_the_shares_vary(gaussian_model):
    """A Lung -> Liver counterfactual of the Gaussian generator trained on GTEx."""
    cf = sgs.tl.counterfactual(gaussian_model, "tissue", "Lung", "Liver", n_obs=50)
    df = sc.get.rank_genes_groups_df(cf, "Liver")
    share = np.asarray(cf.uns["rank_genes_groups"]["sign_agreement"]["Liver"], dtype=float)
    # the ends of the ranking: every draw agrees in sign, a colour bar would show one colour
    assert (share[:10] == 1).all()
    assert (share[-10:] == 1).all()
    ax = sgs.pl.ranked_genes(cf, n_genes=10, show=False)
    assert ax.figure.axes == [ax]  # no colour bar ...
    assert ax.get_title().endswith("all 20 genes drawn: the same sign in 100% of draws")
    colours = [matplotlib.colors.to_hex(b.get_facecolor()) for b in _bars(ax)]
    lfc = np.r_[df["logfoldchanges"][:10], df["logfoldchanges"][-10:]]
    assert colours == ["#b2182b" if v >= 0 else "#2166ac" for v in lfc]  # ... sign colours
    plt.close("all")
    # the whole ranking: shares from ~0.5 to 1, coloured and explained by the colour bar
    n = cf.n_vars // 2
    assert np.ptp(share) > 0.3
    ax = sgs.pl.ranked_genes(cf, n_genes=n, show=False)
    (bar,) = [a for a in ax.figure.axes if a is not ax]
    assert bar.get_ylabel() == "share of draws with the same sign"
    assert "same sign in" not in ax.get_title()
    order = np.r_[np.arange(n), np.arange(cf.n_vars - n, cf.n_vars)]
    expected = plt.get_cmap("viridis")(matplotlib.colors.Normalize(0.5, 1.0)(share[order]))
    np.testing.assert_allclose([b.get_facecolor() for b in _bars(ax)], expected, atol=1e-6)
    plt.close("all")
