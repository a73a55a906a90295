"""benchmarks/bench_counts.py (counts in, counts out) on a short slice of a shared counts set.

The benchmark is loaded by path (a script, not part of the package); its data are the
shared raw GTEx counts.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path("/work/shared/data")


def _load_benchmark():
    name = "bench_counts_under_test"
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "bench_counts.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bc = _load_benchmark()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("results") / "counts"
    argv = [
        "--datasets", "gtex_muscle_gwena", "--models", "gaussian", "--n-genes", "400",
        "--n-splits", "2", "--n-sets", "2", "--n-boot", "30", "--data-dir", str(DATA),
        "--out", str(out),
    ]  # fmt: skip
    assert bc.main(argv) == 0
    return out


def test_the_run_writes_both_files_with_the_reference_and_the_default(run):
    result = json.loads(Path(f"{run}.json").read_text())
    assert result["meta"]["command"].startswith("python benchmarks/bench_counts.py")
    assert result["meta"]["n_splits"] == 2
    (row,) = result["rows"]
    assert row["dataset"] == "gtex_muscle_gwena"
    assert row["n_train"] + row["n_held_out"] == 50
    assert row["n_genes"] == 400
    assert set(row["reference"]) == set(bc.SCORES)
    assert row["reference"]["r_logmean"]["mean"] > 0.95  # real halves agree on the means
    gaussian = row["models"]["gaussian"]
    assert gaussian["checks"] == {
        "integer": True, "non_negative": True, "library_sizes_from_training": True,
    }  # fmt: skip
    scores, within = gaussian["scores"], gaussian["within"]
    # the default rounds the mean at random, poisson draws around it: each scores as the
    # numpy control of the same kind does
    for key in ("in_var_low", "var_ratio_low", "bias_low"):
        assert scores["sample (default)"][key]["mean"] == pytest.approx(
            scores["stochastic rounding"][key]["mean"], abs=0.05
        )
        assert scores["poisson"][key]["mean"] == pytest.approx(
            scores["Poisson(mean)"][key]["mean"], abs=0.05
        )
    # a copy of the training distribution: real rows resampled, scored like a synthetic set
    assert set(row["resampled"]) == set(bc.SCORES)
    assert row["resampled"]["in_mean"]["mean"] < row["reference"]["in_mean"]["mean"]
    # a wrong mean is beyond the sampling noise; the expected counts' means are not
    assert not within["Poisson(2 mean)"]["in_mean"]
    assert not within["Poisson(2 mean)"]["bias_low"]
    assert within["sample (default)"]["bias_low"]
    # ten times as many samples: less of the draws' own noise, means nearer the held-out ones
    big = scores[f"sample, {bc.BIG} x n_train"]
    assert big["in_mean"]["mean"] > scores["sample (default)"]["in_mean"]["mean"]
    md = Path(f"{run}.md").read_text()
    assert "| real-train (reference) |" in md
    assert "| gaussian: sample (default) |" in md
    assert "✗" in md.split("Poisson(2 mean)")[1].split("\n")[0]


def test_scores_on_known_values():
    held = np.array([[0.0, 10.0, 100.0], [2.0, 14.0, 120.0], [1.0, 12.0, 80.0]])
    ref = bc.held_out_intervals(held, n_boot=50, seed=0)
    ref["mid"] = np.array([False, True, True])
    low = np.array([True, False, False])
    same = bc.agreement(held, ref, low)
    assert same["r_logmean"] == pytest.approx(1.0)
    assert same["in_mean"] == 1.0
    assert same["bias_low"] == 0.0
    assert same["var_ratio_mid"] == 1.0
    doubled = bc.agreement(2 * held, ref, low)
    assert doubled["in_mean"] < 1.0
    assert doubled["bias_low"] > 0.4


def test_within_is_two_split_standard_deviations():
    reference = {"mean": 0.8, "sd": 0.05}
    assert bc.within("in_mean", 0.71, reference)
    assert not bc.within("in_mean", 0.69, reference)
    assert bc.within("in_mean", 0.99, reference)  # higher is never worse
    assert not bc.within("bias_low", 0.91, reference)
    assert bc.within("bias_low", 0.75, reference)


def test_a_missing_data_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"--data-dir"):
        bc.load("gtex_muscle_gwena", tmp_path)
