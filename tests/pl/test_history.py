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


def _legend(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


@pytest.mark.parametrize(
    ("train", "expected"),
    [
        (
            lambda a: sgs.tl.train_ddpm(
                a, categorical_covariate_keys=["tissue"], n_steps=30, selection=None,
                enable_progress_bar=False, seed=0,
            ),
            ["diffusion_loss", "diffusion_loss_validation"],
        ),
        (
            lambda a: sgs.tl.train_gmda(
                a, categorical_covariate_keys=["tissue"], n_steps=20, selection=None,
                enable_progress_bar=False, seed=0,
            ),
            ["gmda_loss", "dark_loss", "total_loss", "gmda_loss_validation"],
        ),
        (
            lambda a: sgs.tl.train_tspg(
                a, "tissue", n_hidden_classifier=(16,), n_hidden_generator=(16, 8),
                n_residual=1, n_hidden_discriminator=(8,), classifier_steps=20, n_steps=20,
                enable_progress_bar=False, seed=0,
            ),
            [
                "discriminator_loss", "generator_loss", "d_real", "d_fake", "classifier_loss",
                "gan_loss", "adv_loss", "norm_loss", "target_loss",
            ],
        ),
    ],
    ids=["ddpm", "gmda", "tspg"],
)  # fmt: skip
def test_training_history_draws_the_losses_of_the_newer_models(gtex, train, expected):
    model = train(gtex)
    fig, ax = plt.subplots()
    sgs.pl.training_history(model, ax=ax, selection=False, show=False)
    present = [k for k in expected if k in model.history]
    assert present == expected  # every loss the model logs is drawn ...
    assert _legend(ax) == expected
    for line, key in zip(ax.get_lines(), expected):
        frame = model.history[key]
        assert list(line.get_xdata()) == list(frame.index)
        assert list(line.get_ydata()) == list(frame.iloc[:, 0])
    # ... and nothing else (shares such as TSPG's success are not losses)
    assert "success" not in _legend(ax)
    plt.close(fig)


def test_training_history_of_the_noise_baseline_says_it_has_nothing_to_train(gtex):
    for name in sgs.model.available().index:  # generators without a training plan
        cls = sgs.model.get_model_class(name)
        if cls._training_plan_cls is not None:
            continue
        model = sgs.tl.train(gtex, model=name, categorical_covariate_keys=["tissue"])
        message = f"{cls.__name__} has an empty training history: it has nothing to train"
        with pytest.raises(ValueError, match=message):
            sgs.pl.training_history(model, show=False)
