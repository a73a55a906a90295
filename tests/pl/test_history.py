from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

import scgensynth as sgs


@pytest.fixture(scope="module")
def model():
    adata = sgs.datasets.gtex_tissues()
    return sgs.tl.train_wgan(
        adata,
        categorical_covariate_keys=["tissue"],
        n_steps=120,
        n_hidden=(32, 32),
        enable_progress_bar=False,
    )


def test_training_history_draws_each_loss_and_the_selection_score(model):
    fig, ax = plt.subplots()
    out = sgs.pl.training_history(model, ax=ax, show=False)
    assert out is ax
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [
        "critic_loss",
        "generator_loss",
        "wasserstein",
        "gradient_penalty",
        "selection score",
    ]
    n_epochs = len(model.history["critic_loss"])
    assert all(len(line.get_xdata()) == n_epochs for line in ax.get_lines())
    assert ax.get_xlabel() == "epoch"
    assert len(fig.axes) == 2  # the selection score has its own axis
    plt.close(fig)


def test_training_history_returns_figure_and_checks_keys(model):
    fig = sgs.pl.training_history(model, keys=["wasserstein"], selection=False, return_fig=True)
    assert len(fig.axes) == 1
    assert len(fig.axes[0].get_lines()) == 1
    plt.close(fig)
    with pytest.raises(KeyError, match="None of the requested keys"):
        sgs.pl.training_history(model, keys=["nope"], show=False)
