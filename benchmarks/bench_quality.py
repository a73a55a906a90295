"""Quality benchmark: the conditional WGAN-GP against simple baselines on the bundled data.

For each dataset and seed: a stratified 70/30 split; the WGAN-GP (public API, default
settings, conditioned on the label) and the baselines of ``baselines.py`` are fitted on the
70 %; each generates as many samples as there are training samples (labels resampled from
the training rows); the metrics compare them with the held-out 30 %.

Usage (from the repository root)::

    python benchmarks/bench_quality.py --quick          # smoke run, WGAN-GP n_steps=300
    python benchmarks/bench_quality.py                   # full run, default training length
    python benchmarks/bench_quality.py --datasets gtex_tissues --seeds 0 1 2

Writes one CSV row per dataset x generator x seed (``--out``, default
``benchmarks/results/quality.csv``; with ``--quick`` ``quality_quick.csv``) and a markdown
table of the means over seeds next to it (``.md``), and prints the table.
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import scgensynth as sgs

try:
    from baselines import BASELINES
except ImportError:  # run as a module: python -m benchmarks.bench_quality
    from benchmarks.baselines import BASELINES

# dataset -> (loader, label column)
DATASETS = {
    "gtex_tissues": (sgs.datasets.gtex_tissues, "tissue"),
    "tcga_lusc": (sgs.datasets.tcga_lusc, "cancer"),
    # C1A/C1B: the two transcriptome clusters of the TCGA ACC paper (43/35, 1 "NA")
    "tcga_acc": (sgs.datasets.tcga_acc, "C1A_C1B"),
}
QUICK_STEPS = 300
K = 5
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_OUT = RESULTS / "quality.csv"
QUICK_OUT = RESULTS / "quality_quick.csv"  # so a smoke run does not overwrite the real results

# Quoted from the issue (reference WGAN-GP architecture, 500 epochs, GTEx split): not measured.
REFERENCE = {
    "dataset": "gtex_tissues",
    "generator": "reference (published, quoted)",
    "f1": 0.958,
    "min_class_recall": 0.0,
    "n_classes_recall0": 1,
    "c2st_auc": 0.62,
    "tstr_trtr": 0.97,
    "dcr_ratio": 1.03,
}

# markdown header -> csv column(s); a pair is shown as "first (second)"
COLUMNS = {
    "precision": "precision",
    "recall": "recall",
    "F1": "f1",
    "min class recall (# at 0)": ("min_class_recall", "n_classes_recall0"),
    "min class recall, shared PCA (# at 0)": (
        "min_class_recall_shared",
        "n_classes_recall0_shared",
    ),
    "C2ST AUC": "c2st_auc",
    "TSTR F1": "tstr_f1",
    "TRTR F1": "trtr_f1",
    "TSTR/TRTR": "tstr_trtr",
    "corr": "corr",
    "corr ceiling": "corr_ceiling",
    "DCR ratio": "dcr_ratio",
    "train s": "train_s",
}


def load(name: str) -> tuple[ad.AnnData, str]:
    """The dataset with the label as a clean categorical; samples labelled "NA" dropped."""
    loader, label = DATASETS[name]
    adata = loader()
    keep = adata.obs[label].astype(str).to_numpy() != "NA"
    adata = adata[keep].copy()
    adata.obs[label] = pd.Categorical(adata.obs[label].astype(str))
    return adata, label


def as_anndata(X: np.ndarray, labels: np.ndarray, label: str, var: pd.DataFrame) -> ad.AnnData:
    obs = pd.DataFrame(
        {label: pd.Categorical(np.asarray(labels).astype(str))},
        index=pd.Index([f"s{i}" for i in range(len(labels))]),
    )
    return ad.AnnData(X=np.asarray(X, dtype=np.float32), obs=obs, var=var.copy())


def _summary(recalls: dict[str, float]) -> tuple[float, int]:
    values = np.array(list(recalls.values()))
    if not len(values):
        return float("nan"), 0
    return float(values.min()), int((values == 0).sum())


def _per_class(yt: np.ndarray, ys: np.ndarray, recall) -> dict[str, float]:
    """``recall(c)`` for each test class ``c`` with >= 2 samples; 0 if it has no synthetic ones."""
    out = {}
    for c in np.unique(yt):
        if (yt == c).sum() < 2:
            continue
        out[c] = recall(c) if (ys == c).any() else 0.0
    return out


def _std_pca(fit: np.ndarray, *others: np.ndarray, q: int = 50, seed: int = 0):
    """Standardise on ``fit``, project ``fit`` and ``others`` on its first ``q`` PCs."""
    scaler = StandardScaler().fit(fit)
    q = min(q, fit.shape[0] - 1, fit.shape[1])
    pca = PCA(q, random_state=seed).fit(scaler.transform(fit))
    return [pca.transform(scaler.transform(x)) for x in (fit, *others)]


def per_class_recall(
    test: ad.AnnData, synth: ad.AnnData, label: str, seed: int
) -> dict[str, float]:
    """Recall of each class's real test samples by the synthetic samples of that class.

    ``sgs.metrics.precision_recall`` on the class's samples in that class's own space: the
    standardisation and PCA are fitted on its few test samples (at most ``n_c - 1``
    components), which is lenient. ``k = min(5, n_c - 1)``; a class with fewer than 2 test
    samples is skipped, one with no synthetic samples has recall 0.
    """
    yt = test.obs[label].astype(str).to_numpy()
    ys = synth.obs[label].astype(str).to_numpy()
    Xt, Xs = np.asarray(test.X, dtype=np.float64), np.asarray(synth.X, dtype=np.float64)

    def recall(c):
        r, s = _std_pca(Xt[yt == c], Xs[ys == c], seed=seed)
        k = min(K, len(r) - 1, len(s) - 1)
        if k < 1:  # a single synthetic sample: its ball has radius 0
            return float((cdist(r, s) <= 1e-9).any(axis=1).mean())
        return sgs.metrics.precision_recall(r, s, k=k)["recall"]

    return _per_class(yt, ys, recall)


def per_class_recall_shared(
    test: ad.AnnData, synth: ad.AnnData, label: str, seed: int
) -> dict[str, float]:
    """Per-class recall in one space: the 50-component PCA of the standardised test data.

    The space ``precision_recall(test, synth)`` uses; a real class-``c`` sample is recalled if
    it lies in the k-NN ball (among synthetic class-``c`` samples) of some synthetic
    class-``c`` sample, ``k = min(5, n_c - 1)`` (and at most ``n_synth_c - 1``), as in
    ``sgs.metrics.precision_recall``. Same skipping rules as :func:`per_class_recall`.
    """
    Xt = np.asarray(test.X, dtype=np.float64)
    Xs = np.asarray(synth.X, dtype=np.float64)
    scaler = StandardScaler().fit(Xt)
    q = min(50, Xt.shape[0] - 1, Xt.shape[1])
    pca = PCA(q, random_state=seed).fit(scaler.transform(Xt))
    Pt, Ps = pca.transform(scaler.transform(Xt)), pca.transform(scaler.transform(Xs))
    yt = test.obs[label].astype(str).to_numpy()
    ys = synth.obs[label].astype(str).to_numpy()

    def recall(c):
        r, s = Pt[yt == c], Ps[ys == c]
        ks = min(K, len(r) - 1, len(s) - 1)
        if ks < 1:  # a single synthetic sample: its ball has radius 0
            return float((cdist(r, s) <= 1e-9).any(axis=1).mean())
        radius = NearestNeighbors(n_neighbors=ks + 1).fit(s).kneighbors(s)[0][:, -1]
        return float((cdist(r, s) <= radius[None, :] + 1e-9).any(axis=1).mean())

    return _per_class(yt, ys, recall)


def evaluate(
    train: ad.AnnData, test: ad.AnnData, synth: ad.AnnData, label: str, seed: int
) -> dict[str, float]:
    m = sgs.metrics
    Xtr, Xt, Xs = (np.asarray(a.X, dtype=np.float64) for a in (train, test, synth))
    Pt, Ps = _std_pca(Xt, Xs, seed=seed)
    pr = m.precision_recall(Pt, Ps, k=K)
    min_rec, n_zero = _summary(per_class_recall(test, synth, label, seed))
    min_shared, n_zero_shared = _summary(per_class_recall_shared(test, synth, label, seed))
    rv = m.reverse_validation(
        test, synth, label, reference=train, classifier="logistic", seed=seed
    )
    Qtr, Qt, Qs = _std_pca(Xtr, Xt, Xs, seed=seed)
    return {
        "precision": pr["precision"],
        "recall": pr["recall"],
        "f1": pr["f1"],
        "min_class_recall": min_rec,
        "n_classes_recall0": n_zero,
        "min_class_recall_shared": min_shared,
        "n_classes_recall0_shared": n_zero_shared,
        "c2st_auc": m.classifier_two_sample_auc(test, synth, seed=seed),
        "tstr_f1": rv["macro_f1"],
        "trtr_f1": rv["reference_macro_f1"],
        "tstr_trtr": rv["ratio"],
        "corr": m.correlation_score(test, synth),
        "corr_ceiling": m.correlation_score(test, train),
        "dcr_ratio": m.distance_to_closest_record(Qtr, Qs, Qt)["ratio"],
    }


def run_one(name: str, seed: int, quick: bool) -> list[dict]:
    adata, label = load(name)
    idx = np.arange(adata.n_obs)
    tr_idx, te_idx = train_test_split(
        idx, test_size=0.3, stratify=adata.obs[label].to_numpy(), random_state=seed
    )
    train, test = adata[np.sort(tr_idx)].copy(), adata[np.sort(te_idx)].copy()
    train.obs[label] = train.obs[label].cat.remove_unused_categories()
    n = train.n_obs
    Xtr = np.asarray(train.X, dtype=np.float64)
    ytr = train.obs[label].astype(str).to_numpy()
    common = {"dataset": name, "seed": seed, "n_train": n, "n_test": test.n_obs}
    rows = []

    # WGAN-GP through the public API, default settings (--quick: short training)
    extra = {"n_steps": QUICK_STEPS} if quick else {}
    t0 = time.perf_counter()
    model = sgs.tl.train_wgan(
        train.copy(),
        categorical_covariate_keys=[label],
        seed=seed,
        enable_progress_bar=False,
        **extra,
    )
    train_s = time.perf_counter() - t0
    synth = model.generate(n, seed=seed)
    synth = as_anndata(synth.X, synth.obs[label].to_numpy(), label, train.var)
    # The metrics and baselines work on a few hundred samples: multi-threaded BLAS only adds
    # overhead there (and is many times slower on a busy machine), so it gets one thread.
    with threadpool_limits(limits=1, user_api="blas"):
        scores = evaluate(train, test, synth, label, seed)
    rows.append({**common, "generator": "wgan_gp", **scores, "train_s": train_s})

    for gen_name, cls in BASELINES.items():
        with threadpool_limits(limits=1, user_api="blas"):
            t0 = time.perf_counter()
            gen = cls().fit(Xtr, ytr)
            train_s = time.perf_counter() - t0
            Xs, ys = gen.sample(n, np.random.default_rng(seed))
            synth = as_anndata(Xs, ys, label, train.var)
            scores = evaluate(train, test, synth, label, seed)
        rows.append({**common, "generator": gen_name, **scores, "train_s": train_s})
    return rows


def _fmt(values: pd.Series, col: str) -> str:
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return "—"
    if col.startswith("n_classes"):  # counts: integers for one seed, mean otherwise
        return f"{values.mean():.0f}" if len(values) == 1 else f"{values.mean():.1f}"
    digits = 1 if col == "train_s" else 3
    text = f"{values.mean():.{digits}f}"
    if len(values) > 1:
        text += f" ± {values.std():.{digits}f}"
    return text


def _cell(frame: pd.DataFrame, spec: str | tuple[str, str]) -> str:
    if isinstance(spec, str):
        return _fmt(frame[spec], spec) if spec in frame else "—"
    first, second = spec
    if first not in frame:
        return "—"
    return f"{_fmt(frame[first], first)} ({_fmt(frame[second], second)})"


def markdown_table(results: pd.DataFrame, quick: bool) -> str:
    """Means (± sd over seeds) per dataset x generator, plus the quoted GTEx reference row."""
    seeds = sorted(results["seed"].unique())
    header = ["dataset", "generator", *COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for dataset, by_ds in results.groupby("dataset", sort=False):
        for generator, group in by_ds.groupby("generator", sort=False):
            cells = [dataset, generator, *(_cell(group, spec) for spec in COLUMNS.values())]
            lines.append("| " + " | ".join(cells) + " |")
        if dataset == REFERENCE["dataset"]:
            ref = pd.DataFrame([REFERENCE])
            cells = [dataset, f"*{REFERENCE['generator']}*"]
            cells += [_cell(ref, spec) for spec in COLUMNS.values()]
            lines.append("| " + " | ".join(cells) + " |")
    notes = [
        "",
        f"Seeds: {', '.join(map(str, seeds))}"
        + (" (mean ± sd)." if len(seeds) > 1 else ".")
        + (f" **--quick**: WGAN-GP trained for only {QUICK_STEPS} steps." if quick else ""),
        "",
        "- precision / recall / F1: `sgs.metrics.precision_recall(test, synth, k=5)` (PCA "
        "space of the standardised held-out data).",
        "- min class recall (# at 0): per class, `precision_recall` on that class's test and "
        "synthetic samples with k=min(5, n_c-1), i.e. a standardisation and PCA fitted on the "
        "class's few test samples; the lowest recall over classes and how many classes have "
        "recall 0.",
        "- min class recall, shared PCA: the same per-class recall in the PCA space of the whole "
        "test set (the space of the overall recall).",
        "- C2ST AUC: real held-out vs synthetic, 0.5 = indistinguishable (values below 0.5 are "
        "cross-validation noise on small sets: read them as about 0.5).",
        "- TSTR/TRTR: macro-F1 of a logistic regression trained on synthetic vs on real "
        "training data, both tested on the held-out data.",
        "- corr: `correlation_score(test, synth)`; corr ceiling: `correlation_score(test, "
        "train)`.",
        "- DCR ratio: median distance to the closest training sample, synthetic / held-out; "
        "about 1 good, well below 1 = copying.",
        "- train s: fitting time in seconds.",
        "- *reference (published, quoted)*: quoted from the issue (reference WGAN-GP "
        "architecture, 500 epochs, GTEx split), not measured here; how its per-tissue recall "
        "was computed is not known.",
    ]
    return "\n".join(lines + notes) + "\n"


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS), metavar="NAME"
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"CSV path; the markdown goes beside it (default {DEFAULT_OUT}; with --quick "
        f"{QUICK_OUT})",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke run: WGAN-GP n_steps={QUICK_STEPS}"
    )
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = QUICK_OUT if args.quick else DEFAULT_OUT

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")

    rows = []
    for name in args.datasets:
        for seed in args.seeds:
            t0 = time.perf_counter()
            rows.extend(run_one(name, seed, args.quick))
            print(f"{name} seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    results = pd.DataFrame(rows)
    table = markdown_table(results, args.quick)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results.to_csv(args.out, index=False)
    args.out.with_suffix(".md").write_text(table)
    print()
    print(table)
    print(f"Wrote {args.out} and {args.out.with_suffix('.md')}")
    return results


if __name__ == "__main__":
    main()
