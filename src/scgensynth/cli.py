"""Command line: ``scgensynth demo | train | generate | compare`` (also ``python -m scgensynth``).

Heavy libraries (torch, scvi-tools, Lightning, scanpy) are imported only by the command
that needs them, so ``scgensynth --help`` answers at once.

Every command checks where it will write before it reads or trains anything, and never
writes over a file or folder the user had unless ``--overwrite`` says so (nor ever over one
of its own inputs). Errors are one line on stderr (``scgensynth CMD: error: ...``, exit 1);
bad option values are argparse errors (exit 2).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

#: key of ``results.json`` that marks a folder written by ``scgensynth demo`` (the version)
DEMO_MARKER = "scgensynth_demo"


# -- option types -------------------------------------------------------------------------
def _whole_number(text: str, minimum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        msg = f"must be a {what} whole number, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if value < minimum:
        msg = f"must be a {what} whole number (>= {minimum}), got {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def positive_int(text: str) -> int:
    """Whole number >= 1 (an argparse ``type``)."""
    return _whole_number(text, 1, "positive")


def non_negative_int(text: str) -> int:
    """Whole number >= 0 (an argparse ``type``)."""
    return _whole_number(text, 0, "non-negative")


def _add_train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--n-steps", type=positive_int, default=None, help="optimiser steps (default 20000)"
    )
    p.add_argument("--max-epochs", type=positive_int, default=None, help="passes over the data")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--seed", type=non_negative_int, default=0)
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
    demo.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a folder that holds other files than an earlier demo's",
    )
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
    comp.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    _add_train_options(comp)

    gen = sub.add_parser("generate", help="generate samples from a saved model")
    gen.add_argument("model", help="folder written by `scgensynth train`")
    gen.add_argument("--adata", required=True, help="the training .h5ad (or one with its genes)")
    gen.add_argument("--out", required=True, help="output .h5ad")
    gen.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    gen.add_argument("--n-obs", type=non_negative_int, default=None, help="number of samples")
    fixed = gen.add_mutually_exclusive_group()
    fixed.add_argument(
        "--covariates",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="fix covariates, e.g. tissue=Liver age=50 (default: resample training rows)",
    )
    fixed.add_argument("--covariates-csv", default=None, help="CSV with one row per sample")
    gen.add_argument("--seed", type=non_negative_int, default=0)
    return parser


# -- files: read inputs, check outputs before any work ---------------------------------------
def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file (links and relative paths included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return Path(a).resolve() == Path(b).resolve()


def _check_not_an_input(out: str | os.PathLike, inputs: dict[str, str | None]) -> None:
    """Refuse an output path that is one of the inputs, even with --overwrite."""
    for flag, path in inputs.items():
        if path is not None and _same_file(out, path):
            msg = (
                f"--out {out} is the input {flag}; writing there would replace your data. "
                "Choose another --out."
            )
            raise ValueError(msg)


def _check_out_file(
    out: str | os.PathLike, *, overwrite: bool, inputs: dict[str, str | None]
) -> Path:
    """Check an output file path before any work.

    Refuses one of the inputs, a folder, a path in a missing or unwritable folder, and
    (without ``overwrite``) an existing file.
    """
    path = Path(out)
    _check_not_an_input(path, inputs)
    if path.is_dir():
        msg = f"--out {out} is a directory; give the path of a file."
        raise IsADirectoryError(msg)
    if path.exists() and not overwrite:
        msg = f"{out} exists; pass --overwrite to replace it or choose another --out."
        raise FileExistsError(msg)
    folder = path.parent
    _check_folder_exists(folder, out)
    _check_writable(folder, out)
    return path


def _check_folder_exists(folder: Path, out: str | os.PathLike) -> None:
    if folder.exists() and not folder.is_dir():
        msg = f"The folder of --out {out} does not exist: {folder} is a file."
        raise NotADirectoryError(msg)
    if not folder.is_dir():
        msg = f"The folder of --out {out} does not exist; create it first."
        raise FileNotFoundError(msg)


def _check_writable(folder: Path, out: str | os.PathLike) -> None:
    """Refuse a folder we could not write into: by its permissions, then by a test file."""
    import tempfile

    if not os.access(folder, os.W_OK | os.X_OK):
        msg = f"Cannot write --out {out}: the folder {folder} is not writable."
        raise PermissionError(msg)
    try:
        fd, probe = tempfile.mkstemp(prefix=".scgensynth-write-test-", dir=folder)
    except OSError as err:
        msg = f"Cannot write --out {out}: creating a file in {folder} failed ({err})."
        raise PermissionError(msg) from err
    os.close(fd)
    os.unlink(probe)


def _prepare_out_folder(out: Path, *, parents: bool = False) -> bool:
    """Make ``out`` (a folder to write into) and check it is writable, before any work.

    Refuses a path that is a file or whose parent folder is missing (unless ``parents``).
    Returns whether the folder was created here (so a failed run can remove it again).
    """
    if out.exists() and not out.is_dir():
        msg = f"--out {out} is a file, not a folder; choose another --out."
        raise NotADirectoryError(msg)
    created = False
    if not out.exists():
        if not parents:
            _check_folder_exists(out.parent, out)
        first = out.parent
        while parents and not first.is_dir():
            first = first.parent
        _check_writable(first, out)
        out.mkdir(parents=parents)
        created = True
    try:
        _check_writable(out, out)
    except OSError:
        if created:
            _remove_if_empty(out)
        raise
    return created


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty (or gone): leave it
        folder.rmdir()


def _read_h5ad(path: str, flag: str = "adata"):
    """Read an .h5ad file into memory, or a one-line error naming it."""
    import anndata as ad

    if not Path(path).exists():
        msg = f"{flag} {path} does not exist."
        raise FileNotFoundError(msg)
    if Path(path).is_dir():
        msg = f"{flag} {path} is a directory, not an .h5ad file."
        raise IsADirectoryError(msg)
    try:
        return ad.read_h5ad(path)
    except OSError as err:  # not HDF5, truncated, unreadable
        msg = f"{path} is not a readable .h5ad file ({err})."
        raise OSError(msg) from err
    except (KeyError, TypeError, ValueError) as err:  # HDF5, but not an AnnData
        msg = f"{path} is not a readable .h5ad file ({type(err).__name__}: {err})."
        raise ValueError(msg) from err


def _read_covariates_csv(path: str):
    """The --covariates-csv table, or a one-line error naming the file."""
    import pandas as pd

    try:
        table = pd.read_csv(path)
    except pd.errors.EmptyDataError as err:
        msg = f"--covariates-csv {path} is empty ({err})."
        raise ValueError(msg) from err
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        msg = f"--covariates-csv {path} is not a readable CSV file ({err})."
        raise ValueError(msg) from err
    except OSError as err:
        msg = f"Cannot read --covariates-csv {path} ({err})."
        raise OSError(msg) from err
    if table.empty:
        msg = f"--covariates-csv {path} has no rows (one row per sample to generate)."
        raise ValueError(msg)
    return table


def _check_output_path_of_generate(args) -> None:
    """The library's check of an .h5ad output path, told the inputs and --overwrite."""
    from scgensynth.model.base._output import check_output_path

    inputs = [p for p in (args.adata, args.model, args.covariates_csv) if p is not None]
    check_output_path(args.out, overwrite=args.overwrite, inputs=inputs)


