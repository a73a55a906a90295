"""sgs.pl.gene_moments: per-gene mean and variance, GTEx against a Gaussian generator."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

import scgensynth as sgs

matplotlib.use("Agg")


def _points(ax) -> np.ndarray:
    return np.vstack([c.get_offsets() for c in ax.collections if len(c.get_offsets())])


def _r(title: str) -> float:
    return float(title.rsplit("= ", 1)[1].rstrip(")"))


def test_means_and_variances_real_against_synthetic(gtex_pair, snapshot, overlapping):
    real, synth = gtex_pair
    snaps = snapshot(real), snapshot(synth)
    axes = sgs.pl.gene_moments(real, synth, show=False)
    snaps[0].assert_unchanged(real)
    snaps[1].assert_unchanged(synth)
    X, Y = np.asarray(real.X, dtype=np.float64), np.asarray(synth.X, dtype=np.float64)
    expected = {
        "mean": (X.mean(0), Y.mean(0)),
        "variance": (X.var(0, ddof=1), Y.var(0, ddof=1)),
    }
    for ax, (what, (x, y)) in zip(axes, expected.items()):
        # GTEx is log-scale (detect_scaling: standardize): the moments as they are
        np.testing.assert_allclose(_points(ax), np.c_[x, y], rtol=1e-5, atol=1e-6)
        assert ax.get_xlabel() == f"real: {what}"
        assert ax.get_ylabel() == f"synthetic: {what}"
        assert ax.get_title().startswith(f"gene {what} (Pearson r = ")
        assert _r(ax.get_title()) == pytest.approx(np.corrcoef(x, y)[0, 1], abs=5e-4)
        (identity,) = [line for line in ax.get_lines() if line.get_label() == "identity"]
        np.testing.assert_allclose(identity.get_xdata(), identity.get_ydata())
        assert identity.get_xdata()[0] <= min(x.min(), y.min())
        assert identity.get_xdata()[1] >= max(x.max(), y.max())
        # the 5 genes furthest from the line are named, and the names do not overlap
        furthest = real.var_names[np.argsort(-np.abs(y - x))[:5]]
        assert sorted(t.get_text() for t in ax.texts) == sorted(furthest)
        assert overlapping(ax.texts) == []
    assert _r(axes[0].get_title()) > 0.99  # the Gaussian keeps the means ...
    assert 0.8 < _r(axes[1].get_title()) < _r(axes[0].get_title())  # ... less the variances
    plt.close("all")


def test_within_tissues(gtex_pair, sgs_logs):
    real, synth = gtex_pair
    synth = synth[synth.obs["tissue"] != "Liver"].copy()  # a class the synthetic set lacks
    with sgs_logs() as logs:
        axes = sgs.pl.gene_moments(real, synth, groupby="tissue", n_labels=3, show=False)
    assert any("left out 1 classes" in r.getMessage() for r in logs)
    tissues = [t for t in real.obs["tissue"].cat.categories if t != "Liver"]
    for ax in axes:
        assert len(_points(ax)) == len(tissues) * real.n_vars
    # the Lung points: the moments within the Lung samples of each set
    lung = real.obs["tissue"] == "Lung"
    (lung_points,) = [c for c in axes[1].collections if c.get_label() == "Lung"]
    x = np.asarray(real[lung.to_numpy()].X, dtype=np.float64).var(0, ddof=1)
    y = np.asarray(synth[(synth.obs["tissue"] == "Lung").to_numpy()].X, dtype=np.float64)
    np.testing.assert_allclose(lung_points.get_offsets(), np.c_[x, y.var(0, ddof=1)], atol=1e-5)
    assert axes[0].get_title().startswith("gene mean within tissue (Pearson r = ")
    legend = axes[1].get_legend()
    assert legend.get_title().get_text() == "tissue"
    assert [t.get_text() for t in legend.get_texts()] == tissues
    # names say which class: "GENE (Tissue)"
    assert len(axes[1].texts) == 3
    assert all(t.get_text().endswith(")") and " (" in t.get_text() for t in axes[1].texts)
    plt.close("all")


def test_log_scale_for_tpm_values(tcga_acc):
    """TCGA ACC holds TPM-like values: 'auto' plots log10(1 + moment)."""
    real = tcga_acc
    rng = np.random.default_rng(0)
    synth = real[rng.permutation(real.n_obs)[:60]].copy()
    assert sgs.pp.detect_scaling(real) == "log1p"
    axes = sgs.pl.gene_moments(real, synth, n_labels=0, show=False)
    x = np.asarray(real.X, dtype=np.float64).mean(0)
    y = np.asarray(synth.X, dtype=np.float64).mean(0)
    np.testing.assert_allclose(
        _points(axes[0]), np.c_[np.log10(1 + x), np.log10(1 + y)], atol=1e-6
    )
    assert axes[0].get_xlabel() == "real: log10(1 + mean)"
    assert _r(axes[0].get_title()) == pytest.approx(
        np.corrcoef(np.log10(1 + x), np.log10(1 + y))[0, 1], abs=5e-4
    )
    assert not axes[0].texts
    axes = sgs.pl.gene_moments(real, synth, log=False, show=False)
    np.testing.assert_allclose(_points(axes[0]), np.c_[x, y], rtol=1e-5)
    plt.close("all")


def test_views_gene_order_and_conventions(gtex_pair, snapshot):
    real, synth = gtex_pair
    tissues = real.obs["tissue"].cat.categories[:3]
    view = real[real.obs["tissue"].isin(tissues).to_numpy()]
    assert view.is_view
    snap = snapshot(view)
    shuffled = synth[:, synth.var_names[::-1]]  # a view, genes in another order
    _fig, given = plt.subplots(1, 2)
    out = sgs.pl.gene_moments(view, shuffled, ax=given)
    assert out == list(given)
    snap.assert_unchanged(view)
    assert view.is_view
    copy = sgs.pl.gene_moments(view.copy(), synth, return_fig=True)
    np.testing.assert_allclose(_points(given[1]), _points(copy.axes[1]), rtol=1e-6)
    plt.close("all")


def test_bad_input_is_refused_clearly(gtex_pair):
    real, synth = gtex_pair
    with pytest.raises(ValueError, match="same genes: 1 genes of real are not in synthetic"):
        sgs.pl.gene_moments(real, synth[:, 1:])
    with pytest.raises(KeyError, match=r"groupby='cancer' is not a column of real\.obs"):
        sgs.pl.gene_moments(real, synth, groupby="cancer")
    other = synth.copy()
    del other.obs["tissue"]
    with pytest.raises(KeyError, match=r"not a column of synthetic\.obs"):
        sgs.pl.gene_moments(real, other, groupby="tissue")
    with pytest.raises(TypeError, match="AnnData"):
        sgs.pl.gene_moments(real, np.asarray(synth.X))
    with pytest.raises(ValueError, match="log must be"):
        sgs.pl.gene_moments(real, synth, log="yes")
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="2 Axes"):
        sgs.pl.gene_moments(real, synth, ax=ax)
    plt.close("all")


def test_gene_symbols_name_the_genes(gtex_pair):
    real, synth = gtex_pair
    real.var["symbol"] = [f"sym-{g}" for g in real.var_names]
    axes = sgs.pl.gene_moments(real, synth, gene_symbols="symbol", n_labels=2, show=False)
    x, y = np.asarray(real.X).mean(0), np.asarray(synth.X).mean(0)
    furthest = real.var_names[np.argsort(-np.abs(y - x))[:2]]
    assert sorted(t.get_text() for t in axes[0].texts) == sorted(f"sym-{g}" for g in furthest)
    with pytest.raises(KeyError, match="gene_symbols='hgnc'"):
        sgs.pl.gene_moments(real, synth, gene_symbols="hgnc")
    plt.close("all")
