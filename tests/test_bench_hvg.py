"""benchmarks/bench_hvg.py (highly variable genes: time and quality per gene count) in small.

The benchmark is loaded by path (a script, not part of the package). Its short run here uses
the bladderbatch fixture of ``tests/data`` (22,283 probes, log scale); the flavor checks use
the shared FPKM and count sets.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import scanpy as sc

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
SHARED = Path("/work/shared/data")  # the shared real datasets, as the other tests read them


def _load_benchmark():
    name = "bench_hvg_under_test"
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "bench_hvg.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bh = _load_benchmark()
lb = bh._leaderboard()


@pytest.mark.parametrize(
    ("dataset", "scaling", "flavor"),
    [("hsmm_myoblast_sc", "log1p", "seurat"), ("gtex_brain_damirseq", "counts", "seurat_v3")],
)
def test_gene_selection_is_scanpys_on_the_right_values(dataset, scaling, flavor):
    """FPKM: seurat on log1p of the values; counts: seurat_v3 on the raw counts."""
    adata, info = lb.load_dataset(dataset, SHARED)
    assert info["scaling"] == scaling
    train, _ = lb.split_dataset(adata, info["label"], 0)
    genes = bh.select_genes(train, 500, scaling)
    X = np.asarray(train.X, dtype=np.float64)
    values = np.log1p(X) if scaling == "log1p" else X
    ref = ad.AnnData(X=values, var=train.var[[]].copy())
    sc.pp.highly_variable_genes(ref, n_top_genes=500, flavor=flavor)
    assert list(genes) == list(train.var_names[ref.var["highly_variable"].to_numpy()])
    assert len(genes) == 500
    # not simply the genes of largest variance on the input scale
    by_variance = train.var_names[np.argsort(-X.var(axis=0))[:500]]
    assert len(set(genes) & set(by_variance)) < 400
    assert list(bh.select_genes(train, None, scaling)) == list(train.var_names)


def test_short_run_writes_both_quality_views(tmp_path, monkeypatch):
    seen = []  # the samples every gene selection was computed on
    select = bh.select_genes

    def spy(train, n_top, scaling):
        seen.append(set(train.obs_names))
        return select(train, n_top, scaling)

    monkeypatch.setattr(bh, "select_genes", spy)
    out = tmp_path / "hvg"
    args = ["--dataset", "bladderbatch", "--data-dir", str(DATA), "--n-genes", "300", "1000"]
    args += ["all", "--models", "gaussian", "wgan", "--n-steps", "20", "--out", str(out)]
    assert bh.main(args) == 0
    doc = json.loads(Path(f"{out}.json").read_text())

    # no leakage: every selection saw the training part of the split, never a held-out sample
    adata, info = lb.load_dataset("bladderbatch", DATA)
    train, test = lb.split_dataset(adata, info["label"], 0)
    assert seen == [set(train.obs_names)] * 3
    assert doc["split"] == {"n_train": train.n_obs, "n_test": test.n_obs, "seed": 0}
    assert doc["hvg"]["flavor"] == "seurat"
    assert doc["hvg"]["common_genes"] == 300
    assert doc["hvg"]["nested"]

    rows = {(r["n_genes"], r["model"]): r for r in doc["rows"]}
    assert set(rows) == {(n, m) for n in (300, 1000, 22283) for m in ("gaussian", "wgan")}
    for (n_genes, model), r in rows.items():
        assert not r.get("error")
        assert set(r["own"]) == set(bh.SCORED) == set(r["common"])
        for part in ("own", "common"):
            s = r[part]
            assert 0.0 <= s["f1"] <= 1.0
            assert 0.0 <= s["c2st_auc"] <= 1.0
            assert 0.0 <= s["tstr_trtr"] <= 1.5
            assert s["dcr_ratio"] > 0.0
            assert 0.0 < s["corr_ceiling"] <= 1.0
        assert r["train_s"] > 0.0
        assert r["generate_s"] > 0.0
        assert r["speedup"] == pytest.approx(rows[(22283, model)]["train_s"] / r["train_s"])
        if n_genes == 300:  # the common genes are these: both views are the same space
            assert r["common"] == pytest.approx(r["own"], nan_ok=True)
    # the Gaussian is closed-form; the WGAN-GP ran its capped steps
    assert rows[(22283, "gaussian")]["steps_run"] == 0
    assert rows[(300, "gaussian")]["s_per_step"] is None  # no steps (NaN, null in JSON)
    for n_genes in (300, 1000, 22283):
        assert 0 < rows[(n_genes, "wgan")]["steps_run"] <= 20
    # the Gaussian's samples teach a classifier the real classes on all genes
    assert rows[(22283, "gaussian")]["own"]["tstr_trtr"] > 0.8
    ceiling = doc["ceiling_common"]
    assert ceiling["dcr_ratio"] == 0.0  # the training part copies itself
    assert ceiling["trtr_f1"] > 0.5

    report = Path(f"{out}.md").read_text()
    assert "## (a) On the genes each model was trained on" in report
    assert "## (b) On the common 300 genes" in report
    assert "--n-steps 20" in report
    assert "wgan at 1,000 genes: trains" in report


@pytest.mark.parametrize(
    "args",
    [["--n-genes", "1"], ["--n-genes", "many"], ["--dataset", "nope"], ["--n-genes", "5", "5"]],
)
def test_bad_arguments_are_refused(args):
    with pytest.raises(SystemExit):
        bh.parse_args(args)