# -- commands ---------------------------------------------------------------------------------
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


def _written_by_demo(out: Path) -> bool:
    """Whether ``out`` is a folder an earlier ``scgensynth demo`` wrote (its results.json)."""
    try:
        results = json.loads((out / "results.json").read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(results, dict):
        return False
    # demos before the marker key wrote these keys
    return DEMO_MARKER in results or {"n_train", "n_synthetic", "metrics"} <= set(results)


def _check_demo_folder(out: Path, overwrite: bool) -> None:
    """Refuse a folder holding other files than an earlier demo's, unless ``overwrite``."""
    if not out.is_dir() or overwrite or _written_by_demo(out):
        return
    entries = sorted(p.name for p in out.iterdir())
    if entries:
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        msg = (
            f"--out {out} holds files that scgensynth demo did not write ({shown}); pass "
            "--overwrite to write the demo's files into it anyway, or choose another --out."
        )
        raise FileExistsError(msg)


def run_demo(args) -> dict:
    """Train on a stratified 70/30 split of the bundled GTEx set, generate and evaluate."""
    from importlib.metadata import version

    out = Path(args.out)
    _check_demo_folder(out, args.overwrite)
    _prepare_out_folder(out, parents=True)
    marker = {DEMO_MARKER: version("scgensynth")}
    # marks the folder as the demo's at once, so an interrupted demo can be run again into it
    results_file = out / "results.json"
    if not results_file.exists():
        results_file.write_text(json.dumps(marker, indent=2))

    _quiet_lightning()
    import matplotlib

    matplotlib.use("Agg")
    import anndata as ad
    import numpy as np
    import scanpy as sc
    from sklearn.model_selection import train_test_split

    import scgensynth as sgs

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
        **marker,
        "n_train": int(train.n_obs),
        "n_test": int(test.n_obs),
        "n_synthetic": int(synth.n_obs),
        "metrics": values,
    }
    results_file.write_text(json.dumps(results, indent=2))

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
    results_file.write_text(json.dumps(results, indent=2))

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


