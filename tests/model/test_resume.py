"""Checkpoints during training; a killed training process resumes to the same result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import scgensynth as sgs
from scgensynth.model import ModelFileError


def _one_model_per_training_plan() -> list[str]:
    """The first registered generator of each training plan (AttGAN shares WGAN-GP's), TSPG."""
    plans = {}
    for name in sgs.model.available().index:
        plan = sgs.model.get_model_class(name)._training_plan_cls
        if plan is not None:  # the noise baseline learns nothing: no run to resume
            plans.setdefault(plan, name)
    return [*plans.values(), "tspg"]


PLANS = _one_model_per_training_plan()
#: small networks (each class's quick_kwargs) keep every plan's model selection, which the
#: checkpoint holds, cheap enough to test (DDPM's samples with 50 DDIM steps per evaluation)
SETUP = {"seed": 3, "n_steps": 96, "batch_size": 64, "checkpoint_every": 2}
#: TSPG's classifier phase (24 steps = 3 epochs of 8 batches) ends before the kill at epoch 6:
#: the resumed run must know it is in the adversarial phase
EXTRA = {"tspg": {"n_steps": 72, "classifier_steps": 24}}

SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys
    import numpy as np, torch
    import lightning.pytorch as pl
    import scgensynth as sgs

    sgs.settings.verbosity = "info"  # the test reads the "Resumed training from" line
    name, out, kill_at, resume = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
    torch.set_num_threads(1)
    adata = sgs.datasets.gtex_tissues()[:, :60].copy()

    class Kill(pl.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch + 1 == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)  # no clean-up, as with a node failure

    kw = {"checkpoint_dir": out + "/ckpt", "resume": resume, "enable_progress_bar": False,
          "callbacks": [Kill()], **json.loads(sys.argv[5])}
    if name == "tspg":
        model = sgs.tl.train_tspg(adata, "tissue", **kw)
    else:
        small = sgs.model.get_model_class(name).quick_kwargs
        model = sgs.tl.train(adata, name, categorical_covariate_keys=["tissue"], **kw, **small)
    model.save(out + "/model", overwrite=True)
    """
)


def _run(script: Path, name: str, out: Path, kill_at: int, resume: bool, **extra) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    args = [sys.executable, str(script), name, str(out), str(kill_at), str(int(resume))]
    setup = json.dumps({**SETUP, **EXTRA.get(name, {}), **extra})
    proc = subprocess.run([*args, setup], env=env, capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stderr


def _train_here(name: str, adata, folder=None, **kwargs):
    torch.set_num_threads(1)
    kw = {"enable_progress_bar": False, "checkpoint_dir": folder}
    kw.update({**SETUP, **EXTRA.get(name, {}), **kwargs})
    if name == "tspg":
        return sgs.tl.train_tspg(adata, "tissue", **kw)
    small = sgs.model.get_model_class(name).quick_kwargs
    return sgs.tl.train(adata, name, categorical_covariate_keys=["tissue"], **kw, **small)


def _samples(model, adata) -> np.ndarray:
    if isinstance(model, sgs.model.TSPG):
        return sgs.tl.perturb(adata[:40], model, target="Liver").X
    return sgs.tl.generate(model, n_obs=40, seed=1).X


@pytest.fixture(scope="module")
def adata():
    return sgs.datasets.gtex_tissues()[:, :60].copy()


@pytest.mark.parametrize("name", PLANS)
def test_a_killed_run_resumes_to_the_uninterrupted_result(name, adata, tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    out = tmp_path / "run"
    code, err = _run(script, name, out, kill_at=6, resume=False)
    assert code == -9, f"the run was not killed (exit {code}): {err[-2000:]}"
    assert not (out / "model").exists()
    assert sorted(p.name for p in (out / "ckpt").iterdir()) == ["last.ckpt"]  # no debris
    code, err = _run(script, name, out, kill_at=0, resume=True)
    assert code == 0, err[-3000:]
    assert "Resumed training from" in err
    resumed = sgs.model.load_model(out / "model", adata=adata)

    whole = _train_here(name, adata, tmp_path / "whole")
    for key, value in whole.module.state_dict().items():
        torch.testing.assert_close(resumed.module.state_dict()[key], value, rtol=0, atol=0)
    np.testing.assert_array_equal(_samples(resumed, adata), _samples(whole, adata))
    assert set(resumed.history_) == set(whole.history_)
    for key, frame in whole.history_.items():
        np.testing.assert_array_equal(
            resumed.history_[key].to_numpy(float), frame.to_numpy(float), err_msg=key
        )
    assert getattr(resumed, "best_epoch_", None) == getattr(whole, "best_epoch_", None)


PRIVATE = [
    n for n in PLANS if n != "tspg" and sgs.model.get_model_class(n)._private_plan_cls is not None
]


@pytest.mark.parametrize("name", PRIVATE)
def test_a_killed_private_run_resumes_with_its_accounting(name, adata, tmp_path):
    # DP-SGD: the Poisson batches, the noise and the accountant continue exactly
    cls = sgs.model.get_model_class(name)
    private = {"privacy": {"epsilon": 10}, "scaling": "none", **cls.private_kwargs}
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    out = tmp_path / "run"
    code, err = _run(script, name, out, kill_at=6, resume=False, **private)
    assert code == -9, f"the run was not killed (exit {code}): {err[-2000:]}"
    code, err = _run(script, name, out, kill_at=0, resume=True, **private)
    assert code == 0, err[-3000:]
    assert "Resumed training from" in err
    resumed = sgs.model.load_model(out / "model", adata=adata)
    whole = _train_here(name, adata, tmp_path / "whole", **private)
    assert resumed.privacy_ == whole.privacy_
    assert whole.privacy_["steps"] == 99  # 96 steps: 11 epochs of ceil(520 / 64) = 9 batches
    for key, value in whole.module.state_dict().items():
        torch.testing.assert_close(resumed.module.state_dict()[key], value, rtol=0, atol=0)


def test_checkpoints_hold_only_tensors_and_plain_values(adata, tmp_path):
    _train_here("gmda", adata, tmp_path, n_steps=60)
    checkpoint = torch.load(tmp_path / "last.ckpt", weights_only=True)  # no pickled objects
    state = checkpoint["callbacks"]["ResumableCheckpoint"]
    assert state["fingerprint"]["class"] == "GMDA"
    assert set(state["history"]) >= {"gmda_loss", "selection_score"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_resuming_another_run_is_refused(adata, tmp_path):
    _train_here("wgan", adata, tmp_path, n_steps=60)
    with pytest.raises(ValueError, match=r"another training run \(batch_size: 64 then, 32 now"):
        _train_here("wgan", adata, tmp_path, n_steps=60, batch_size=32, resume=True)


def test_resume_needs_a_folder_and_starts_afresh_without_a_checkpoint(adata, tmp_path, sgs_logs):
    with pytest.raises(ValueError, match="resume=True needs the checkpoint_dir"):
        _train_here("wgan", adata, None, n_steps=60, resume=True)
    with pytest.raises(ValueError, match="checkpoint_every must be a positive number"):
        _train_here("wgan", adata, tmp_path / "x", n_steps=60, checkpoint_every=0)
    with sgs_logs() as records:
        model = _train_here("wgan", adata, tmp_path / "new", n_steps=60, resume=True)
    assert model.is_trained_
    assert any("No checkpoint in" in r.getMessage() for r in records)
    with sgs_logs() as records:
        _train_here("wgan", adata, tmp_path / "new", n_steps=60)
    assert any("Replacing the checkpoint" in r.getMessage() for r in records)


def test_a_pickle_checkpoint_is_refused_without_running(adata, tmp_path):
    class Payload:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "ran",))

    torch.save({"state_dict": {}, "loops": Payload()}, tmp_path / "last.ckpt")
    with pytest.raises(ModelFileError, match="plain tensors and numbers"):
        _train_here("wgan", adata, tmp_path, n_steps=60, resume=True)
    assert not (tmp_path / "ran").exists()
    torch.load(tmp_path / "last.ckpt", weights_only=False)  # the payload was live
    assert (tmp_path / "ran").exists()
