"""Old argument names of the plots still work, with a FutureWarning, and draw the same."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

import scgensynth as sgs


@pytest.fixture
def pair(gtex):
    rng = np.random.default_rng(0)
    real = gtex[gtex.obs["tissue"].isin(gtex.obs["tissue"].cat.categories[:4])].copy()
    synth = real.copy()
    synth.X = synth.X + rng.normal(0, 0.5, synth.X.shape).astype(np.float32)
    return real, synth


def _drawn(ax):
    """What a plot shows: tick labels, and the data of its lines and bars."""
    ticks = [t.get_text() for t in (*ax.get_xticklabels(), *ax.get_yticklabels())]
    lines = [np.asarray(line.get_ydata(), dtype=float).tolist() for line in ax.get_lines()]
    bars = [p.get_width() for p in ax.patches if hasattr(p, "get_width")]
    return ticks, lines, bars


@pytest.mark.parametrize(
    ("plot", "kwargs"),
    [
        (sgs.pl.reconstruction_error, {"n_components": 5}),
        (sgs.pl.recall_by_group, {"k": 3}),
    ],
    ids=["reconstruction_error", "recall_by_group"],
)
def test_groupby_is_the_old_name_of_labels_key(plot, kwargs, pair):
    real, synth = pair
    new = _drawn(plot(real, synth, labels_key="tissue", show=False, **kwargs))
    with pytest.warns(FutureWarning, match="the argument groupby was renamed labels_key"):
        old = _drawn(plot(real, synth, groupby="tissue", show=False, **kwargs))
    assert old == new
    assert len(new[0]) > 4  # one tick per tissue at least: the groups were drawn
    plt.close("all")