def _save_model(model, out: Path) -> None:
    """``model.save(out)``; if that fails, save into a new temporary folder and say where."""
    import tempfile

    try:
        model.save(str(out), overwrite=True)
    except OSError as err:
        kept = tempfile.mkdtemp(prefix="scgensynth-model-")
        try:
            model.save(kept, overwrite=True)
        except OSError:
            _remove_if_empty(Path(kept))
            raise err from None
        msg = (
            f"Saving the model to {out} failed ({err}); the trained model was saved to {kept} "
            "instead: move it where you want it."
        )
        raise OSError(msg) from err


def run_train(args) -> None:
    """Train a generator on an .h5ad file and save it."""
    out = Path(args.out)
    # --out is checked before the data are read and the model trained, not after
    if out.exists() and not out.is_dir():
        msg = f"--out {out} is a file, not a folder; choose another --out."
        raise NotADirectoryError(msg)
    if out.exists() and not args.overwrite:
        msg = f"{out} exists; pass --overwrite to replace it or choose another --out."
        raise FileExistsError(msg)
    created = _prepare_out_folder(out)
    saved = False
    try:
        _quiet_lightning()
        import scgensynth as sgs

        adata = _read_h5ad(args.adata)
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
        _save_model(model, out)
        saved = True
    finally:
        if created and not saved:
            _remove_if_empty(out)
    print(f"Saved {model!r} to {out}")


def _write_table(table, out: str) -> str:
    """``table`` to the CSV ``out``; if that fails, to a temporary file, and say where."""
    import tempfile

    try:
        table.to_csv(out, index=False)
    except OSError as err:
        fd, kept = tempfile.mkstemp(prefix="scgensynth-compare-", suffix=".csv")
        os.close(fd)
        try:
            table.to_csv(kept, index=False)
        except OSError:
            Path(kept).unlink(missing_ok=True)
            raise err from None
        msg = f"Writing {out} failed ({err}); the table was written to {kept} instead."
        raise OSError(msg) from err
    return out


