"""sgs.pl.precision_recall: points, front and legend from a compare_generators table."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import scgensynth as sgs
from scgensynth.pl._precision_recall import pareto_front

matplotlib.use("Agg")

#: (model, precision, recall): wgan and noise are on the front, cvae is beaten by wgan
VALUES = [("wgan", 0.8, 0.7), ("cvae", 0.6, 0.5), ("noise", 0.95, 0.2)]


def _report(model: str, precision: float, recall: float) -> pd.DataFrame:
    """The rows compare_generators writes for one model (columns in its exact order)."""
    rows = [
        ("precision", precision, True, 1.0, "all", "k=5"),
        ("recall", recall, True, 1.0, "all", "k=5"),
        ("f1", 2 * precision * recall / (precision + recall), True, 1.0, "all", "k=5"),
        # per-tissue recall: must not be drawn
        ("recall", 0.0, True, 1.0, "Lung", "k=5, groupby=tissue"),
        ("recall", 1.0, True, 1.0, "Liver", "k=5, groupby=tissue"),
        ("zero_recall_share", 0.5, False, 0.0, "all", "groupby=tissue"),
        ("train_seconds", 12.0, pd.NA, np.nan, "all", ""),
        ("n_parameters", 1e5, pd.NA, np.nan, "all", ""),
    ]
    df = pd.DataFrame(
        rows, columns=["metric", "value", "higher_is_better", "optimum", "group", "params"]
    )
    df.insert(0, "model", model)
    return df


@pytest.fixture
def table():
    out = pd.concat([_report(*v) for v in VALUES], ignore_index=True)
    out["higher_is_better"] = out["higher_is_better"].astype("boolean")
    return out


def _points(ax):
    return {
        c.get_label(): tuple(c.get_offsets()[0]) for c in ax.collections if c.get_label()[0] != "_"
    }


def test_points_front_and_labels(table):
    ax = sgs.pl.precision_recall(table, show=False)
    points = _points(ax)
    assert points == {m: pytest.approx((r, p)) for m, p, r in VALUES}
    front = [line for line in ax.get_lines() if line.get_label() == "front"]
    assert len(front) == 1
    # ordered by recall: noise (0.2, 0.95) then wgan (0.7, 0.8); cvae is dominated
    np.testing.assert_allclose(front[0].get_xdata(), [0.2, 0.7])
    np.testing.assert_allclose(front[0].get_ydata(), [0.95, 0.8])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "wgan",
        "cvae",
        "noise",
        "front",
    ]
    assert sorted(t.get_text() for t in ax.texts) == ["cvae", "noise", "wgan"]
    assert ax.get_xlabel() == "recall"
    assert ax.get_ylabel() == "precision"
    assert not ax.containers  # one value per model: no error bars
    plt.close("all")


def test_seeds_give_error_bars_and_other_metrics(table):
    other = table.copy()
    other.loc[other["metric"] == "precision", "value"] -= 0.1
    both = pd.concat([table, other], ignore_index=True)
    ax = sgs.pl.precision_recall(both, annotate=False, front=False, show=False)
    points = _points(ax)
    assert points["wgan"] == pytest.approx((0.7, 0.75))
    assert len(ax.containers) == 3  # one error bar per model
    assert not ax.texts
    assert all(line.get_label() != "front" for line in ax.get_lines())
    # any two metrics, e.g. f1 against zero_recall_share, with a palette
    ax = sgs.pl.precision_recall(
        table, x="zero_recall_share", y="f1", palette={"wgan": "#000000"}, show=False
    )
    assert ax.get_xlabel() == "zero_recall_share"
    colors = {
        c.get_label(): matplotlib.colors.to_hex(c.get_facecolor()[0]) for c in ax.collections
    }
    assert colors["wgan"] == "#000000"
    assert len(_points(ax)) == 3
    plt.close("all")


def test_pareto_front():
    x = np.array([0.1, 0.5, 0.4, 0.9, 0.9])
    y = np.array([0.9, 0.5, 0.4, 0.1, 0.1])
    # equal points do not dominate each other; (0.4, 0.4) is beaten by (0.5, 0.5)
    assert pareto_front(x, y).tolist() == [0, 1, 3, 4]


def test_conventions_and_errors(table):
    _, ax = plt.subplots()
    assert sgs.pl.precision_recall(table, ax=ax) is ax
    assert isinstance(sgs.pl.precision_recall(table, return_fig=True), matplotlib.figure.Figure)
    assert sgs.pl.precision_recall(table) is None
    with pytest.raises(ValueError, match=r"no column \['group'\]"):
        sgs.pl.precision_recall(table.drop(columns="group"))
    with pytest.raises(ValueError, match="no 'density' rows"):
        sgs.pl.precision_recall(table, x="density")
    with pytest.raises(ValueError, match="no 'precision' rows with group='Lung'"):
        sgs.pl.precision_recall(table, group="Lung")
    with pytest.raises(ValueError, match="3 models"):
        sgs.pl.precision_recall(table, palette=["red"])
    with pytest.raises(TypeError, match="DataFrame"):
        sgs.pl.precision_recall(table.to_dict())
    plt.close("all")


def _tidy(values: dict[str, dict[str, float]]) -> pd.DataFrame:
    rows = [(m, k, v, "all") for m, pr in values.items() for k, v in pr.items()]
    return pd.DataFrame(rows, columns=["model", "metric", "value", "group"])


def _labels(ax):
    return [t for t in ax.texts if t.get_text()]


def test_names_do_not_overlap_on_real_scores(gtex_pair, gaussian_model, overlapping):
    """GTEx: two Gaussian draws and a real half score close together; their names part."""
    real, synth = gtex_pair
    train, other = real[::2].copy(), real[1::2].copy()
    sets = {
        "gaussian": synth,
        "gaussian, seed 1": sgs.tl.generate(gaussian_model, 260, seed=1),
        "real (other half)": other,
        "real (other half) again": other,
    }
    scores = {m: sgs.metrics.precision_recall(train, s, k=5) for m, s in sets.items()}
    values = {m: {k: pr[k] for k in ("precision", "recall")} for m, pr in scores.items()}
    ax = sgs.pl.precision_recall(_tidy(values), show=False)
    labels = _labels(ax)
    assert sorted(t.get_text() for t in labels) == sorted(sets)
    assert overlapping(labels) == []
    # each name belongs to its model's point
    for t in labels:
        pr = values[t.get_text()]
        assert t.xy == pytest.approx((pr["recall"], pr["precision"]))
    # the two identical points: one name beside it, the other joined to it by a line
    same = [t for t in labels if t.get_text().startswith("real (other half)")]
    assert sum(t.arrow_patch is not None for t in same) >= 1
    plt.close("all")


@pytest.mark.parametrize("n", [2, 6])
def test_names_of_models_on_one_point_do_not_overlap(n, overlapping):
    # every model perfect: all points at the corner of the axes
    values = {f"model {i}": {"precision": 1.0, "recall": 1.0} for i in range(n)}
    _fig, ax = plt.subplots(figsize=(4, 3.5))
    sgs.pl.precision_recall(_tidy(values), ax=ax)
    labels = _labels(ax)
    assert len(labels) == n
    assert overlapping(labels) == []
    plt.close("all")
