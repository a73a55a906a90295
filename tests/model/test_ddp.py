"""Data-parallel training through Lightning's DDP strategy, on 2 CPU processes."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import scgensynth as sgs


def _has_training_plan(name: str) -> bool:
    return sgs.model.get_model_class(name)._training_plan_cls is not None


#: every generator trained with Lightning's engine, i.e. with a training plan (the noise
#: baseline learns nothing), and the perturbation generator
MODELS = [*filter(_has_training_plan, sgs.model.available().index), "tspg"]

#: the generators trained with DP-SGD, data-parallel too
PRIVATE = [
    f"{name}+dp"
    for name in MODELS
    if name != "tspg" and sgs.model.get_model_class(name)._private_plan_cls is not None
]

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import lightning.pytorch as pl
    import numpy as np, torch
    import scgensynth as sgs

    out, names = sys.argv[1], sys.argv[2:]
    torch.set_num_threads(1)
    adata = sgs.datasets.gtex_tissues()[:, :60].copy()

    class Count(pl.Callback):
        def __init__(self):
            self.seen = {"batches": 0}

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.seen["batches"] += 1
            self.seen["world"] = trainer.world_size
            self.seen["epochs"] = trainer.current_epoch + 1

    # one launch trains every model: Lightning starts the second process once and both
    # processes run this script, model after model, in the same process group
    for name in names:
        count = Count()
        kw = dict(
            seed=0, n_steps=64, batch_size=32, accelerator="cpu", devices=2,
            strategy="ddp_find_unused_parameters_true", enable_progress_bar=False,
            callbacks=[count],
        )
        if name == "tspg":
            model = sgs.tl.train_tspg(adata, "tissue", classifier_steps=24, **kw)
            samples = sgs.tl.perturb(adata[:30], model, target="Liver").X
        else:
            cls = sgs.model.get_model_class(name.removesuffix("+dp"))
            small = dict(cls.quick_kwargs)
            if name.endswith("+dp"):  # differentially private training (DP-SGD)
                kw.update(privacy={"epsilon": 10}, scaling="none")
                small.update(cls.private_kwargs)
            model = sgs.tl.train(
                adata, name.removesuffix("+dp"), categorical_covariate_keys=["tissue"],
                **kw, **small
            )
            samples = sgs.tl.generate(model, n_obs=30, seed=1).X
            count.seen["privacy"] = getattr(model, "privacy_", None)
        rank = int(os.environ.get("LOCAL_RANK", 0))
        np.save(f"{out}/{name}_rank{rank}.npy", samples)
        json.dump(count.seen, open(f"{out}/{name}_rank{rank}.json", "w"))
    """
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Run the script once on 2 CPU processes; its output folder."""
    out = tmp_path_factory.mktemp("ddp")
    script = out / "train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(script), str(out), *MODELS, *PRIVATE],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.mark.parametrize("name", MODELS)
def test_two_cpu_processes_train_one_model(name, trained):
    ranks = [json.loads((trained / f"{name}_rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    # each process takes half of every epoch's mini-batches: 468 training samples (90 %
    # of 520), 234 per process, in batches of 32 (one process alone would take 15)
    per_epoch = math.ceil(math.ceil(520 * 0.9) / 2 / 32)
    assert per_epoch == 8
    assert [r["batches"] for r in ranks] == [per_epoch * r["epochs"] for r in ranks]
    assert ranks[0]["batches"] >= 64, "n_steps counts optimiser steps in each process"
    # gradients are averaged across processes, so both end with the same model
    samples = [np.load(trained / f"{name}_rank{r}.npy") for r in (0, 1)]
    np.testing.assert_array_equal(samples[0], samples[1])
    assert np.isfinite(samples[0]).all()


@pytest.mark.parametrize("name", PRIVATE)
def test_two_cpu_processes_train_privately(name, trained):
    ranks = [json.loads((trained / f"{name}_rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    # every row trains (no held-out part under privacy): 260 per process, 9 batches of 32
    per_epoch = math.ceil(520 / 2 / 32)
    assert [r["batches"] for r in ranks] == [per_epoch * r["epochs"] for r in ranks]
    record = ranks[0]["privacy"]
    assert ranks[1]["privacy"] == record
    assert record["steps"] == ranks[0]["batches"]  # one private update per batch
    # the two processes' Poisson batches together sample all rows at 2 x 32 / 520
    assert record["sample_rate"] == pytest.approx(64 / 520)
    assert 0.9 * 10 <= record["epsilon"] <= 10 * 1.001
    samples = [np.load(trained / f"{name}_rank{r}.npy") for r in (0, 1)]
    np.testing.assert_array_equal(samples[0], samples[1])  # the noisy sums were shared
    assert np.isfinite(samples[0]).all()


@pytest.mark.parametrize("name", MODELS)
def test_mixed_precision_trains_every_generator(name):
    # bf16 autocast runs on CPUs too; on a GPU pass precision="16-mixed" or "bf16-mixed"
    adata = sgs.datasets.gtex_tissues()[:, :60].copy()
    kw = {"n_steps": 40, "precision": "bf16-mixed", "accelerator": "cpu"}
    kw["enable_progress_bar"] = False
    if name == "tspg":
        model = sgs.tl.train_tspg(adata, "tissue", classifier_steps=20, **kw)
        synth = sgs.tl.perturb(adata[:20], model, target="Liver")
    else:
        small = sgs.model.get_model_class(name).quick_kwargs
        model = sgs.tl.train(adata, name, categorical_covariate_keys=["tissue"], **kw, **small)
        synth = sgs.tl.generate(model, n_obs=20, seed=0)
    assert model.trainer.precision == "bf16-mixed"
    assert synth.X.dtype == np.float32
    assert np.isfinite(synth.X).all()
