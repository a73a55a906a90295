"""Counts in, counts out: per-gene mean and variance of generated counts against real ones.

A model trained on raw counts (``scaling="counts"``) generates integer counts by default
(``generate(counts="sample")``: the mean it generates, at a library size drawn from the
training samples', rounded to integers at random without bias). This benchmark asks whether
those counts have each gene's mean and variance within the sampling noise of real data:

- each shared raw-counts set is split in two halves, stratified by its label, ``--n-splits``
  times (seeds 0, 1, ...): the generator is trained on one half (``real-train``) and every
  comparison is made against the other (``real-held-out``, never seen);
- **reference** (the sampling noise): ``real-train`` itself against ``real-held-out``: its
  mean and standard deviation over the splits. A synthetic row is "within the sampling
  noise" when its mean over the same splits is no further than two of those standard
  deviations from the reference's (for the correlations and shares: no further below it);
- **real-train resampled**: ``real-train``'s rows drawn with replacement, as many as it has:
  what a generator that reproduced the training distribution exactly would give with
  ``n_train`` samples (the training half's sampling noise plus that of drawing from it, as
  for a synthetic set of that size); a synthetic row is best read against this one;
- **synthetic**: as many samples as ``real-train`` has, generated with the training
  covariates' proportions, averaged over ``--n-sets`` seeds per split; for each model the
  default integer counts (``sample``: the mean rounded at random), the same from a set 10
  times as large (``sample, 10 x n_train``: the generator's own per-gene means, nearly free
  of the noise of its own draws; its variances are not comparable, since the median
  variance of a skewed gene's sample grows with the sample's size), Poisson counts around
  the mean (``poisson``), the expected counts (``mean``, floats), and other
  ways to make integers from the mean as controls: ``mean rounded`` (``np.rint``), ``mean
  floored``, ``Poisson(mean)`` (numpy's Poisson draws, which ``poisson`` should match),
  ``Poisson(2 mean)`` (around a wrong mean) and ``stochastic rounding`` (numpy's ``floor +
  Bernoulli(fraction)``, which ``sample`` should match: the least noise that keeps the
  mean).

Scores (per gene, ``log1p`` of the mean and of the variance with ``ddof=1``):

- ``r_logmean`` / ``r_logvar``: Pearson correlation with the held-out genes';
- ``in_mean`` / ``in_var``: share of genes whose value lies in the held-out 95 % bootstrap
  interval (resampling held-out rows, ``--n-boot`` times);
- the same shares over low-count genes (training mean below 10 counts: where integers and
  sampling noise matter), ``bias_low`` (median ``log1p`` difference of the means, synthetic
  minus held-out) and ``var_ratio_low`` (median ratio of ``1 + variance``, synthetic over
  held-out); ``var_ratio_mid``: the same ratio over genes with a training mean of 10 to
  1,000 counts.

Results: ``<out>.json`` and ``<out>.md`` (default ``benchmarks/results/counts``). E.g.
``python benchmarks/bench_counts.py`` (both shared counts sets, the Gaussian default and a
short WGAN-GP; about half an hour on one thread, most of it the WGAN-GP).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "counts"
DEFAULT_DATA = Path("/work/shared/data")
#: the shared raw-counts sets and the label each is split and conditioned on
DATASETS = {"gtex_brain_damirseq": "tissue", "gtex_muscle_gwena": "sex"}
DEFAULT_MODELS = ("gaussian", "wgan")
LOW_COUNTS = 10.0
MID_COUNTS = (10.0, 1000.0)
#: the larger generated set: BIG times as many samples as real-train
BIG = 10
SCORES = (
    "r_logmean", "r_logvar", "in_mean", "in_var", "in_mean_low", "in_var_low", "bias_low",
    "var_ratio_low", "var_ratio_mid",
)  # fmt: skip
#: scores where higher is better (the others: nearest to the reference's band)
HIGHER_BETTER = ("r_logmean", "r_logvar", "in_mean", "in_var", "in_mean_low", "in_var_low")


# -- data ------------------------------------------------------------------------------------
def load(name: str, data_dir: Path, n_genes: int | None = None, seed: int = 0):
    """The shared set ``name``: genes seen at least once, the label as a categorical.

    ``n_genes`` keeps that many genes drawn at random (``seed``), for quick runs.
    """
    import anndata as ad
    import pandas as pd

    path = Path(data_dir) / f"{name}.h5ad"
    if not path.is_file():
        msg = f"{path} not found; pass --data-dir with the shared datasets ({list(DATASETS)})."
        raise FileNotFoundError(msg)
    adata = ad.read_h5ad(path)
    X = np.asarray(adata.X)
    if not np.array_equal(X, np.rint(X)) or X.min() < 0:
        msg = f"{name} does not hold raw counts (non-negative integers)."
        raise ValueError(msg)
    keep = np.flatnonzero(X.sum(0) > 0)
    if n_genes is not None and n_genes < len(keep):
        keep = np.sort(np.random.default_rng(seed).choice(keep, n_genes, replace=False))
    label = DATASETS[name]
    out = ad.AnnData(X=X[:, keep].astype(np.float32), var=adata.var.iloc[keep].copy())
    out.obs_names = adata.obs_names
    out.obs[label] = pd.Categorical(adata.obs[label].astype(str).to_numpy())
    return out, label


def split(adata, label: str, seed: int = 0):
    """Two halves stratified by ``label``: ``(train, held_out)``, rows in input order."""
    from sklearn.model_selection import train_test_split

    train, held = train_test_split(
        np.arange(adata.n_obs), test_size=0.5, stratify=adata.obs[label], random_state=seed
    )
    return adata[np.sort(train)].copy(), adata[np.sort(held)].copy()


# -- scores ----------------------------------------------------------------------------------
def held_out_intervals(held: np.ndarray, n_boot: int, seed: int) -> dict[str, np.ndarray]:
    """Per-gene 95 % bootstrap intervals of the held-out mean and variance, and its values."""
    rng = np.random.default_rng(seed)
    means, variances = [], []
    for _ in range(n_boot):
        rows = held[rng.integers(0, len(held), len(held))]
        means.append(rows.mean(0))
        variances.append(rows.var(0, ddof=1))
    lo_m, hi_m = np.percentile(means, [2.5, 97.5], axis=0)
    lo_v, hi_v = np.percentile(variances, [2.5, 97.5], axis=0)
    return {
        "mean": held.mean(0), "var": held.var(0, ddof=1), "lo_m": lo_m, "hi_m": hi_m,
        "lo_v": lo_v, "hi_v": hi_v,
    }  # fmt: skip


def agreement(X: np.ndarray, ref: dict[str, np.ndarray], low: np.ndarray) -> dict[str, float]:
    """Per-gene mean / variance of ``X`` (samples x genes) against the held-out ones.

    ``low`` marks the low-count genes; ``ref["mid"]`` the moderately expressed ones.
    """
    X = np.asarray(X, dtype=np.float64)
    mean, var = X.mean(0), X.var(0, ddof=1)
    mid = ref["mid"]
    in_m = (mean >= ref["lo_m"]) & (mean <= ref["hi_m"])
    in_v = (var >= ref["lo_v"]) & (var <= ref["hi_v"])
    return {
        "r_logmean": float(np.corrcoef(np.log1p(mean), np.log1p(ref["mean"]))[0, 1]),
        "r_logvar": float(np.corrcoef(np.log1p(var), np.log1p(ref["var"]))[0, 1]),
        "in_mean": float(in_m.mean()),
        "in_var": float(in_v.mean()),
        "in_mean_low": float(in_m[low].mean()),
        "in_var_low": float(in_v[low].mean()),
        "bias_low": float(np.median(np.log1p(mean[low]) - np.log1p(ref["mean"][low]))),
        "var_ratio_low": float(np.median((1 + var[low]) / (1 + ref["var"][low]))),
        "var_ratio_mid": float(np.median((1 + var[mid]) / (1 + ref["var"][mid]))),
    }


def within(score: str, value: float, reference: dict[str, float]) -> bool:
    """``value`` within two split-to-split standard deviations of the reference's mean.

    For a higher-is-better score only a shortfall counts.
    """
    gap = value - reference["mean"]
    if score in HIGHER_BETTER:
        return gap >= -2 * reference["sd"]
    return abs(gap) <= 2 * reference["sd"]


def summary(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and standard deviation (ddof=1; 0 for one run) of each score over ``runs``."""
    return {
        k: {
            "mean": float(np.mean([r[k] for r in runs])),
            "sd": float(np.std([r[k] for r in runs], ddof=1)) if len(runs) > 1 else 0.0,
        }
        for k in SCORES
    }


