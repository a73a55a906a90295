from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

import scgensynth as sgs
from scgensynth.pl._history import scale_groups


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


def _loss_lines(fig) -> dict[str, tuple]:
    """``{loss: (its Axes, its line)}`` over every panel (not the selection / kept lines)."""
    out = {}
    for a in fig.axes:
        for line in a.get_lines():
            label = line.get_label()
            if not label.startswith(("_", "kept weights", "selection score")):
                out[label] = (a, line)
    return out


def _largest(frame) -> float:
    return float(np.nanmax(np.abs(frame.iloc[:, 0].to_numpy())))


@pytest.fixture
def epochs_only(model, monkeypatch):
    """The model as one that does not record its steps per epoch (old or closed-form)."""
    monkeypatch.delattr(model, "steps_per_epoch_", raising=False)
    return model


def test_losses_of_different_magnitude_get_separate_panels(epochs_only):
    model = epochs_only
    fig, ax = plt.subplots(figsize=(6, 8))
    out = sgs.pl.training_history(model, ax=ax, show=False)
    assert out is ax  # the top panel: the largest losses
    lines = _loss_lines(fig)
    keys = ["critic_loss", "generator_loss", "wasserstein", "gradient_penalty"]
    assert sorted(lines) == sorted(keys)
    size = {k: _largest(model.history[k]) for k in keys}
    assert max(size.values()) / size["gradient_penalty"] > 10  # a penalty far smaller ...
    for a in keys:
        for b in keys:
            same_panel = lines[a][0] is lines[b][0]
            ratio = max(size[a], size[b]) / min(size[a], size[b])
            assert not (same_panel and ratio > 10), (a, b, ratio)  # ... never on their axis
    panels = {id(a) for a, _ in lines.values()}
    assert len(panels) >= 2
    assert len(fig.axes) == len(panels) + 1  # and the selection score's own panel
    assert lines[max(size, key=size.get)][0] is ax
    # x: the epochs completed when each value was logged
    for key, (_, line) in lines.items():
        frame = model.history[key]
        np.testing.assert_array_equal(line.get_xdata(), frame.index.to_numpy() + 1)
        np.testing.assert_array_equal(line.get_ydata(), frame.iloc[:, 0].to_numpy())
    assert fig.axes[-1].get_xlabel() == "epoch"
    plt.close(fig)


def test_kept_weights_have_a_legend_entry_and_mark_every_panel(epochs_only):
    model = epochs_only
    fig = sgs.pl.training_history(model, return_fig=True)
    best = model.best_epoch_
    assert best is not None
    top = fig.axes[0]
    legend = [t.get_text() for t in top.get_legend().get_texts()]
    assert f"kept weights (epoch {best})" in legend
    for a in fig.axes:
        kept = [line for line in a.get_lines() if "kept weights" in line.get_label()]
        assert len(kept) == 1
        assert list(kept[0].get_xdata()) == [best, best]
    selection = fig.axes[-1]
    (score,) = [line for line in selection.get_lines() if line.get_label() == "selection score"]
    np.testing.assert_array_equal(score.get_xdata(), model.selection_["epoch"].to_numpy())
    assert "selection score" in [t.get_text() for t in selection.get_legend().get_texts()]
    plt.close(fig)


def test_x_axis_in_training_steps_when_the_model_knows_them(model, monkeypatch):
    monkeypatch.setattr(model, "steps_per_epoch_", 7, raising=False)
    fig = sgs.pl.training_history(model, return_fig=True)
    assert fig.axes[-1].get_xlabel() == "training step"
    for key, (_, line) in _loss_lines(fig).items():
        index = model.history[key].index.to_numpy()
        np.testing.assert_array_equal(line.get_xdata(), (index + 1) * 7)
    (score,) = [line for line in fig.axes[-1].get_lines() if line.get_label() == "selection score"]
    np.testing.assert_array_equal(score.get_xdata(), model.selection_["epoch"].to_numpy() * 7)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert f"kept weights (training step {model.best_epoch_ * 7})" in legend
    plt.close(fig)


def test_scale_groups_splits_a_wasserstein_of_700_from_a_penalty_of_30():
    values = {
        "critic_loss": np.array([-650.0, -700.0]),
        "wasserstein": np.array([690.0, 710.0]),
        "gradient_penalty": np.array([30.0, 25.0]),
        "generator_loss": np.array([80.0, 120.0]),  # within 10x of 710: shares its panel
    }
    assert scale_groups(values) == [
        ["critic_loss", "wasserstein", "generator_loss"],
        ["gradient_penalty"],
    ]
    assert scale_groups({"a": np.zeros(3), "b": np.array([np.nan, 0.0])}) == [["a", "b"]]


def test_training_history_returns_figure_and_checks_keys(model):
    fig = sgs.pl.training_history(model, keys=["wasserstein"], selection=False, return_fig=True)
    assert len(fig.axes) == 1
    assert len(fig.axes[0].get_lines()) == 1
    plt.close(fig)
    with pytest.raises(KeyError, match="None of the requested keys"):
        sgs.pl.training_history(model, keys=["nope"], show=False)


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
    model.__dict__.pop("steps_per_epoch_", None)
    fig = sgs.pl.training_history(model, selection=False, return_fig=True)
    present = [k for k in expected if k in model.history]
    assert present == expected  # every loss the model logs is drawn ...
    lines = _loss_lines(fig)
    assert sorted(lines) == sorted(expected)
    legends = [t.get_text() for a in fig.axes for t in a.get_legend().get_texts()]
    assert sorted(legends) == sorted(expected)
    for key, (_, line) in lines.items():
        frame = model.history[key]
        assert list(line.get_xdata()) == list(frame.index + 1)
        assert list(line.get_ydata()) == list(frame.iloc[:, 0])
    # ... and nothing else (shares such as TSPG's success are not losses)
    assert "success" not in legends
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
