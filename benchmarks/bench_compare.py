"""The survey's comparison on the bundled GTEx set: every registered generator, full length.

Runs ``sgs.tl.compare_generators(gtex, "tissue", test_size=0.3, seed=0)`` with each
model's default training length (20,000 steps for the adversarial models) and the full
metric suite, and writes the tidy table to ``benchmarks/results/compare.csv`` and the main
figures (``group == "all"``, one column per model) to ``compare.md``. Expect tens of
minutes on a 2-core CPU. ``--models`` picks a subset; ``--n-steps`` shortens training.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import scgensynth as sgs

RESULTS = Path(__file__).resolve().parent / "results"
MAIN = [
    "precision", "recall", "f1", "coverage", "density", "zero_recall_share",
    "adversarial_accuracy", "c2st_auc", "frechet_distance_pca", "correlation_score",
    "tstr_macro_f1", "tstr_trtr_ratio", "dcr_ratio", "train_seconds", "n_parameters",
]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="*", default=None)
    ap.add_argument("--n-steps", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    kwargs = {"enable_progress_bar": False}
    if args.n_steps:
        kwargs["n_steps"] = args.n_steps
    table = sgs.tl.compare_generators(
        sgs.datasets.gtex_tissues(), "tissue", models=args.models,
        evaluate_kwargs={"k": 5}, **kwargs,
    )  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    table.to_csv(RESULTS / "compare.csv", index=False)
    wide = table[table["group"] == "all"].pivot_table(
        index="metric", columns="model", values="value"
    )
    wide = wide.reindex([m for m in MAIN if m in wide.index])
    lines = ["| metric | " + " | ".join(wide.columns) + " |"]
    lines.append("|---" * (len(wide.columns) + 1) + "|")
    for metric, row in wide.iterrows():
        lines.append(f"| {metric} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
    (RESULTS / "compare.md").write_text("\n".join(lines) + "\n")
    print(wide.round(3).to_string())


if __name__ == "__main__":
    main()
