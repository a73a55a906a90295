"""sgs.pl.pca_variance: the curves of the metric, on the bundled GTEx data."""

from __future__ import annotations

import anndata as ad
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import scgensynth as sgs

matplotlib.use("Agg")


@pytest.fixture
def pair(gtex):
    """GTEx and a collapsed fake: each sample pulled 90% of the way to its tissue's mean."""
    X = np.asarray(gtex.X, dtype=np.float64)
    means = gtex.to_df().groupby(gtex.obs["tissue"].to_numpy()).transform("mean").to_numpy()
    synth = ad.AnnData(
        (0.1 * X + 0.9 * means).astype(np.float32), obs=gtex.obs.copy(), var=gtex.var.copy()
    )
    return gtex, synth


def _curves(ax):
    return [line for line in ax.get_lines() if line.get_label() in ("real", "synthetic")]


def test_curves_and_markers(pair, snapshot):
    real, synth = pair
    snaps = [snapshot(real), snapshot(synth)]
    ax = sgs.pl.pca_variance(real, synth, thresholds=(0.8, 0.9), show=False)
    for snap, a in zip(snaps, pair):
        snap.assert_unchanged(a)
    expected = sgs.metrics.pca_variance(real, synth, thresholds=(0.8, 0.9))
    lines = _curves(ax)
    assert [line.get_label() for line in lines] == ["real", "synthetic"]
    for line in lines:
        np.testing.assert_allclose(line.get_xdata(), expected["curves"].index)
        np.testing.assert_allclose(line.get_ydata(), expected["curves"][line.get_label()])
    # collapsed data reach 80% with fewer components
    comps = expected["components"]
    assert comps.loc[0.8, "synthetic"] < comps.loc[0.8, "real"]
    # one marker per threshold and dataset, at the component reaching it
    markers = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert len(markers) == 4
    assert sorted(int(m.get_xdata()[0]) for m in markers) == sorted(
        int(v) for v in comps.to_numpy().ravel()
    )
    for m in markers:
        assert m.get_ydata()[0] >= 0.8 - 1e-9
    # the threshold lines
    hlines = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert sorted(line.get_ydata()[0] for line in hlines) == [0.8, 0.9]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["real", "synthetic"]
    assert ax.get_xlabel() == "principal components"
    assert ax.get_ylabel() == "cumulative explained variance"
    plt.close("all")


def test_metric_output_and_palette(pair):
    real, synth = pair
    result = sgs.metrics.pca_variance(real, synth, thresholds=(0.95,), max_components=20)
    ax = sgs.pl.pca_variance(result, show=False)
    lines = _curves(ax)
    assert len(lines[0].get_xdata()) == 20
    # the real data do not reach 95% within 20 components: only the synthetic curve's marker
    assert result["components"].loc[0.95, "real"] is pd.NA
    markers = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert len(markers) == 1
    assert markers[0].get_xdata()[0] == result["components"].loc[0.95, "synthetic"]
    # a combined AnnData's source palette colours the curves
    both = ad.concat({"real": real, "synthetic": synth}, label="sgs_source", index_unique="-")
    both.uns["sgs_source_colors"] = ["#000000", "#ff0000"]
    real_part = both[both.obs["sgs_source"] == "real"]
    synth_part = both[both.obs["sgs_source"] == "synthetic"]
    ax = sgs.pl.pca_variance(real_part, synth_part, show=False)
    colors = {line.get_label(): matplotlib.colors.to_hex(line.get_color()) for line in _curves(ax)}
    assert colors == {"real": "#000000", "synthetic": "#ff0000"}
    plt.close("all")


def test_conventions(pair):
    real, synth = pair
    fig, ax = plt.subplots()
    assert sgs.pl.pca_variance(real, synth, ax=ax) is ax  # given ax: not shown
    fig = sgs.pl.pca_variance(real, synth, return_fig=True)
    assert isinstance(fig, matplotlib.figure.Figure)
    assert sgs.pl.pca_variance(real, synth) is None  # shown (Agg: nothing on screen)
    plt.close("all")


def test_errors(pair):
    real, synth = pair
    with pytest.raises(ValueError, match="needs the real and the synthetic"):
        sgs.pl.pca_variance(real)
    result = sgs.metrics.pca_variance(real, synth)
    with pytest.raises(ValueError, match="pass it alone"):
        sgs.pl.pca_variance(result, synth)
    with pytest.raises(ValueError, match="thresholds"):
        sgs.pl.pca_variance(real, synth, thresholds=(1.5,))
    plt.close("all")
