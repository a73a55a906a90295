"""sgs.pl.reconstruction_error: REM boxes of real and synthetic GTEx samples, per tissue."""

from __future__ import annotations

import anndata as ad
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

import scgensynth as sgs

matplotlib.use("Agg")


@pytest.fixture
def pair(gtex):
    """GTEx and a noisy fake (the real samples plus noise: off the real principal subspace)."""
    rng = np.random.default_rng(0)
    noise = rng.normal(scale=0.5, size=gtex.shape).astype(np.float32)
    return gtex, ad.AnnData(gtex.X + noise, obs=gtex.obs.copy(), var=gtex.var.copy())


def _by_gid(artists):
    return {a.get_gid(): a for a in artists if a.get_gid()}


def test_boxes_per_tissue(pair, snapshot):
    real, synth = pair
    snaps = [snapshot(real), snapshot(synth)]
    ax = sgs.pl.reconstruction_error(real, synth, labels_key="tissue", n_components=20, show=False)
    for snap, a in zip(snaps, pair):
        snap.assert_unchanged(a)
    tissues = list(real.obs["tissue"].cat.categories)
    boxes = _by_gid(ax.patches)
    assert len(boxes) == 2 * (1 + len(tissues))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["all", *tissues]
    result = sgs.metrics.reconstruction_error(real, synth, n_components=20)
    medians = {k: line.get_ydata()[0] for k, line in _by_gid(ax.get_lines()).items()}
    assert medians["real: all"] == pytest.approx(result["real_median"])
    assert medians["synthetic: all"] == pytest.approx(result["synthetic_median"])
    for tissue in tissues:
        for source, data in (("real", real), ("synthetic", synth)):
            errors = result[source][(data.obs["tissue"] == tissue).to_numpy()]
            assert medians[f"{source}: {tissue}"] == pytest.approx(np.median(errors))
        # noise puts every tissue's synthetic samples farther off the real subspace
        assert medians[f"synthetic: {tissue}"] > medians[f"real: {tissue}"]
    assert ax.get_ylabel() == "reconstruction error"
    assert ax.get_xlabel() == "tissue"
    assert f"{result['median_ratio']:.2f}" in ax.get_title()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["real", "synthetic"]
    plt.close("all")


def test_metric_output_palette_and_conventions(pair):
    real, synth = pair
    result = sgs.metrics.reconstruction_error(real, synth, n_components=0.9, cv=None)
    ax = sgs.pl.reconstruction_error(result, log=True, show=False)
    assert sorted(_by_gid(ax.patches)) == ["real: all", "synthetic: all"]
    assert ax.get_yscale() == "log"
    # a tissue present in the real data only: a lone real box
    real.uns["sgs_source_colors"] = ["#000000", "#ff0000"]
    real.obs["sgs_source"] = "real"
    real.obs["sgs_source"] = real.obs["sgs_source"].astype("category")
    real.obs["sgs_source"] = real.obs["sgs_source"].cat.set_categories(["real", "synthetic"])
    lone = synth[synth.obs["tissue"] != "Lung"].copy()
    fig = sgs.pl.reconstruction_error(
        real, lone, labels_key="tissue", n_components=20, return_fig=True
    )
    assert isinstance(fig, matplotlib.figure.Figure)
    boxes = _by_gid(fig.axes[0].patches)
    assert "real: Lung" in boxes
    assert "synthetic: Lung" not in boxes
    assert matplotlib.colors.to_hex(boxes["real: all"].get_facecolor()) == "#000000"
    assert matplotlib.colors.to_hex(boxes["synthetic: all"].get_facecolor()) == "#ff0000"
    _, ax = plt.subplots()
    assert sgs.pl.reconstruction_error(result, ax=ax) is ax
    assert sgs.pl.reconstruction_error(result) is None
    plt.close("all")


def test_errors(pair):
    real, synth = pair
    with pytest.raises(ValueError, match="needs the real and the synthetic"):
        sgs.pl.reconstruction_error(real)
    with pytest.raises(KeyError, match=r"'batch' is not an \.obs column of real"):
        sgs.pl.reconstruction_error(real, synth, labels_key="batch")
    with pytest.raises(TypeError, match="needs AnnData"):
        sgs.pl.reconstruction_error(real, np.asarray(synth.X), labels_key="tissue")
    result = sgs.metrics.reconstruction_error(real, synth, n_components=5)
    with pytest.raises(ValueError, match="pass it alone"):
        sgs.pl.reconstruction_error(result, labels_key="tissue")
    plt.close("all")