# -- synthetic sets --------------------------------------------------------------------------
def discretised(mean: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Integers made from the expected counts in other ways (controls for the default)."""
    floor = np.floor(mean)
    return {
        "mean rounded": np.rint(mean),
        "mean floored": floor,
        "Poisson(mean)": rng.poisson(mean).astype(np.float64),
        "Poisson(2 mean)": rng.poisson(2 * mean).astype(np.float64),
        "stochastic rounding": floor + (rng.random(mean.shape) < mean - floor),
    }


def train_model(train, label: str, model: str, n_steps: int | None, seed: int):
    """The generator ``model`` trained on ``train`` (scaling detected: counts)."""
    import scgensynth as sgs

    kwargs: dict[str, Any] = {"seed": seed}
    if model != "gaussian":
        kwargs.update(enable_progress_bar=False, batch_size=8)
        if n_steps is not None:
            kwargs["n_steps"] = n_steps
    t0 = time.perf_counter()
    fitted = sgs.tl.train(train, model, categorical_covariate_keys=[label], **kwargs)
    if fitted.scaling_["mode"] != "counts":
        msg = f"{model} scaled the counts with {fitted.scaling_['mode']!r}, not 'counts'."
        raise RuntimeError(msg)
    return fitted, time.perf_counter() - t0


def synthetic_scores(fitted, n_obs: int, ref, low, n_sets: int, seed: int, checks) -> dict:
    """Scores of each way of making counts, averaged over ``n_sets`` generated sets.

    ``checks`` are updated: integer, non-negative, and library sizes from training (each
    sample's expected total is a training sample's library size, and its count total lies
    within five Poisson standard deviations of it).
    """
    rng = np.random.default_rng(seed)
    runs: dict[str, list[dict[str, float]]] = {}
    library = np.asarray(fitted.library_size_, dtype=np.float64)
    for i in range(n_sets):
        X = np.asarray(fitted.generate(n_obs, seed=seed + i).X, dtype=np.float64)
        mean = np.asarray(fitted.generate(n_obs, seed=seed + i, counts="mean").X, np.float64)
        checks["integer"] &= bool(np.array_equal(X, np.rint(X)))
        checks["non_negative"] &= bool(X.min() >= 0)
        expected = mean.sum(1)
        nearest = np.abs(expected[:, None] - library[None, :]).min(1)
        checks["library_sizes_from_training"] &= bool(
            (nearest <= 1e-4 * expected).all()
            and (np.abs(X.sum(1) - expected) <= 5 * np.sqrt(expected)).all()
        )
        # the generator's own moments with little of its sampling noise: a set of n_train
        # samples carries that noise on top of the model's fit to real-train
        big = np.asarray(fitted.generate(BIG * n_obs, seed=seed + i).X, dtype=np.float64)
        poisson = np.asarray(fitted.generate(n_obs, seed=seed + i, counts="poisson").X)
        sets = {
            "sample (default)": X, f"sample, {BIG} x n_train": big, "poisson": poisson,
            "mean (floats)": mean, **discretised(mean, rng),
        }  # fmt: skip
        for name, values in sets.items():
            runs.setdefault(name, []).append(agreement(values, ref, low))
    return {
        name: {k: float(np.mean([r[k] for r in rs])) for k in SCORES} for name, rs in runs.items()
    }


def resampled_scores(R: np.ndarray, ref, low, n_sets: int, seed: int) -> dict[str, float]:
    """Scores of real-train's rows drawn with replacement, as many as it has.

    A generator that reproduced the training distribution exactly: its sets carry the
    training half's own sampling noise and the noise of drawing from it, as a synthetic set
    of ``n_train`` samples does (the reference row carries only the first).
    """
    rng = np.random.default_rng([seed, 1])
    runs = [agreement(R[rng.integers(0, len(R), len(R))], ref, low) for _ in range(n_sets)]
    return {k: float(np.mean([r[k] for r in runs])) for k in SCORES}


# -- one dataset -----------------------------------------------------------------------------
def run_dataset(name: str, args) -> dict[str, Any]:
    """Reference and every model's synthetic counts on one shared set, over the splits."""
    adata, label = load(name, args.data_dir, args.n_genes, args.seed)
    reference: list[dict[str, float]] = []
    resampled: list[dict[str, float]] = []
    synthetic: dict[str, dict[str, list]] = {m: {} for m in args.models}
    seconds: dict[str, list[float]] = {m: [] for m in args.models}
    checks = {m: {"integer": True, "non_negative": True, "library_sizes_from_training": True}
              for m in args.models}  # fmt: skip
    n_low = []
    for split_seed in range(args.seed, args.seed + args.n_splits):
        train, held = split(adata, label, split_seed)
        R, H = np.asarray(train.X, np.float64), np.asarray(held.X, np.float64)
        ref = held_out_intervals(H, args.n_boot, split_seed)
        low = R.mean(0) < LOW_COUNTS
        ref["mid"] = (R.mean(0) >= MID_COUNTS[0]) & (R.mean(0) < MID_COUNTS[1])
        n_low.append(int(low.sum()))
        reference.append(agreement(R, ref, low))
        resampled.append(resampled_scores(R, ref, low, args.n_sets, split_seed))
        for model in args.models:
            fitted, took = train_model(train, label, model, args.n_steps, split_seed)
            seconds[model].append(took)
            scores = synthetic_scores(
                fitted, train.n_obs, ref, low, args.n_sets, split_seed, checks[model]
            )
            for variant, values in scores.items():
                synthetic[model].setdefault(variant, []).append(values)
            print(f"{name} / split {split_seed} / {model}: trained in {took:.1f} s", flush=True)
    ref_summary = summary(reference)
    models = {}
    for model, variants in synthetic.items():
        scores = {variant: summary(runs) for variant, runs in variants.items()}
        models[model] = {
            "scores": scores,
            "within": {
                variant: {k: within(k, s[k]["mean"], ref_summary[k]) for k in SCORES}
                for variant, s in scores.items()
            },
            "checks": checks[model],
            "train_seconds": float(np.mean(seconds[model])),
            "n_steps": None if model == "gaussian" else args.n_steps,
        }
    return {
        "dataset": name, "label": label, "n_train": train.n_obs, "n_held_out": held.n_obs,
        "n_genes": adata.n_vars, "n_low_genes": float(np.mean(n_low)),
        "n_splits": args.n_splits, "reference": ref_summary,
        "resampled": summary(resampled), "models": models,
    }  # fmt: skip


# -- report ----------------------------------------------------------------------------------
def _cell(score: str, value: float, reference: dict[str, float]) -> str:
    return f"{value:.3f}" + ("" if within(score, value, reference) else " ✗")


def markdown(records: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The results as Markdown tables, one per dataset."""
    lines = [
        "# Counts in, counts out: per-gene mean and variance against held-out real counts",
        "",
        f"`{meta['command']}` ({meta['date']}, {meta['machine']}, {meta['threads']} thread(s), "
        f"{meta['wall_s'] / 60:.1f} min). Generated by `benchmarks/bench_counts.py`; its "
        "docstring defines the scores. Every row is a mean over the splits (each synthetic "
        f"one also over {meta['n_sets']} generated sets per split, of as many samples as "
        f"real-train, or {BIG} times as many where the row says so); ✗ marks a score further "
        "than two split-to-split standard deviations from the reference's (below it, for the "
        "correlations and shares): beyond the real data's sampling noise.",
        "",
    ]
    header = "| rows | " + " | ".join(SCORES) + " |"
    rule = "|---" * (len(SCORES) + 1) + "|"
    for rec in records:
        ref = rec["reference"]
        lines += [
            f"## {rec['dataset']} ({rec['n_train']} train / {rec['n_held_out']} held out, "
            f"{rec['n_splits']} splits, {rec['n_genes']:,} genes, about "
            f"{rec['n_low_genes']:,.0f} with a training mean below {LOW_COUNTS:g} counts; "
            f"conditioned on `{rec['label']}`)",
            "",
            header,
            rule,
            "| real-train (reference) | "
            + " | ".join(f"{ref[k]['mean']:.3f} ± {ref[k]['sd']:.3f}" for k in SCORES)
            + " |",
            "| real-train resampled (an exact copy of the training distribution) | "
            + " | ".join(_cell(k, rec["resampled"][k]["mean"], ref[k]) for k in SCORES)
            + " |",
        ]
        for model, out in rec["models"].items():
            steps = f", {out['n_steps']} steps" if out["n_steps"] else ""
            for variant, scores in out["scores"].items():
                cells = " | ".join(_cell(k, scores[k]["mean"], ref[k]) for k in SCORES)
                lines.append(f"| {model}{steps}: {variant} | {cells} |")
        checks = "; ".join(
            f"{model}: "
            + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in out["checks"].items())
            for model, out in rec["models"].items()
        )
        lines += ["", f"Default output checks (every set): {checks}.", ""]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                   help="registered generators (default: gaussian wgan)")  # fmt: skip
    p.add_argument("--n-steps", type=int, default=1000,
                   help="training length of the learned models (default 1000)")  # fmt: skip
    p.add_argument("--n-genes", type=int, default=None,
                   help="keep this many genes at random (default: all)")  # fmt: skip
    p.add_argument("--n-splits", type=int, default=5, help="train / held-out splits")
    p.add_argument("--n-sets", type=int, default=5, help="generated sets per model and split")
    p.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="the shared datasets")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output stem (.json, .md)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    import scgensynth as sgs

    torch.set_num_threads(args.threads)
    unknown = sorted(set(args.models) - set(sgs.model.available().index))
    if unknown:
        msg = f"Unknown models {unknown}; registered: {list(sgs.model.available().index)}."
        raise SystemExit(msg)
    t0 = time.perf_counter()
    records = [run_dataset(name, args) for name in args.datasets]
    meta = {
        "command": " ".join(
            ["python benchmarks/bench_counts.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} ({platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs), Python {platform.python_version()}",
        "threads": args.threads,
        "n_sets": args.n_sets,
        "n_splits": args.n_splits,
        "n_boot": args.n_boot,
        "wall_s": time.perf_counter() - t0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps({"meta": meta, "rows": records}, indent=1))
    Path(f"{args.out}.md").write_text(markdown(records, meta))
    print(f"Wrote {args.out}.json and {args.out}.md ({meta['wall_s'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
