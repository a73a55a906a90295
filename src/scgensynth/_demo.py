"""The script behind ``scgensynth demo`` (and ``bash scripts/demo.sh``).

Trains a conditional WGAN-GP on a stratified 70/30 split of the bundled GTEx set, generates
as many samples as it trained on, evaluates them against the held-out samples, does the
same with the package's default generator (the per-class Gaussian), draws the plots people
look at, runs one in-silico experiment (Lung -> Liver) and prints the figures.
Each step is one function; :func:`run` calls them in order. The command line
(:func:`scgensynth.cli.run_demo`) checks and marks the output folder before it calls
:func:`run`. Imported only by that command: it loads torch, scvi-tools and scanpy.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import anndata as ad
import matplotlib
import numpy as np
import pandas as pd
import scanpy as sc
from sklearn.model_selection import train_test_split

import scgensynth as sgs

#: the covariate the demo conditions on, evaluates by and changes in silico
LABEL = "tissue"
#: the in-silico experiment: these samples' tissue switched from SOURCE to TARGET
SOURCE, TARGET = "Lung", "Liver"
#: genes compared between the counterfactual ranking and the real mean difference
TOP = 50


def split_gtex() -> tuple[ad.AnnData, ad.AnnData, ad.AnnData]:
    """The bundled GTEx set and its stratified 70/30 split (always the same split)."""
    adata = sgs.datasets.gtex_tissues()
    idx_train, idx_test = train_test_split(
        np.arange(adata.n_obs), test_size=0.3, stratify=adata.obs[LABEL], random_state=0
    )
    return adata, adata[idx_train].copy(), adata[idx_test].copy()


def train_generator(train: ad.AnnData, out: Path, *, seed: int, train_kwargs: dict):
    """Train the conditional WGAN-GP and save it to ``out/model``."""
    print(f"Training a conditional WGAN-GP on {train.n_obs} GTEx samples x {train.n_vars} genes")
    model = sgs.tl.train_wgan(train, categorical_covariate_keys=[LABEL], seed=seed, **train_kwargs)
    model.save(str(out / "model"), overwrite=True)
    return model


def generate_and_evaluate(
    model, train: ad.AnnData, test: ad.AnnData, out: Path, *, seed: int
) -> tuple[ad.AnnData, dict[str, float]]:
    """Generate one synthetic sample per training sample and evaluate them.

    Writes ``synthetic.h5ad`` and ``metrics.csv``; returns the samples and the metrics as
    ``{metric: value}`` (per-group values as ``"metric[group]"``).
    """
    synth = sgs.tl.generate(model, n_obs=train.n_obs, seed=seed)
    synth.write_h5ad(out / "synthetic.h5ad")
    report = sgs.metrics.evaluate(train, synth, labels_key=LABEL, holdout=test, k=5, seed=seed)
    report.to_csv(out / "metrics.csv", index=False)
    values = {
        m if g == "all" else f"{m}[{g}]": float(v)
        for m, g, v in zip(report["metric"], report["group"], report["value"], strict=True)
    }
    return synth, values


def default_generator(train: ad.AnnData, test: ad.AnnData, *, seed: int) -> dict[str, float]:
    """The default generator (per-class Gaussian) fitted and evaluated on the same split.

    What the WGAN-GP is up against; seconds to fit. Returns the overall metrics.
    """
    print("Fitting the default generator (per-class Gaussian) on the same samples")
    model = sgs.tl.train(train.copy(), categorical_covariate_keys=[LABEL], seed=seed)
    synth = sgs.tl.generate(model, n_obs=train.n_obs, seed=seed)
    report = sgs.metrics.evaluate(train, synth, labels_key=LABEL, holdout=test, k=5, seed=seed)
    overall = report[report["group"] == "all"]
    return {m: float(v) for m, v in zip(overall["metric"], overall["value"], strict=True)}


def save_plots(adata: ad.AnnData, synth: ad.AnnData, model, out: Path, *, seed: int) -> None:
    """UMAP of real and synthetic samples, and the training history, as PNG files."""
    both = ad.concat({"real": adata, "synthetic": synth}, label="sgs_source", index_unique="-")
    sc.pp.pca(both, n_comps=30, random_state=seed)
    sc.pp.neighbors(both, random_state=seed)
    with warnings.catch_warnings():
        # 26 well-separated tissues give a graph in pieces; UMAP's spectral start warns, yet
        # lays the pieces out fine (as in sgs.pl.embedding)
        warnings.filterwarnings("ignore", message="Graph is not fully connected")
        sc.tl.umap(both, random_state=seed)
    fig = sc.pl.umap(
        both, color=["sgs_source", LABEL], show=False, return_fig=True, wspace=0.6, size=20
    )
    fig.savefig(out / "umap_real_vs_synthetic.png", dpi=120, bbox_inches="tight")
    fig = sgs.pl.training_history(model, return_fig=True)
    fig.savefig(out / "training_history.png", dpi=120, bbox_inches="tight")


def counterfactual(model, adata: ad.AnnData, out: Path, *, seed: int) -> tuple[pd.DataFrame, int]:
    """Which genes move when the same synthetic individuals are Lung and then Liver.

    Writes the ranking (CSV) and its plot (PNG); returns the ranking and how many of its top
    50 genes are among the 50 with the largest real Liver - Lung mean difference.
    """
    cf = sgs.tl.counterfactual(model, LABEL, SOURCE, TARGET, n_obs=1000, seed=seed)
    ranking = sc.get.rank_genes_groups_df(cf, TARGET)
    name = f"counterfactual_{SOURCE.lower()}_to_{TARGET.lower()}"
    ranking.to_csv(out / f"{name}.csv", index=False)
    fig = sgs.pl.ranked_genes(cf, n_genes=10, return_fig=True)
    fig.savefig(out / f"{name}.png", dpi=120, bbox_inches="tight")

    def mean(tissue: str) -> np.ndarray:
        return np.asarray(adata[adata.obs[LABEL] == tissue].X).mean(0)

    top_real = set(adata.var_names[np.argsort(-(mean(TARGET) - mean(SOURCE)))[:TOP]])
    return ranking, len(top_real & set(ranking["names"][:TOP]))


def print_summary(
    values: dict[str, float],
    default: dict[str, float],
    ranking: pd.DataFrame,
    overlap: int,
    out: Path,
):
    """The demo's figures: quality, privacy, the default, in silico, the files written."""
    v = values
    print(
        "\nQuality (sgs.metrics.evaluate with k=5 neighbours and its default MLP classifier; "
        "every value in metrics.csv; other settings give other values, quote them together):"
    )
    print(
        f"  tissue classifier trained on synthetic, tested on held-out real: macro-F1 "
        f"{v['tstr_macro_f1']:.3f} (trained on real: {v['trtr_macro_f1']:.3f})"
    )
    print(
        f"  precision {v['precision']:.3f}, recall {v['recall']:.3f}, coverage "
        f"{v['coverage']:.3f}; tissues never recalled: {v['zero_recall_share']:.0%}"
    )
    print(
        f"  adversarial accuracy {v['adversarial_accuracy']:.3f} (0.5 ideal), two-sample AUC "
        f"{v['c2st_auc']:.3f} (0.5 ideal), correlation score {v['correlation_score']:.3f}"
    )
    print(f"  privacy: DCR ratio {v['dcr_ratio']:.3f} (~1 ideal, << 1 copies)")
    d = default
    print(
        "\nThe default generator (sgs.tl.train without a model: per-class Gaussian) on the "
        f"same split: macro-F1 {d['tstr_macro_f1']:.3f}, precision {d['precision']:.3f}, "
        f"recall {d['recall']:.3f}, two-sample AUC {d['c2st_auc']:.3f}, correlation score "
        f"{d['correlation_score']:.3f}, DCR ratio {d['dcr_ratio']:.3f}"
    )
    print(
        "\nIn silico, Lung -> Liver (sgs.tl.counterfactual, 1,000 synthetic individuals): "
        f"most increased {', '.join(ranking['names'][:5])}; "
        f"{overlap} of its top 50 genes are among the 50 with "
        "the largest real Liver - Lung mean difference."
    )
    print(
        f"\nWrote {out}/synthetic.h5ad, results.json, metrics.csv, "
        "umap_real_vs_synthetic.png, training_history.png, "
        "counterfactual_lung_to_liver.csv/.png, model/"
    )


def run(out: Path, *, seed: int, train_kwargs: dict, marker: dict) -> dict:
    """Run the demo into the folder ``out`` (checked and marked by the caller).

    ``marker`` heads ``results.json``, which is written after the evaluation and again,
    complete, at the end. Returns what ``results.json`` holds.
    """
    matplotlib.use("Agg")
    results_file = out / "results.json"
    adata, train, test = split_gtex()
    model = train_generator(train, out, seed=seed, train_kwargs=train_kwargs)
    synth, values = generate_and_evaluate(model, train, test, out, seed=seed)
    results = {
        **marker,
        "n_train": int(train.n_obs),
        "n_test": int(test.n_obs),
        "n_synthetic": int(synth.n_obs),
        "metrics": values,
    }
    results_file.write_text(json.dumps(results, indent=2))
    results["default_generator_metrics"] = default_generator(train, test, seed=seed)
    save_plots(adata, synth, model, out, seed=seed)
    ranking, overlap = counterfactual(model, adata, out, seed=seed)
    results["counterfactual_top50_overlap"] = overlap
    results_file.write_text(json.dumps(results, indent=2))
    print_summary(values, results["default_generator_metrics"], ranking, overlap, out)
    return results
