"""benchmarks/bench_gpu.py: the order of its passes, and its CPU smoke mode on a subset.

The benchmark is loaded by path (a script, not part of the package).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
import warnings
from pathlib import Path

import pytest
import torch

import scgensynth as sgs

REPO = Path(__file__).resolve().parents[1]


def _load_benchmark():
    name = "bench_gpu_under_test"
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "bench_gpu.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _order(passes) -> list[tuple[str, str]]:
    return [(p["device"], p["precision"]) for p in passes]


def test_passes_follow_the_precisions_in_the_order_given():
    bench = _load_benchmark()
    default = bench.plan_passes(bench.parse_args([]), cuda=True)
    assert _order(default) == [
        ("gpu", "32-true"), ("cpu", "32-true"), ("gpu", "bf16-mixed"), ("gpu", "16-mixed"),
    ]  # fmt: skip
    args = bench.parse_args(
        ["--precisions", "16-mixed", "32-true", "bf16-mixed", "16-mixed", "--cpu-steps", "0"]
    )
    assert _order(bench.plan_passes(args, cuda=True)) == [
        ("gpu", "32-true"), ("gpu", "16-mixed"), ("gpu", "bf16-mixed"),
    ]  # fmt: skip
    smoke = bench.parse_args(["--cpu-smoke", "--precisions", "16-mixed"])
    assert _order(bench.plan_passes(smoke, cuda=False)) == [("cpu", "32-true")]


@pytest.fixture
def _global_settings_restored():
    """The benchmark quiets loggers and warnings and sets torch options: put them back."""
    names = ("lightning", "lightning.pytorch", "lightning.fabric", "scvi", "scgensynth")
    levels = {name: logging.getLogger(name).level for name in names}
    verbosity = sgs.settings.verbosity
    matmul, threads = torch.get_float32_matmul_precision(), torch.get_num_threads()
    with warnings.catch_warnings():
        yield
    sgs.settings.verbosity = verbosity
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    torch.set_float32_matmul_precision(matmul)
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("_global_settings_restored")
def test_cpu_smoke_on_the_models_it_names(tmp_path, capsys):
    """The changed models on the CPU path: two seeded runs give identical, finite samples."""
    bench = _load_benchmark()
    out = tmp_path / "smoke.json"
    argv = ["--cpu-smoke", "--steps", "3", "--n-genes", "300", "--n-obs", "60",
            "--models", "attgan", "gmda", "--out", str(out)]  # fmt: skip
    assert bench.main(argv) == 0
    result = json.loads(out.read_text())
    assert result["config"]["models"] == ["attgan", "gmda"]
    rows = {r["model"]: r for r in result["rows"]}
    assert set(rows) == {"attgan", "gmda"}
    for name, row in rows.items():
        assert row["status"] == "ok", (name, row)
        assert row["finite"], name
        assert row["losses_finite"] is not False, name
        assert row["identical"] is True, name
    assert "Problems: none." in capsys.readouterr().out
