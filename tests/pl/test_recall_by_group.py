from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba

import scgensynth as sgs
from scgensynth.pl._recall import BLIND_SPOT_COLOR


@pytest.fixture
def pair(gtex):
    """Synthetic = real plus noise, without any Liver sample (a blind spot)."""
    rng = np.random.default_rng(0)
    synth = gtex[gtex.obs["tissue"] != "Liver"].copy()
    synth.X = synth.X + rng.normal(0, 0.5, synth.X.shape).astype(np.float32)
    return gtex, synth


def _bars(ax, label):
    (container,) = [c for c in ax.containers if c.get_label() == label]
    return np.array([p.get_width() for p in container.patches])


def test_recall_by_group_bars_are_the_metric_sorted_with_blind_spots(pair, snapshot):
    real, synth = pair
    snaps = snapshot(real), snapshot(synth)
    fig, ax = plt.subplots()
    out = sgs.pl.recall_by_group(real, synth, "tissue", k=5, ax=ax, show=False)
    assert out is ax
    expected = sgs.metrics.precision_recall(real, synth, k=5, labels_key="tissue")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert sorted(labels) == sorted(expected.index)
    recall = _bars(ax, "recall")
    precision = _bars(ax, "precision")
    np.testing.assert_allclose(recall, expected.loc[labels, "recall"].to_numpy())
    np.testing.assert_allclose(precision, expected.loc[labels, "precision"].to_numpy())
    assert np.all(np.diff(recall) <= 0)  # sorted, highest first
    assert labels[-1] == "Liver"
    assert recall[-1] == 0
    assert np.isnan(precision[-1])
    colors = {t.get_text(): t.get_color() for t in ax.get_yticklabels()}
    assert colors["Liver"] == BLIND_SPOT_COLOR
    assert all(c != BLIND_SPOT_COLOR for g, c in colors.items() if g != "Liver")
    shaded = [p for p in ax.patches if p.get_facecolor()[:3] == to_rgba(BLIND_SPOT_COLOR)[:3]]
    assert len(shaded) == 1
    assert ax.get_title() == "recall 0 in 1 of 26 groups (4% of real samples)"
    snaps[0].assert_unchanged(real)
    snaps[1].assert_unchanged(synth)
    plt.close(fig)


def test_recall_by_group_from_the_metrics_table(pair):
    real, synth = pair
    table = sgs.metrics.precision_recall(real, synth, k=5, labels_key="tissue")
    before = table.copy()
    fig = sgs.pl.recall_by_group(table, return_fig=True)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    np.testing.assert_allclose(_bars(ax, "recall"), table.loc[labels, "recall"].to_numpy())
    pd.testing.assert_frame_equal(table, before)
    plt.close(fig)


def test_recall_by_group_from_an_evaluate_table_draws_recall_only(pair):
    real, synth = pair
    report = sgs.metrics.evaluate(
        real, synth, labels_key="tissue", metrics=["precision_recall"], k=5, key_added=None
    )
    per_group = report[(report["metric"] == "recall") & (report["group"] != "all")]
    _, ax = plt.subplots()
    sgs.pl.recall_by_group(report, ax=ax, show=False)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert sorted(labels) == sorted(per_group["group"])
    values = per_group.set_index("group").loc[labels, "value"].to_numpy()
    np.testing.assert_allclose(_bars(ax, "recall"), values)
    assert not [c for c in ax.containers if c.get_label() == "precision"]
    assert ax.get_title() == "recall 0 in 1 of 26 groups"
    # a compare_generators table with two models needs model=
    two = pd.concat([report.assign(model="a"), report.assign(model="b")], ignore_index=True)
    with pytest.raises(ValueError, match="several models"):
        sgs.pl.recall_by_group(two, show=False)
    sgs.pl.recall_by_group(two, model="b", ax=ax, show=False)
    plt.close("all")


def test_recall_by_group_explains_bad_input(pair):
    real, synth = pair
    with pytest.raises(ValueError, match="labels_key"):
        sgs.pl.recall_by_group(real, synth)
    with pytest.raises(ValueError, match="pass it alone"):
        sgs.pl.recall_by_group(pd.DataFrame({"recall": [1.0]}), synth)
    with pytest.raises(ValueError, match="per-group recall"):
        sgs.pl.recall_by_group(
            pd.DataFrame({"metric": ["recall"], "value": [1.0], "group": ["all"]})
        )
