"""benchmarks/bench_privacy.py (the privacy/utility trade-off) on a small slice.

The benchmark is loaded by path (a script, not part of the package). Its slice here: GTEx
(bundled) subsampled to 300 samples, the Gaussian only, ε = 10 and ∞, one seed.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _load_benchmark():
    name = "bench_privacy_under_test"
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "bench_privacy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bp = _load_benchmark()


def test_split_is_stratified_disjoint_and_50_25_25():
    adata, info = bp.load_dataset("gtex_tissues", bp.lb.default_data_dir(), max_obs=300)
    assert adata.n_obs == 300
    parts = bp.split_three(adata, "tissue", seed=0)
    sizes = [parts.private.n_obs, parts.public.n_obs, parts.test.n_obs]
    assert sizes == [150, 75, 75]
    names = [set(p.obs_names) for p in (parts.private, parts.public, parts.test)]
    assert not (names[0] & names[1])
    assert not (names[0] & names[2])
    assert not (names[1] & names[2])
    for part in (parts.private, parts.public, parts.test):  # every tissue in every part
        assert set(part.obs["tissue"].astype(str)) == set(info["classes"])


def test_private_models_are_the_registered_ones_that_support_privacy():
    import scgensynth as sgs

    models = bp.private_models()
    assert {"gaussian", "wgan"} <= set(models)
    assert "noise" not in models
    assert "gan" not in models
    assert set(models) <= set(sgs.model.available().index)
    with pytest.raises(ValueError, match="supports_privacy"):
        bp.private_models(["noise"])


def test_auc_bound_of_the_guarantee():
    assert bp.auc_bound(math.inf, 1e-4) == 1.0
    bounds = [bp.auc_bound(e, 1e-4) for e in (0.01, 1.0, 3.0, 10.0)]
    assert bounds[0] == pytest.approx(0.5, abs=0.01)
    assert np.all(np.diff(bounds) > 0)
    assert 0.70 < bounds[1] < 0.76  # ε = 1 already allows a fair attack


def test_gaussian_slice_writes_the_trade_off(tmp_path):
    out = tmp_path / "privacy"
    args = ["--datasets", "gtex_tissues", "--models", "gaussian", "--epsilons", "10", "inf"]
    doc = bp.main([*args, "--seeds", "0", "--max-obs", "300", "--out", str(out)])
    written = json.loads(Path(f"{out}.json").read_text())
    assert written["rows"] == doc["rows"]
    assert {(r["row"], r["epsilon_target"]) for r in written["summary"]} == {
        ("gaussian", 10.0),
        ("gaussian", None),  # JSON's ∞
        ("gaussian_default", None),
    }
    rows = {(r["row"], r["mode"]): r for r in doc["rows"]}
    assert set(rows) == {
        ("gaussian", "private"),
        ("gaussian", "noise_free"),
        ("gaussian_default", "reference"),
    }
    assert not any(r["error"] for r in rows.values())
    private, free = rows[("gaussian", "private")], rows[("gaussian", "noise_free")]
    reference = rows[("gaussian_default", "reference")]
    # the budget: spent within the target, δ below 1/n, noise actually added
    assert 0 < private["dp_epsilon"] <= private["epsilon_target"] + 1e-9
    assert 0 < private["dp_delta"] < 1 / 150
    assert private["dp_noise_multiplier"] > 0.3
    assert free["dp_noise_multiplier"] < 0.01
    assert reference["dp_epsilon"] is None  # not private: no record
    assert all(r["record_in_samples"] for r in rows.values())  # samples carry the record
    # utility: far above chance (macro-F1 ratio ~0.04 for 26 tissues) without noise, and
    # the noise costs some of it
    assert reference["tstr_trtr"] > 0.9
    assert free["tstr_trtr"] > 0.5
    assert private["tstr_trtr"] < free["tstr_trtr"]
    for r in rows.values():
        assert r["n_members"] == 150
        assert r["n_nonmembers"] == 75
        for attack in bp.ATTACKS:
            low, auc, high = (r[f"{attack}_{s}"] for s in ("low", "auc", "high"))
            assert 0.0 <= low <= auc <= high <= 1.0
    # a non-private Gaussian of 150 samples gives its members away; the private one less so
    assert reference["distance_auc"] > 0.6
    assert private["distance_auc"] < reference["distance_auc"]
    report = Path(f"{out}.md").read_text()
    assert "python benchmarks/bench_privacy.py --datasets gtex_tissues" in report
    assert "| gaussian | 10 | " in report
    assert "## Reading" in report
    assert "TSTR/TRTR: gaussian ε = 10: " in report
    assert "logistic regression" in report
    assert f"k={bp.lb.K}" in report
    assert "a slice, not the full benchmark" in report
    # the report is rebuilt from the JSON alone, identically
    Path(f"{out}.md").unlink()
    bp.main(["--report-only", "--out", str(out)])
    assert Path(f"{out}.md").read_text() == report
