"""Command line: ``scgensynth demo | train | generate | compare`` (also ``python -m scgensynth``).

Heavy libraries (torch, scvi-tools, Lightning, scanpy) are imported only by the command
that needs them, so ``scgensynth --help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _add_train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n-steps", type=int, default=None, help="optimiser steps (default 20000)")
    p.add_argument("--max-epochs", type=int, default=None, help="passes over the data")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--accelerator", default="auto", help="cpu, gpu or auto")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scgensynth",
        description="Train conditional generators on expression data and generate samples.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")

    demo = sub.add_parser(
        "demo",
        help="train on the bundled GTEx set, generate, evaluate, write results and plots",
    )
    demo.add_argument("--out", default="scgensynth_demo", help="output folder")
    _add_train_options(demo)

    train = sub.add_parser("train", help="train a conditional generator on an .h5ad file")
    train.add_argument(
        "--model", default="wgan", help="generator name (wgan, gan, attgan, randattgan, ...)"
    )
    train.add_argument("adata", help="input .h5ad (samples x genes)")
    train.add_argument("--out", required=True, help="folder to save the model in")
    train.add_argument("--categorical", nargs="*", default=[], help=".obs categorical covariates")
    train.add_argument("--continuous", nargs="*", default=[], help=".obs numeric covariates")
    train.add_argument("--layer", default=None, help="layer with the expression values")
    train.add_argument("--scaling", default="auto", help="auto, counts, log1p, standardize, none")
    train.add_argument("--overwrite", action="store_true", help="replace an existing model folder")
    _add_train_options(train)

    comp = sub.add_parser(
        "compare",
        help="train several generators on one stratified split and evaluate them side by side",
    )
    comp.add_argument("adata", help="input .h5ad (samples x genes)")
    comp.add_argument("--label", required=True, help=".obs label to stratify and evaluate by")
    comp.add_argument(
        "--models", nargs="*", default=None, help="model names (default: every registered one)"
    )
    comp.add_argument("--test-size", type=float, default=0.3)
    comp.add_argument("--metrics", default="all", help="all, fast, or a metric name")
    comp.add_argument("--layer", default=None, help="layer with the expression values")
    comp.add_argument("--continuous", nargs="*", default=[], help=".obs numeric covariates")
    comp.add_argument("--out", required=True, help="output CSV (the tidy table)")
    _add_train_options(comp)

    gen = sub.add_parser("generate", help="generate samples from a saved model")
    gen.add_argument("model", help="folder written by `scgensynth train`")
    gen.add_argument("--adata", required=True, help="the training .h5ad (or one with its genes)")
    gen.add_argument("--out", required=True, help="output .h5ad")
    gen.add_argument("--n-obs", type=int, default=None, help="number of samples")
    gen.add_argument(
        "--covariates",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="fix covariates, e.g. tissue=Liver age=50 (default: resample training rows)",
    )
    gen.add_argument("--covariates-csv", default=None, help="CSV with one row per sample")
    gen.add_argument("--seed", type=int, default=0)
    return parser


def _quiet_lightning() -> None:
    import logging
    import warnings

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="lightning")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")


def _train_kwargs(args) -> dict:
    kw = {"batch_size": args.batch_size, "accelerator": args.accelerator}
    if args.n_steps is not None:
        kw["n_steps"] = args.n_steps
    if args.max_epochs is not None:
        kw["max_epochs"] = args.max_epochs
    return kw


def run_demo(args) -> dict:
    """Train on a stratified 70/30 split of the bundled GTEx set, generate and evaluate."""
    _quiet_lightning()
    import matplotlib

    matplotlib.use("Agg")
    import anndata as ad
    import numpy as np
    import scanpy as sc
    from sklearn.model_selection import train_test_split

    import scgensynth as sgs

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    adata = sgs.datasets.gtex_tissues()
    idx_train, idx_test = train_test_split(
        np.arange(adata.n_obs), test_size=0.3, stratify=adata.obs["tissue"], random_state=0
    )
    train, test = adata[idx_train].copy(), adata[idx_test].copy()
    print(f"Training a conditional WGAN-GP on {train.n_obs} GTEx samples x {train.n_vars} genes")
    model = sgs.tl.train_wgan(
        train, categorical_covariate_keys=["tissue"], seed=args.seed, **_train_kwargs(args)
    )
    model.save(str(out / "model"), overwrite=True)
    synth = sgs.tl.generate(model, n_obs=train.n_obs, seed=args.seed)
    synth.write_h5ad(out / "synthetic.h5ad")

    report = sgs.metrics.evaluate(
        train, synth, label_key="tissue", holdout=test, k=5, seed=args.seed
    )
    report.to_csv(out / "metrics.csv", index=False)
    values = {
        m if g == "all" else f"{m}[{g}]": float(v)
        for m, g, v in zip(report["metric"], report["group"], report["value"], strict=True)
    }
    results = {
        "n_train": int(train.n_obs),
        "n_test": int(test.n_obs),
        "n_synthetic": int(synth.n_obs),
        "metrics": values,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))

    both = ad.concat({"real": adata, "synthetic": synth}, label="sgs_source", index_unique="-")
    sc.pp.pca(both, n_comps=30, random_state=args.seed)
    sc.pp.neighbors(both, random_state=args.seed)
    sc.tl.umap(both, random_state=args.seed)
    fig = sc.pl.umap(
        both, color=["sgs_source", "tissue"], show=False, return_fig=True, wspace=0.6, size=20
    )
    fig.savefig(out / "umap_real_vs_synthetic.png", dpi=120, bbox_inches="tight")
    fig = sgs.pl.training_history(model, return_fig=True)
    fig.savefig(out / "training_history.png", dpi=120, bbox_inches="tight")

    # in silico: the same synthetic individuals as Lung and as Liver; which genes move?
    cf = sgs.tl.counterfactual(model, "tissue", "Lung", "Liver", n=1000, seed=args.seed)
    ranking = sc.get.rank_genes_groups_df(cf, "Liver")
    ranking.to_csv(out / "counterfactual_lung_to_liver.csv", index=False)
    fig = sgs.pl.ranked_genes(cf, n_genes=10, return_fig=True)
    fig.savefig(out / "counterfactual_lung_to_liver.png", dpi=120, bbox_inches="tight")
    real_diff = np.asarray(adata[adata.obs["tissue"] == "Liver"].X).mean(0) - np.asarray(
        adata[adata.obs["tissue"] == "Lung"].X
    ).mean(0)
    top_real = set(adata.var_names[np.argsort(-real_diff)[:50]])
    results["counterfactual_top50_overlap"] = len(top_real & set(ranking["names"][:50]))
    (out / "results.json").write_text(json.dumps(results, indent=2))

    v = values
    print("\nQuality (sgs.metrics.evaluate; every value in metrics.csv):")
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
    print(
        "\nIn silico, Lung -> Liver (sgs.tl.counterfactual, 1,000 synthetic individuals): "
        f"most increased {', '.join(ranking['names'][:5])}; "
        f"{results['counterfactual_top50_overlap']} of its top 50 genes are among the 50 with "
        "the largest real Liver - Lung mean difference."
    )
    print(
        f"\nWrote {out}/synthetic.h5ad, results.json, metrics.csv, "
        "umap_real_vs_synthetic.png, training_history.png, "
        "counterfactual_lung_to_liver.csv/.png, model/"
    )
    return results


def run_train(args) -> None:
    """Train a generator on an .h5ad file and save it."""
    _quiet_lightning()
    import anndata as ad

    import scgensynth as sgs

    adata = ad.read_h5ad(args.adata)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        msg = f"{out} exists; pass --overwrite to replace it or choose another --out."
        raise ValueError(msg)
    model = sgs.tl.train(
        adata,
        args.model,
        layer=args.layer,
        categorical_covariate_keys=args.categorical or None,
        continuous_covariate_keys=args.continuous or None,
        scaling=args.scaling,
        seed=args.seed,
        **_train_kwargs(args),
    )
    model.save(str(out), overwrite=True)
    print(f"Saved {model!r} to {out}")


def run_compare(args) -> None:
    """Compare generators on an .h5ad file; write the tidy table as CSV."""
    _quiet_lightning()
    import anndata as ad

    import scgensynth as sgs

    adata = ad.read_h5ad(args.adata)
    table = sgs.tl.compare_generators(
        adata,
        args.label,
        models=args.models,
        test_size=args.test_size,
        seed=args.seed,
        layer=args.layer,
        continuous_covariate_keys=args.continuous or None,
        metrics=args.metrics,
        **_train_kwargs(args),
    )
    table.to_csv(args.out, index=False)
    wide = table[table["group"] == "all"].pivot_table(
        index="metric", columns="model", values="value"
    )
    print(wide.round(3).to_string())
    print(f"\nWrote {len(table)} rows to {args.out}")


def _parse_covariates(items: list[str]) -> dict:
    fixed = {}
    for item in items:
        if "=" not in item:
            msg = f"--covariates takes KEY=VALUE pairs, got {item!r}."
            raise ValueError(msg)
        key, value = item.split("=", 1)
        fixed[key] = value
    return fixed


def run_generate(args) -> None:
    """Generate samples from a saved model into an .h5ad file."""
    _quiet_lightning()
    import anndata as ad
    import pandas as pd

    import scgensynth as sgs
    from scgensynth.model.base._output import check_output_path

    check_output_path(args.out)  # before the (slow) loading: a wrong --out fails at once
    adata = ad.read_h5ad(args.adata)
    model = sgs.model.load_model(args.model, adata=adata)
    covariates = None
    if args.covariates_csv:
        covariates = pd.read_csv(args.covariates_csv)
    elif args.covariates:
        if args.n_obs is None:
            raise ValueError("--covariates KEY=VALUE needs --n-obs.")
        fixed = _parse_covariates(args.covariates)
        for key in model.continuous_covariate_keys:
            if key in fixed:
                fixed[key] = float(fixed[key])
        covariates = fixed
    # written to --out a batch at a time: the matrix is never held whole in memory
    synth = sgs.tl.generate(
        model, n_obs=args.n_obs, covariates=covariates, seed=args.seed, filename=args.out
    )
    print(f"Wrote {synth.n_obs} synthetic samples x {synth.n_vars} genes to {args.out}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``scgensynth`` command."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import version

        print(version("scgensynth"))
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    try:
        commands = {
            "demo": run_demo,
            "train": run_train,
            "generate": run_generate,
            "compare": run_compare,
        }
        commands[args.command](args)
    except (ValueError, KeyError, TypeError, FileNotFoundError, IsADirectoryError) as err:
        print(f"scgensynth {args.command}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
