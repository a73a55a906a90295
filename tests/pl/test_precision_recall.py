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
