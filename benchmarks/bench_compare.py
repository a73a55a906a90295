"""The survey's comparison on the bundled GTEx set: every registered generator, full length.

Runs ``sgs.tl.compare_generators(gtex, "tissue", test_size=0.3, seed=0)`` with each
model's default training length (20,000 steps for the adversarial models), the full metric
suite, precision/recall with k=5 and logistic-regression classifiers (the criterion of
issue 4: a classifier trained on synthetic samples, tested on held-out real ones, against
one trained on the real training part). Every model sees the same split, so the models can
run in parallel processes (``--jobs``) without changing the result. Writes the tidy table to
``benchmarks/results/compare.csv`` (not kept in git), the main figures (``group == "all"``,
one column per model) to ``compare.md`` and every ``group == "all"`` value to ``compare.json``,
the source of the README's and the user guide's tables (``python benchmarks/figures.py``).
Expect about half an hour on a 2-core CPU. ``--models`` picks a subset; ``--n-steps``
shortens training; ``--update`` reruns ``--models`` only and keeps the other models' rows of
the existing ``compare.csv``.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"
TEST_SIZE = 0.3
MAIN = [
    "precision", "recall", "f1", "coverage", "density", "zero_recall_share",
    "adversarial_accuracy", "c2st_auc", "frechet_distance_pca", "correlation_score",
    "tstr_accuracy", "trtr_accuracy", "tstr_trtr_accuracy_ratio", "tstr_macro_f1",
    "tstr_trtr_ratio", "dcr_ratio", "train_seconds", "n_parameters",
]  # fmt: skip


def _one(name: str, n_steps: int | None, threads: int) -> pd.DataFrame:
    import torch

    import scgensynth as sgs

    torch.set_num_threads(threads)
    kwargs = {"enable_progress_bar": False}
    if n_steps:
        kwargs["n_steps"] = n_steps
    return sgs.tl.compare_generators(
        sgs.datasets.gtex_tissues(), "tissue", models=[name], test_size=TEST_SIZE,
        evaluate_kwargs={"k": 5, "classifier": "logistic"}, **kwargs,
    )  # fmt: skip


def main() -> None:
    import scgensynth as sgs

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="*", default=None)
    ap.add_argument("--n-steps", type=int, default=None)
    ap.add_argument("--jobs", type=int, default=2, help="models trained at once")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per job")
    ap.add_argument(
        "--update",
        action="store_true",
        help="rerun only --models and keep the other models' rows of the existing compare.csv",
    )
    args = ap.parse_args()
    names = args.models or list(sgs.model.available().index)
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(_one, n, args.n_steps, args.threads) for n in names]
        table = pd.concat([f.result() for f in futures], ignore_index=True)
    seconds = time.perf_counter() - start
    if args.update and (RESULTS / "compare.csv").exists():
        kept = pd.read_csv(RESULTS / "compare.csv")
        kept = kept[~kept["model"].isin(table["model"].unique())]
        kept = kept[kept["metric"] != "tstr_trtr_accuracy_ratio"]
        table = pd.concat([kept, table], ignore_index=True)
        order = list(sgs.model.available().index)
        names = [n for n in order if n in set(table["model"])]
    main_rows = table[table["group"] == "all"]
    acc = main_rows.pivot_table(index="model", columns="metric", values="value")
    ratio = (acc["tstr_accuracy"] / acc["trtr_accuracy"]).rename("value").reset_index()
    ratio["metric"] = "tstr_trtr_accuracy_ratio"
    ratio["group"] = "all"
    table = pd.concat([table, ratio], ignore_index=True)
    RESULTS.mkdir(exist_ok=True)
    table.to_csv(RESULTS / "compare.csv", index=False)
    wide = table[table["group"] == "all"].pivot_table(
        index="metric", columns="model", values="value"
    )
    wide = wide.reindex([m for m in MAIN if m in wide.index])[names]
    lines = [
        f"# compare_generators on GTEx (70/30, seed 0), {time.strftime('%Y-%m-%d %H:%M')}",
        "",
        f"Training length: {args.n_steps or 'each model default'}; {args.jobs} job(s) x "
        f"{args.threads} torch thread(s); wall time {seconds:.0f} s"
        + (f" for {args.models} (others from the previous run)." if args.update else "."),
        "",
        "| metric | " + " | ".join(wide.columns) + " |",
        "|---" * (len(wide.columns) + 1) + "|",
    ]
    for metric, row in wide.iterrows():
        lines.append(f"| {metric} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
    (RESULTS / "compare.md").write_text("\n".join(lines) + "\n")
    _write_json(table, wide, args, seconds)
    print(wide.round(3).to_string())


def _write_json(table: pd.DataFrame, wide: pd.DataFrame, args, seconds: float) -> None:
    """``compare.json``: the one source of the comparison figures in the README and docs.

    ``values[model][metric]`` for every metric of ``group == "all"``; ``benchmarks/figures.py``
    renders the published tables from it and ``tests/test_figures.py`` checks them.
    """
    import json
    import math
    import os
    import platform

    import scgensynth as sgs

    n_obs = sgs.datasets.gtex_tissues().n_obs
    n_test = math.ceil(TEST_SIZE * n_obs)  # scikit-learn's rounding of test_size

    main_rows = table[table["group"] == "all"]
    values = {
        model: {m: float(v) for m, v in rows.set_index("metric")["value"].items()}
        for model, rows in main_rows.groupby("model", sort=False)
    }
    argv = [a for a in ("--update",) if getattr(args, a.strip("-"))]
    meta = {
        "command": "python benchmarks/bench_compare.py "
        + " ".join([f"--jobs {args.jobs}", f"--threads {args.threads}", *argv]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "jobs": args.jobs,
        "threads": args.threads,
        "n_steps": args.n_steps,
        "wall_seconds": round(seconds, 1),
        "models": list(wide.columns),
        "dataset": "gtex_tissues (bundled)",
        "split": "70/30 stratified by tissue, seed 0",
        "n_train": n_obs - n_test,
        "n_test": n_test,
        "k": 5,
        "classifier": "logistic",
    }
    out = {"meta": meta, "values": {m: values[m] for m in wide.columns}}
    (RESULTS / "compare.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