def run_compare(args) -> None:
    """Compare generators on an .h5ad file; write the tidy table as CSV."""
    _check_out_file(args.out, overwrite=args.overwrite, inputs={"adata": args.adata})
    _quiet_lightning()
    import scgensynth as sgs

    adata = _read_h5ad(args.adata)
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
    _write_table(table, args.out)
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
        if key in fixed:
            msg = f"--covariates gives {key!r} twice ({fixed[key]!r} and {value!r})."
            raise ValueError(msg)
        fixed[key] = value
    return fixed


def _fixed_covariates(model, items: list[str]) -> dict:
    """``--covariates KEY=VALUE ...`` as a dict for the model: known keys, numbers parsed."""
    fixed = _parse_covariates(items)
    cat_keys = list(model.categorical_covariate_keys)
    cont_keys = list(model.continuous_covariate_keys)
    unknown = [k for k in fixed if k not in (*cat_keys, *cont_keys)]
    if unknown:
        known = f"categorical {cat_keys}, continuous {cont_keys}"
        if not cat_keys and not cont_keys:
            known = "none (it was trained without covariates)"
        msg = f"--covariates: the model has no covariate {unknown}; its covariates: {known}."
        raise ValueError(msg)
    for key in cont_keys:
        if key in fixed:
            try:
                fixed[key] = float(fixed[key])
            except ValueError:
                msg = (
                    f"--covariates {key}={fixed[key]}: {key!r} is a continuous covariate and "
                    f"needs a number, not {fixed[key]!r}."
                )
                raise ValueError(msg) from None
    return fixed


def _check_csv_columns(model, table, path: str) -> None:
    keys = [*model.categorical_covariate_keys, *model.continuous_covariate_keys]
    missing = [k for k in keys if k not in table.columns]
    if missing:
        msg = (
            f"--covariates-csv {path} lacks the model's column(s) {missing} (its columns: "
            f"{list(table.columns)[:10]}); the model's covariates are {keys}."
        )
        raise ValueError(msg)


def run_generate(args) -> None:
    """Generate samples from a saved model into an .h5ad file."""
    # before the (slow) loading: a wrong --out fails at once
    inputs = {"--adata": args.adata, "--covariates-csv": args.covariates_csv}
    _check_out_file(args.out, overwrite=args.overwrite, inputs=inputs)
    _check_output_path_of_generate(args)
    if args.covariates and args.n_obs is None:
        raise ValueError("--covariates KEY=VALUE needs --n-obs.")
    table = _read_covariates_csv(args.covariates_csv) if args.covariates_csv else None

    _quiet_lightning()
    import scgensynth as sgs

    adata = _read_h5ad(args.adata, "--adata")  # in memory: --out is written with it closed
    model = sgs.model.load_model(args.model, adata=adata)
    covariates = None
    if table is not None:
        _check_csv_columns(model, table, args.covariates_csv)
        covariates = table
    elif args.covariates:
        covariates = _fixed_covariates(model, args.covariates)
    # written to --out a batch at a time: the matrix is never held whole in memory
    synth = sgs.tl.generate(
        model,
        n_obs=args.n_obs,
        covariates=covariates,
        seed=args.seed,
        filename=args.out,
        overwrite=args.overwrite,
    )
    n_obs, n_vars = synth.n_obs, synth.n_vars
    if synth.isbacked:
        synth.file.close()
    print(f"Wrote {n_obs} synthetic samples x {n_vars} genes to {args.out}")


def _one_line(err: BaseException) -> str:
    """The message of ``err`` on one line (a KeyError's without its quotes)."""
    if isinstance(err, KeyError) and len(err.args) == 1 and isinstance(err.args[0], str):
        text = err.args[0]
    else:
        text = str(err)
    return " ".join(text.split()) or type(err).__name__


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
    commands = {
        "demo": run_demo,
        "train": run_train,
        "generate": run_generate,
        "compare": run_compare,
    }
    try:
        commands[args.command](args)
    # errors of the user's input and files (ModelFileError is a ValueError; OSError covers
    # FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError, ...)
    except (ValueError, KeyError, TypeError, OSError, MemoryError) as err:
        print(f"scgensynth {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
