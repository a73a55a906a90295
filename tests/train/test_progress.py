"""Training length in steps everywhere: the progress bar, the log lines, the model."""

from __future__ import annotations

import logging
import re

import scgensynth as sgs


def _train(adata, **kwargs):
    return sgs.tl.train_wgan(
        adata, categorical_covariate_keys=["tissue"], batch_size=16, seed=0,
        n_hidden=(32, 32), **kwargs,
    )  # fmt: skip


def _last_bar(stderr: str) -> str:
    """The bar as it was left (tqdm redraws with carriage returns)."""
    states = [s for s in re.split(r"[\r\n]", stderr) if s.startswith("Training WGANGP")]
    assert states, stderr
    return states[-1]


def test_progress_bar_counts_the_steps_planned(three_tissues, capfd):
    model = _train(three_tissues, n_steps=20, selection=None)
    bar = _last_bar(capfd.readouterr().err)
    # 54 training samples / 16 = 4 steps an epoch: 20 steps planned and run
    assert model.steps_per_epoch_ == 4
    assert "20/20" in bar
    assert "100%" in bar
    assert "step/s" in bar
    assert "Epoch" not in bar


def test_an_early_stop_completes_the_bar_and_speaks_in_steps(three_tissues, capfd, caplog):
    caplog.set_level(logging.INFO, logger="scgensynth")
    model = _train(
        three_tissues, n_steps=400, selection_every=4, patience=1, min_steps=0, train_size=0.8
    )
    bar = _last_bar(capfd.readouterr().err)
    steps_run = int(model.history_["critic_loss"].index[-1] + 1) * model.steps_per_epoch_
    assert steps_run < 400  # it stopped early ...
    assert f"{steps_run}/{steps_run}" in bar  # ... and the bar ends at the steps run, 100 %
    assert "100%" in bar
    assert "stopped early" in bar
    messages = [r.getMessage() for r in caplog.records]
    stop = [m for m in messages if m.startswith("Stopping at step ")]
    assert stop, messages
    assert f"Stopping at step {steps_run}:" in stop[0]
    assert [m for m in messages if re.match(r"Restored the generator of step \d+ ", m)]
    assert "step" in model.selection_.columns
    per_epoch = model.steps_per_epoch_
    assert (model.selection_["step"] == model.selection_["epoch"] * per_epoch).all()


def test_max_time_is_passed_to_lightning(three_tissues, capfd):
    model = _train(three_tissues, n_steps=10**6, max_time={"seconds": 2}, selection=None)
    bar = _last_bar(capfd.readouterr().err)
    steps_run = int(model.history_["critic_loss"].index[-1] + 1) * model.steps_per_epoch_
    assert 0 < steps_run < 10**6
    assert "max_time reached" in bar
    assert "100%" in bar


def test_no_bar_when_disabled(three_tissues, capfd):
    _train(three_tissues, n_steps=8, selection=None, enable_progress_bar=False)
    assert "Training WGANGP" not in capfd.readouterr().err


def test_steps_per_epoch_survives_save_and_load(three_tissues, tmp_path):
    model = _train(three_tissues, n_steps=8, selection=None, enable_progress_bar=False)
    model.save(tmp_path / "m")
    loaded = sgs.model.WGANGP.load(tmp_path / "m", adata=three_tissues)
    assert loaded.steps_per_epoch_ == 4
