"""sgs.pl.augmentation_curve: curves, error bars and legend of an augmentation_gain table."""

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
def table():
    """augmentation_gain's format: 2 real sizes x 3 synthetic sizes, 3 seeds each."""
    rows = []
    for n_real, base in ((10, 0.5), (50, 0.8)):
        for n_synth, gain in ((0, 0.0), (100, 0.1), (1000, 0.15)):
            std = 0.0 if n_synth == 0 else 0.02
            rows.append((n_real, n_synth, base + gain, 0.05, gain, std, 3))
    return pd.DataFrame(
        rows,
        columns=["n_real", "n_synth", "accuracy_mean", "accuracy_std", "delta_mean",
                 "delta_std", "n_seeds"],
    )  # fmt: skip


def _curves(ax):
    """The data line of every errorbar container, labelled by its container."""
    lines = []
    for container in ax.containers:
        line = container.lines[0]
        line.set_label(container.get_label())
        lines.append(line)
    return lines


def test_curves_and_error_bars(table):
    ax = sgs.pl.augmentation_curve(table, show=False)
    curves = _curves(ax)
    assert [c.get_label() for c in curves] == ["10 real", "50 real"]
    for curve, n in zip(curves, (10, 50)):
        rows = table[table["n_real"] == n]
        np.testing.assert_array_equal(curve.get_xdata(), rows["n_synth"])
        np.testing.assert_allclose(curve.get_ydata(), rows["accuracy_mean"])
    assert len(ax.containers) == 2
    for container, n in zip(ax.containers, (10, 50)):
        _, _, (bars,) = container.lines
        segments = bars.get_segments()
        assert len(segments) == 3
        heights = [seg[1][1] - seg[0][1] for seg in segments]
        np.testing.assert_allclose(heights, 2 * table.loc[table["n_real"] == n, "accuracy_std"])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["10 real", "50 real"]
    assert ax.get_xlabel() == "synthetic samples added"
    assert ax.get_ylabel() == "test accuracy"
    plt.close("all")


def test_delta_log_x_palette_and_single_seed(table):
    one_seed = table.assign(delta_std=np.nan, n_seeds=1)
    ax = sgs.pl.augmentation_curve(
        one_seed, y="delta", log_x=True, palette=["#000000", "#ff0000"], show=False
    )
    curves = _curves(ax)
    np.testing.assert_allclose(curves[1].get_ydata(), [0.0, 0.1, 0.15])
    assert [matplotlib.colors.to_hex(c.get_color()) for c in curves] == ["#000000", "#ff0000"]
    assert all(not c.has_yerr for c in ax.containers)  # NaN std: no bars
    assert ax.get_xscale() == "symlog"
    assert ax.get_ylabel() == "accuracy gain (ΔAcc)"
    assert any(line.get_linestyle() == ":" and line.get_ydata()[0] == 0 for line in ax.get_lines())
    plt.close("all")


def test_real_augmentation_gain(gtex):
    """On GTEx, with noisy copies of training samples as the synthetic data (a few fits)."""
    rng = np.random.default_rng(0)
    idx = rng.permutation(gtex.n_obs)
    train, test = gtex[np.sort(idx[:200])].copy(), gtex[np.sort(idx[200:])].copy()
    noise = rng.normal(scale=0.3, size=train.shape).astype(np.float32)
    synth = ad.AnnData(train.X + noise, obs=train.obs.copy(), var=train.var.copy())
    result = sgs.metrics.augmentation_gain(
        train, test, synth, "tissue", n_real=(6, 12), n_synth=(0, 50), seeds=2, epochs=5,
        classifier="logistic",
    )  # fmt: skip
    fig = sgs.pl.augmentation_curve(result, return_fig=True)
    ax = fig.axes[0]
    curves = _curves(ax)
    assert [c.get_label() for c in curves] == ["6 real", "12 real"]
    assert all(len(c.get_xdata()) == 2 for c in curves)
    np.testing.assert_allclose(
        np.concatenate([c.get_ydata() for c in curves]), result["accuracy_mean"]
    )
    plt.close("all")


def test_conventions_and_errors(table):
    _, ax = plt.subplots()
    assert sgs.pl.augmentation_curve(table, ax=ax) is ax
    assert sgs.pl.augmentation_curve(table) is None
    with pytest.raises(ValueError, match="y must be"):
        sgs.pl.augmentation_curve(table, y="f1")
    with pytest.raises(ValueError, match=r"no column \['accuracy_std'\]"):
        sgs.pl.augmentation_curve(table.drop(columns="accuracy_std"))
    with pytest.raises(ValueError, match="2 values of n_real"):
        sgs.pl.augmentation_curve(table, palette=["red"])
    with pytest.raises(ValueError, match="no rows"):
        sgs.pl.augmentation_curve(table.iloc[:0])
    plt.close("all")
