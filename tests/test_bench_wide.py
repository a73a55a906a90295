"""benchmarks/bench_wide.py (time to quality at ~20,000 genes) on a short slice.

The benchmark is loaded by path (a script, not part of the package). Its data here is the
bladderbatch fixture of ``tests/data`` (22,283 probes), the set its synthetic low-rank
matrix is fitted to.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"


def _load_benchmark():
    name = "bench_wide_under_test"
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "bench_wide.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bw = _load_benchmark()


def test_time_to_plateau_is_the_first_evaluation_at_95_percent():
    curve = pd.DataFrame(
        {
            "epoch": [5, 10, 15, 20],
            "seconds": [3.0, 6.0, 9.0, 12.0],
            "score": [0.2, 0.6, 0.58, 0.62],
        }
    )
    assert bw.time_to_plateau(curve) == (6.0, 0.62, 10)
    assert bw.time_to_plateau(curve, share=1.0) == (12.0, 0.62, 20)


def test_lowrank_matrix_keeps_bladderbatch_structure():
    """Class means, per-gene spread and gene-gene correlations of the real set."""
    import scgensynth as sgs

    lb = bw._leaderboard()
    real, info = lb.load_dataset("bladderbatch", DATA)
    synth, label = bw.lowrank_dataset(n_obs=400, n_genes=3000, seed=0, data_dir=DATA)
    assert synth.shape == (400, 3000)
    assert label == info["label"]
    real = real[:, synth.var_names]
    share_real = real.obs[label].value_counts(normalize=True).sort_index()
    share_synth = synth.obs[label].value_counts(normalize=True).sort_index()
    np.testing.assert_allclose(share_synth.to_numpy(), share_real.to_numpy(), atol=0.08)
    X, S = np.asarray(real.X, dtype=np.float64), np.asarray(synth.X, dtype=np.float64)
    for c in share_real.index:
        m_real = X[(real.obs[label] == c).to_numpy()].mean(0)
        m_synth = S[(synth.obs[label] == c).to_numpy()].mean(0)
        assert np.corrcoef(m_real, m_synth)[0, 1] > 0.99
    ratio = S.std(0) / X.std(0)
    assert 0.8 < np.median(ratio) < 1.25
    assert sgs.metrics.correlation_score(X, S, max_genes=500) > 0.8


def test_short_run_writes_side_by_side_rows(tmp_path):
    out = tmp_path / "wide"
    args = ["--datasets", "bladderbatch", "--models", "gaussian", "wgan", "--n-steps", "40"]
    assert bw.main([*args, "--data-dir", str(DATA), "--out", str(out)]) == 0
    payload = json.loads(Path(f"{out}.json").read_text())
    rows = {r["model"]: r for r in payload["rows"]}
    assert set(rows) == {"gaussian", "wgan"}
    assert not any(r.get("error") for r in rows.values())
    gauss, wgan = rows["gaussian"], rows["wgan"]
    # the closed-form default: one evaluation after its fit, a real plateau
    assert gauss["evaluations"] == 1
    assert gauss["steps_run"] == 0
    assert not gauss["capped"]
    assert gauss["t95_s"] == pytest.approx(gauss["train_s"])
    assert 0.5 < gauss["plateau"] <= 1.0
    assert gauss["tstr_trtr"] > 0.8  # its samples teach a classifier the real classes
    # the learned model: scored during training, capped far below its default length
    assert wgan["evaluations"] >= 2
    assert wgan["capped"]
    assert 0 < wgan["t95_step"] <= wgan["steps_run"] <= 40
    assert wgan["t95_s"] <= wgan["train_s"]
    for r in rows.values():
        assert r["n_genes"] == 22283
        assert r["peak_rss_mib"] > 0
    report = Path(f"{out}.md").read_text()
    assert "| bladderbatch | gaussian |" in report
    assert "faster than the WGAN-GP" in report
    assert "a lower bound" in report


def test_gpu_benchmark_cpu_smoke_path(tmp_path):
    """benchmarks/bench_gpu.py's code path on the CPU (the suite never needs a GPU)."""
    spec = importlib.util.spec_from_file_location(
        "bench_gpu_under_test", REPO / "benchmarks" / "bench_gpu.py"
    )
    bg = importlib.util.module_from_spec(spec)
    sys.modules["bench_gpu_under_test"] = bg
    spec.loader.exec_module(bg)
    out = tmp_path / "gpu.json"
    args = ["--cpu-smoke", "--steps", "3", "--n-genes", "300", "--n-obs", "64"]
    assert bg.main([*args, "--models", "gaussian", "wgan", "--out", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert not payload["environment"]["cuda"]
    assert payload["problems"] == []
    rows = {r["model"]: r for r in payload["rows"]}
    assert set(rows) == {"gaussian", "wgan"}
    for r in rows.values():
        assert r["status"] == "ok"
        assert r["finite"]
        assert r["identical"]  # same seed, same samples
        assert r["sample_shape"][1] == 300
    assert rows["wgan"]["steps"] == 3
    assert rows["wgan"]["losses_finite"]
    assert rows["wgan"]["steps_per_s"] > 0
