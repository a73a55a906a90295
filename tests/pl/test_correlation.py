from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy.cluster.hierarchy import leaves_list, linkage
from scipy.stats import spearmanr

import scgensynth as sgs


@pytest.fixture
def pair(gtex):
    rng = np.random.default_rng(0)
    synth = gtex.copy()
    synth.X = synth.X + rng.normal(0, 0.5, synth.X.shape).astype(np.float32)
    return gtex, synth


def _top_genes(adata, n):
    var = np.asarray(adata.X, dtype=np.float64).var(axis=0)
    return list(adata.var_names[np.argsort(-var, kind="stable")[:n]])


def _names(ax, axis: str) -> list[str]:
    labels = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [t.get_text() for t in labels]


def test_correlation_heatmaps_are_the_matrices_in_the_real_clustering_order(pair, snapshot):
    real, synth = pair
    snaps = snapshot(real), snapshot(synth)
    fig, axes = plt.subplots(1, 2, figsize=(16, 8))  # room for every name
    out = sgs.pl.correlation(real, synth, n_genes=20, ax=axes, show=False)
    assert out == list(axes)
    genes = _top_genes(real, 20)
    c_real = np.corrcoef(np.asarray(real[:, genes].X, dtype=np.float64), rowvar=False)
    c_synth = np.corrcoef(np.asarray(synth[:, genes].X, dtype=np.float64), rowvar=False)
    iu = np.triu_indices(20, k=1)
    order = leaves_list(linkage(np.clip(1 - c_real[iu], 0, 2), method="complete"))
    ordered = [genes[i] for i in order]
    for ax, C in zip(out, (c_real, c_synth)):
        (image,) = ax.get_images()
        np.testing.assert_allclose(image.get_array(), C[np.ix_(order, order)], atol=1e-6)
        # both panels name every gene on both axes
        assert _names(ax, "x") == ordered
        assert _names(ax, "y") == ordered
        assert image.get_clim() == (-1, 1)
    # the score in the title is the metric's on these genes
    score = sgs.metrics.correlation_score(real[:, genes], synth[:, genes], max_genes=None)
    assert out[0].get_title() == "real"
    assert out[1].get_title() == f"synthetic (correlation score {score:.3f})"
    assert 0.5 < score < 1
    # the dendrogram is drawn beside the real panel: one line per merge
    dendro = [a for a in fig.axes if a.get_label() == "dendrogram"]
    assert len(dendro) == 1
    assert sum(len(c.get_paths()) for c in dendro[0].collections) == 19
    snaps[0].assert_unchanged(real)
    snaps[1].assert_unchanged(synth)
    plt.close(fig)


def test_gene_names_are_readable_on_both_panels_and_thinned_not_shrunk(gtex_pair, overlapping):
    """40 genes of GTEx against the Gaussian generator's samples, in the default figure."""
    real, synth = gtex_pair
    genes = _top_genes(real, 40)
    fig = sgs.pl.correlation(real, synth, n_genes=40, return_fig=True)
    heatmaps = [a for a in fig.axes if a.get_images() and a.get_label() != "<colorbar>"]
    assert len(heatmaps) == 2
    ordered = None
    for ax in heatmaps:
        x, y = _names(ax, "x"), _names(ax, "y")
        assert x == y
        assert 10 <= len(x) < 40  # thinned: not every name fits at a readable size
        assert set(x) <= set(genes)
        ticks = ax.get_xticks()
        step = int(ticks[1] - ticks[0])
        assert np.array_equal(ticks, np.arange(0, 40, step))
        assert ax.get_xlabel() == f"40 genes (one name in {step})"
        for label in (*ax.get_xticklabels(), *ax.get_yticklabels()):
            assert label.get_fontsize() >= 6
        for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
            assert overlapping(labels) == []
        assert ordered is None or x == ordered  # the same genes on both panels
        ordered = x
    # the names sit on the right genes: the drawn matrix's rows follow the real clustering
    c_real = np.corrcoef(np.asarray(real[:, genes].X, dtype=np.float64), rowvar=False)
    iu = np.triu_indices(40, k=1)
    order = leaves_list(linkage(np.clip(1 - c_real[iu], 0, 2), method="complete"))
    assert ordered == [genes[i] for i in order][::step]
    # the real panel names its rows on the right (its dendrogram is on the left)
    assert heatmaps[0].yaxis.get_ticks_position() == "right"
    plt.close(fig)


