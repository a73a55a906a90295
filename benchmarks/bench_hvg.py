"""Highly variable genes for CPU training: time and quality at 2,000 / 5,000 / all genes.

On one wide real set (default ``hsmm_myoblast_sc``: 271 single cells, SMART-seq FPKM, 26,521
genes not zero in every cell, 4 time points as the label), prepared and split as the
leaderboard does (``bench_leaderboard.load_dataset`` / ``split_dataset``: a stratified 70/30
split), the genes are subset with ``scanpy.pp.highly_variable_genes`` computed **on the
training part only** (the held-out 30 % never enters the choice), and every generator is
trained on each subset side by side in one process and one run:

- flavor: counts -> ``"seurat_v3"`` on the raw counts; non-negative linear values (FPKM,
  TPM: ``sgs.pp.detect_scaling`` says ``"log1p"``) -> ``"seurat"`` on ``log1p`` of them;
  log-scale data -> ``"seurat"`` as they are. The models are trained on the subset of the
  *original* values (they scale their input themselves);
- fit: ``bench_wide``'s harness (``setup_anndata``, the model, ``model.train`` on the CPU
  with model selection on 10 % of the training part; ``train_s`` from model construction to
  the end of training; ``t95_s``: to 95 % of the run's best selection score);
- samples: as the leaderboard makes them (``sgs.tl.generate`` with the training labels, 10 x
  repeated; the first ``n_train`` are scored, all of them enter ``corr x10``);
- quality, with the leaderboard's metrics (``bench_leaderboard.prepare`` / ``score``: PCA-F1,
  C2ST AUC, correlation score and its ceiling, TSTR/TRTR with logistic regression, DCR
  ratio, nearer-to-training share) **(a)** on the genes the model was trained on (one
  evaluation space per gene set, so rows of different sizes are not comparable there) and
  **(b)** on the common subset, the smallest set's genes (2,000), in one space for every row,
  which makes the comparison fair; the training part itself is scored there as the ceiling;
- time: ``train_s`` of each subset against ``train_s`` on all genes of the same model,
  measured in the same run, plus the seconds of the gene selection itself.

Results: ``<out>.json`` and ``<out>.md`` (default ``benchmarks/results/hvg``). Example::

    OMP_NUM_THREADS=1 python benchmarks/bench_hvg.py --threads 1      # 22 min on 2 shared cores

``--models`` takes options as in ``bench_wide`` (``wgan:n_components=256``); ``--n-steps``
(default 2,000, a tenth of the deep models' default 20,000) caps every learned model.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import logging
import math
import os
import shlex
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "hvg"
DEFAULT_DATASET = "hsmm_myoblast_sc"
DEFAULT_SIZES = ("2000", "5000", "all")
DEFAULT_MODELS = ("gaussian", "wgan")
DEFAULT_STEPS = 2000
SCORED = (
    "precision", "recall", "f1", "c2st_auc", "corr", "corr_ceiling", "corr_x10", "tstr_f1",
    "trtr_f1", "tstr_trtr", "dcr_ratio", "nearer_train", "nearer_expected",
)  # fmt: skip
DATASET_KEYS = ("dataset", "kind", "label", "n_obs", "n_vars", "scaling")
QUIET = ("lightning", "lightning.pytorch", "lightning.fabric", "scvi", "scgensynth")


def _bench_wide():
    """``benchmarks/bench_wide.py`` (its fit and plateau; it loads ``bench_leaderboard``)."""
    name = "bench_wide"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "bench_wide.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _leaderboard():
    return _bench_wide()._leaderboard()


# -- the genes --------------------------------------------------------------------------------
def hvg_flavor(scaling: str) -> str:
    """scanpy's flavor for data of ``scaling`` (``sgs.pp.detect_scaling``'s answer).

    Examples
    --------
    >>> hvg_flavor("counts"), hvg_flavor("log1p"), hvg_flavor("standardize")
    ('seurat_v3', 'seurat', 'seurat')
    """
    return "seurat_v3" if scaling == "counts" else "seurat"


def select_genes(train, n_top: int | None, scaling: str):
    """The ``n_top`` most variable genes of ``train`` (its own rows only), in its gene order.

    ``sc.pp.highly_variable_genes(..., n_top_genes=n_top, flavor=hvg_flavor(scaling))`` on a
    copy: raw counts for ``"seurat_v3"``, ``log1p`` of linear values (``"log1p"``), log-scale
    values as they are. ``n_top`` None or at least the number of genes: every gene.
    """
    import anndata as ad
    import scanpy as sc

    if n_top is None or n_top >= train.n_vars:
        return train.var_names.copy()
    X = _leaderboard()._dense64(train.X)
    if scaling == "log1p":
        X = np.log1p(np.clip(X, 0.0, None))
    data = ad.AnnData(X=X, var=train.var[[]].copy())
    flavor = hvg_flavor(scaling)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.pp.highly_variable_genes(data, n_top_genes=n_top, flavor=flavor, inplace=True)
    return train.var_names[data.var["highly_variable"].to_numpy()]


def parse_size(text: str) -> int | None:
    """``"2000"`` -> 2000, ``"all"`` -> None.

    Examples
    --------
    >>> parse_size("5000"), parse_size("all")
    (5000, None)
    """
    if text == "all":
        return None
    value = int(text)
    if value < 2:
        msg = f"--n-genes takes numbers of at least 2 or 'all'; got {text!r}."
        raise ValueError(msg)
    return value


def gene_sets(train, sizes, scaling: str) -> tuple[dict[str, Any], Any, bool]:
    """Each size's genes and selection seconds; the common subset; whether sets are nested.

    The common subset is the smallest set (the sets of ``"seurat"`` and ``"seurat_v3"`` are
    nested by construction: top-n of one ranking); if a larger set misses some of its genes
    (ties), the intersection of all sets is used instead and ``nested`` is False.
    """
    sets = {}
    for size in sizes:
        t0 = time.perf_counter()
        genes = select_genes(train, parse_size(size), scaling)
        sets[size] = {"genes": genes, "hvg_s": time.perf_counter() - t0}
    smallest = min(sets.values(), key=lambda s: len(s["genes"]))["genes"]
    nested = all(smallest.isin(s["genes"]).all() for s in sets.values())
    common = smallest
    if not nested:
        common = smallest[
            np.logical_and.reduce([smallest.isin(s["genes"]) for s in sets.values()])
        ]
    return sets, common, nested


# -- one fit ----------------------------------------------------------------------------------
def fit_and_score(spec: str, split, common_split, args) -> dict[str, Any]:
    """Train ``spec`` on ``split.train``; its scores on its genes and on the common genes."""
    import anndata as ad
    import pandas as pd

    import scgensynth as sgs

    bw, lb = _bench_wide(), _leaderboard()
    train, label = split.train, split.label
    data = ad.AnnData(X=train.X.copy(), obs=train.obs[[label]].copy(), var=train.var.copy())
    model, times = bw._train(spec, data, label, args)
    record = {"model": spec, "n_genes": int(train.n_vars), **times}
    record.update(bw._plateau(model, times, args.seed))
    t0 = time.perf_counter()
    covariates = pd.DataFrame({label: np.tile(train.obs[label].to_numpy(), lb.CORR_MULTIPLE)})
    synth = sgs.tl.generate(model, covariates=covariates, seed=args.seed)
    record["generate_s"] = time.perf_counter() - t0
    X, y = lb._dense64(synth.X), synth.obs[label].astype(str).to_numpy()
    n = train.n_obs
    own = lb.score(split, X[:n], y[:n])
    own["corr_x10"] = lb.correlation_of_many(split, X)
    cols = train.var_names.get_indexer(common_split.train.var_names)
    common = lb.score(common_split, X[:n, cols], y[:n])
    common["corr_x10"] = lb.correlation_of_many(common_split, X[:, cols])
    record["own"] = {k: float(own[k]) for k in SCORED}
    record["common"] = {k: float(common[k]) for k in SCORED}
    steps = record["steps_run"]
    record["s_per_step"] = record["train_s"] / steps if steps else math.nan
    return record


def ceiling(common_split) -> dict[str, float]:
    """The training part itself scored in the common space (the leaderboard's ``train``)."""
    lb = _leaderboard()
    scores = lb.score(common_split, common_split.train.X, common_split.y_train)
    return {k: float(scores[k]) for k in SCORED if k != "corr_x10"}


def add_ratios(rows: list[dict[str, Any]], reference: int) -> None:
    """``speedup``: train seconds at ``reference`` genes / train seconds of the row."""
    for row in rows:
        ref = [r for r in rows if r["model"] == row["model"] and r["n_genes"] == reference]
        if ref and not row.get("error"):
            row["speedup"] = ref[0]["train_s"] / max(row["train_s"], 1e-9)
            row["time_share"] = 1.0 / row["speedup"]


# -- the run ----------------------------------------------------------------------------------
def run(args) -> dict[str, Any]:
    """Load, split, select genes on the training part, fit and score every (size, model)."""
    lb = _leaderboard()
    adata, info = lb.load_dataset(args.dataset, args.data_dir)
    label, scaling = info["label"], info["scaling"]
    train, test = lb.split_dataset(adata, label, args.seed)
    sets, common, nested = gene_sets(train, args.n_genes, scaling)
    common_split = lb.prepare(
        train[:, common].copy(), test[:, common].copy(), label, seed=args.seed, scaling=scaling
    )
    rows = []
    for size in args.n_genes:
        genes = sets[size]["genes"]
        split = lb.prepare(
            train[:, genes].copy(), test[:, genes].copy(), label, seed=args.seed, scaling=scaling
        )
        for spec in args.models:
            try:
                row = fit_and_score(spec, split, common_split, args)
            except Exception as exc:  # recorded in the row: the run goes on
                row = {
                    "model": spec,
                    "n_genes": len(genes),
                    "error": f"{type(exc).__name__}: {exc}",
                }
            row.update(size=size, hvg_s=sets[size]["hvg_s"])
            rows.append(row)
            _log(row)
    add_ratios(rows, reference=train.n_vars)
    genes_info = {
        size: {"n_genes": len(s["genes"]), "hvg_s": s["hvg_s"]} for size, s in sets.items()
    }
    return {
        "dataset": {k: info[k] for k in DATASET_KEYS},
        "split": {"n_train": int(train.n_obs), "n_test": int(test.n_obs), "seed": args.seed},
        "hvg": {"flavor": hvg_flavor(scaling), "on": "training part only", "sets": genes_info,
                "common_genes": len(common), "nested": bool(nested)},
        "ceiling_common": ceiling(common_split),
        "rows": rows,
    }  # fmt: skip


def _log(row: dict[str, Any]) -> None:
    if row.get("error"):
        print(f"{row['size']} genes / {row['model']}: failed: {row['error']}", flush=True)
        return
    print(
        f"{row['size']} genes / {row['model']}: train {row['train_s']:.1f} s, TSTR/TRTR "
        f"{row['own']['tstr_trtr']:.3f} (common genes {row['common']['tstr_trtr']:.3f})",
        flush=True,
    )


# -- the report -------------------------------------------------------------------------------
def _table(doc: dict[str, Any], part: str) -> list[str]:
    fmt = _bench_wide()._fmt
    out = [
        "| genes | model | train s | s / step | t95 s | vs all genes | F1 | C2ST | "
        "corr / ceil. | corr x10 | TSTR/TRTR | DCR | nearer train (exp.) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        if r.get("error"):
            out.append(
                f"| {r['n_genes']} | {r['model']} | failed: {r['error'][:80]} |" + " |" * 10
            )
            continue
        s = r[part]
        corr = s["corr"] / s["corr_ceiling"] if s["corr_ceiling"] > 0 else math.nan
        cells = [
            f"{r['n_genes']:,}", r["model"], fmt(r["train_s"], ".2f"),
            fmt(r["s_per_step"], ".3f"), fmt(r["t95_s"], ".1f"),
            fmt(r.get("time_share"), ".3f") + " x", fmt(s["f1"], ".3f"),
            fmt(s["c2st_auc"], ".3f"), fmt(corr, ".2f"), fmt(s["corr_x10"], ".3f"),
            fmt(s["tstr_trtr"], ".3f"), fmt(s["dcr_ratio"], ".2f"),
            f"{fmt(s['nearer_train'], '.2f')} ({fmt(s['nearer_expected'], '.2f')})",
        ]  # fmt: skip
        out.append("| " + " | ".join(cells) + " |")
    return out


def summary_lines(doc: dict[str, Any]) -> list[str]:
    """Per model and subset: the time against all genes and TSTR/TRTR on the common genes."""
    ok = [r for r in doc["rows"] if not r.get("error")]
    full = doc["dataset"]["n_vars"]
    lines = []
    for r in ok:
        ref = [a for a in ok if a["model"] == r["model"] and a["n_genes"] == full]
        if r["n_genes"] == full or not ref:
            continue
        a = ref[0]
        lines.append(
            f"- {r['model']} at {r['n_genes']:,} genes: trains {r['speedup']:.1f}x faster than "
            f"at all {full:,} ({r['train_s']:.2f} s vs {a['train_s']:.2f} s; gene selection "
            f"{r['hvg_s']:.2f} s); on the common genes TSTR/TRTR {r['common']['tstr_trtr']:.3f} "
            f"vs {a['common']['tstr_trtr']:.3f}, F1 {r['common']['f1']:.3f} vs "
            f"{a['common']['f1']:.3f}, C2ST {r['common']['c2st_auc']:.3f} vs "
            f"{a['common']['c2st_auc']:.3f}, DCR {r['common']['dcr_ratio']:.2f} vs "
            f"{a['common']['dcr_ratio']:.2f}."
        )
    return lines or ["- (no all-genes row to compare with)"]


def _load(meta: dict[str, Any]) -> str:
    if not meta.get("load"):
        return ""
    first, last = meta["load"]
    return f"; 1-minute load average {first:.1f} at the start, {last:.1f} at the end"


def markdown(doc: dict[str, Any]) -> str:
    """The report: settings, the two quality tables, the time ratios."""
    meta, data, hvg, split = doc["meta"], doc["dataset"], doc["hvg"], doc["split"]
    sizes = ", ".join(f"{s['n_genes']:,} ({s['hvg_s']:.2f} s)" for s in hvg["sets"].values())
    ceil = doc["ceiling_common"]
    out = [
        "# Highly variable genes for CPU training: time and quality",
        "",
        f"- command: `{meta['command']}`",
        f"- date: {meta['date']}; machine: {meta['machine']}; torch/BLAS threads: "
        f"{meta['threads']}; whole run {meta['wall_s'] / 60:.1f} min" + _load(meta),
        "- times come from one run: on a machine shared with other jobs the seconds vary "
        "from run to run (contention slows the longest fits most), so read them as ratios "
        "of that run, not as a machine's speed",
        f"- data: {data['dataset']} ({data['kind']}), {data['n_obs']} samples x "
        f"{data['n_vars']:,} genes (the leaderboard's preparation), label `{data['label']}`, "
        f"scale `{data['scaling']}`; stratified 70/30 split, seed {split['seed']}: "
        f"{split['n_train']} training / {split['n_test']} held-out samples",
        f'- genes: `sc.pp.highly_variable_genes(n_top_genes=..., flavor="{hvg["flavor"]}")` '
        f"on the {hvg['on']}"
        + (" (`log1p` of the values)" if data["scaling"] == "log1p" else "")
        + f"; sizes (selection seconds): {sizes}; common subset {hvg['common_genes']:,} genes"
        + ("" if hvg["nested"] else " (sets not nested: their intersection)"),
        f"- models: {', '.join(f'`{m}`' for m in meta['models'])} at their defaults; learned "
        f"ones capped at {meta['n_steps']:,} steps (batch 32, model selection on 10 % of the "
        "training part, best weights kept); the Gaussian is closed-form",
        "- train s: model construction to the end of training; s / step: train s / steps run; "
        "t95: to 95 % of the run's best selection score; vs all genes: train s / train s of "
        "the same model on all genes (same run). Quality: `bench_leaderboard.score` (PCA-F1, "
        "C2ST AUC, corr / ceiling, TSTR/TRTR with logistic regression, DCR ratio, nearer-"
        "to-training share and its expected value; definitions in `leaderboard.md`)",
        "",
        "## (a) On the genes each model was trained on",
        "",
        "One evaluation space per gene set: compare rows of the same size only.",
        "",
        *_table(doc, "own"),
        "",
        f"## (b) On the common {hvg['common_genes']:,} genes (one space for every row)",
        "",
        f"Ceiling (the training part itself): F1 {ceil['f1']:.3f}, C2ST {ceil['c2st_auc']:.3f}, "
        f"corr {ceil['corr']:.3f} (= ceiling), TRTR F1 {ceil['trtr_f1']:.3f}, nearer train "
        f"{ceil['nearer_train']:.2f}.",
        "",
        *_table(doc, "common"),
        "",
        "## Time against all genes, quality on the common genes",
        "",
        *summary_lines(doc),
    ]
    return "\n".join(out) + "\n"


# -- the command line -------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default=DEFAULT_DATASET,
                   help=f"a leaderboard dataset (default {DEFAULT_DATASET})")  # fmt: skip
    p.add_argument("--n-genes", nargs="+", default=list(DEFAULT_SIZES),
                   help="gene-set sizes, numbers or 'all' (default: 2000 5000 all)")  # fmt: skip
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                   help="registered generators, options as name:key=value (default: gaussian "
                   "wgan)")  # fmt: skip
    p.add_argument("--n-steps", type=int, default=DEFAULT_STEPS,
                   help=f"length of every learned model (default {DEFAULT_STEPS})")  # fmt: skip
    p.add_argument("--eval-every", type=int, default=None,
                   help="steps between selection evaluations (default 1/40 of a run)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="split and training seed (default 0)")
    p.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (default 1)")
    p.add_argument("--data-dir", type=Path, default=None, help="the shared datasets")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output stem (.json, .md)")
    args = p.parse_args(argv)
    lb = _leaderboard()
    if args.dataset not in lb.DATASETS:
        p.error(f"unknown dataset {args.dataset!r}; choose from {list(lb.DATASETS)}")
    for size in args.n_genes:
        try:
            parse_size(size)
        except ValueError as err:
            p.error(str(err))
    if len(set(args.n_genes)) != len(args.n_genes):
        p.error(f"a size is named twice: {args.n_genes}")
    args.max_minutes = None  # bench_wide's fit reads it
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    import scgensynth as sgs

    known = set(sgs.model.available().index)
    unknown = sorted({_bench_wide().parse_model(m)[0] for m in args.models} - known)
    if unknown:
        msg = f"Unknown models {unknown}; registered: {sorted(known)}."
        raise SystemExit(msg)
    lb = _leaderboard()
    start, t0 = dt.datetime.now(dt.UTC), time.perf_counter()
    load_start = os.getloadavg()[0]
    levels = {n: logging.getLogger(n).level for n in QUIET}
    try:
        for name in QUIET:
            logging.getLogger(name).setLevel(logging.ERROR)
        with lb.quiet_and_limited(args.threads), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            doc = run(args)
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    doc["meta"] = {
        "command": shlex.join(["python", "benchmarks/bench_hvg.py", *argv]),
        "date": start.isoformat(timespec="seconds"),
        "machine": lb.machine(),
        "threads": args.threads,
        "models": list(args.models),
        "n_steps": args.n_steps,
        "wall_s": time.perf_counter() - t0,
        "load": [load_start, os.getloadavg()[0]],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps(lb._jsonable(doc), indent=1) + "\n")
    Path(f"{args.out}.md").write_text(markdown(doc))
    print(f"Wrote {args.out}.json and {args.out}.md ({doc['meta']['wall_s'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