def test_the_plot_says_why_its_score_is_not_evaluates(gtex_pair):
    real, synth = gtex_pair
    axes = sgs.pl.correlation(real, synth, n_genes=40, show=False)
    title_score = axes[1].get_title().split()[-1].rstrip(")")
    full = sgs.metrics.correlation_score(real, synth)  # what evaluate reports
    assert title_score != f"{full:.3f}"  # the two do differ here (0.991 and 0.986) ...
    (note,) = [t.get_text() for t in axes[0].texts if "evaluate" in t.get_text()]
    # ... and the note says what each computes: which genes, which statistic
    assert "Pearson r of the upper triangles of the two Pearson matrices" in note
    assert "over these 40 genes" in note
    assert f"over all {real.n_vars} real genes" in note
    axes = sgs.pl.correlation(real, synth, n_genes=40, method="spearman", show=False)
    (note,) = [t.get_text() for t in axes[0].texts if "evaluate" in t.get_text()]
    assert "two Spearman matrices" in note
    assert "the same statistic on Pearson matrices" in note
    doc = sgs.pl.correlation.__doc__
    assert "2,000 most variable real genes" in doc
    assert "evaluate" in doc


def test_correlation_with_genes_unclustered_spearman_and_return_fig(pair):
    real, synth = pair
    genes = list(real.var_names[[5, 1, 9, 3]])
    fig = sgs.pl.correlation(real, synth, genes, method="spearman", cluster=False, return_fig=True)
    real_ax, synth_ax = fig.axes[:2]
    rho = spearmanr(np.asarray(synth[:, genes].X)).statistic
    np.testing.assert_allclose(synth_ax.get_images()[0].get_array(), rho, atol=1e-6)
    assert [t.get_text() for t in real_ax.get_xticklabels()] == genes  # order kept
    assert "Spearman correlation score" in synth_ax.get_title()
    assert "dendrogram" not in [a.get_label() for a in fig.axes]
    plt.close(fig)


def test_correlation_matches_genes_by_name_and_explains_errors(pair):
    real, synth = pair
    shuffled = synth[:, synth.var_names[::-1]].copy()
    genes = _top_genes(real, 10)
    a = sgs.pl.correlation(real, synth, genes, show=False)
    b = sgs.pl.correlation(real, shuffled, genes, show=False)
    np.testing.assert_allclose(a[1].get_images()[0].get_array(), b[1].get_images()[0].get_array())
    plt.close("all")
    with pytest.raises(ValueError, match=r"not in synth\.var_names"):
        sgs.pl.correlation(real, synth[:, [g for g in synth.var_names if g != genes[0]]], genes)
    with pytest.raises(ValueError, match=r"not in real\.var_names"):
        sgs.pl.correlation(real, synth, ["nope", *genes])
    with pytest.raises(ValueError, match="method"):
        sgs.pl.correlation(real, synth, method="kendall")
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="two Axes"):
        sgs.pl.correlation(real, synth, ax=ax)
    plt.close("all")


def test_correlation_leaves_out_constant_genes(pair, sgs_logs):
    real, synth = pair
    constant = real.var_names[np.ptp(np.asarray(real.X), axis=0) == 0][0]
    genes = [constant, *_top_genes(real, 5)]
    with sgs_logs() as logs:
        axes = sgs.pl.correlation(real, synth, genes, show=False)
    assert axes[0].get_images()[0].get_array().shape == (5, 5)
    assert any("zero variance" in r.getMessage() for r in logs)
    plt.close("all")
