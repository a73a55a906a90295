"""Command line: ``scgensynth demo | train | generate | compare`` (also ``python -m scgensynth``).

Heavy libraries (torch, scvi-tools, Lightning, scanpy) are imported only by the command
that needs them, so ``scgensynth --help`` answers at once.

Every command checks where it will write before it reads or trains anything, and never
writes over a file or folder the user had unless ``--overwrite`` says so (nor ever over one
of its own inputs). Errors are one line on stderr (``scgensynth CMD: error: ...``, exit 1);
bad option values are argparse errors (exit 2). ``--threads N`` caps the CPU threads of
torch and the BLAS libraries for the commands that compute.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from scgensynth._utils._files import check_folder, check_output_path, make_folder

#: key of ``results.json`` that marks a folder written by ``scgensynth demo`` (the version)
DEMO_MARKER = "scgensynth_demo"
#: environment variables that set the thread pools of OpenMP (torch), the BLAS libraries,
#: numexpr and numba, read when each library loads
THREAD_VARIABLES = (
    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS",
)  # fmt: skip

logger = logging.getLogger(__name__)


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
        "--n-steps",
        type=positive_int,
        default=None,
        help="optimiser steps (default: the model's own, e.g. wgan 20000, ddpm 10000, gmda "
        "3000; the closed-form gaussian and noise models have none)",
    )
    p.add_argument("--max-epochs", type=positive_int, default=None, help="passes over the data")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--accelerator", default="auto", help="cpu, gpu or auto")
    _add_threads_option(p)


def _add_threads_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        metavar="N",
        help="use at most N CPU threads (torch, BLAS; default: the libraries' own, usually "
        "one per core)",
    )


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
        "--model",
        default="gaussian",
        help="generator name (default gaussian, the leaderboard's best; wgan, ddpm, cvae, ...)",
    )
    train.add_argument("adata", help="input .h5ad (samples x genes)")
    train.add_argument("--out", required=True, help="folder to save the model in")
    train.add_argument("--categorical", nargs="*", default=[], help=".obs categorical covariates")
    train.add_argument("--continuous", nargs="*", default=[], help=".obs numeric covariates")
    train.add_argument("--layer", default=None, help="layer with the expression values")
    train.add_argument("--scaling", default="auto", help="auto, counts, log1p, standardize, none")
    train.add_argument("--overwrite", action="store_true", help="replace an existing model folder")
    _add_train_options(train)
    dp = train.add_argument_group("differential privacy (gaussian, wgan, cvae, ddpm)")
    dp.add_argument("--epsilon", type=float, default=None, help="train privately at this ε")
    dp.add_argument("--delta", type=float, default=None, help="δ (default 1 / (10 n))")
    dp.add_argument("--max-grad-norm", type=float, default=None, help="DP-SGD clipping bound")
    dp.add_argument(
        "--public", default=None, help=".h5ad of public samples for the scaling statistics"
    )

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
    comp.add_argument(
        "--metrics",
        nargs="+",
        default=["all"],
        help="all, fast, or one or more metric names (sgs.metrics.available())",
    )
    comp.add_argument("--layer", default=None, help="layer with the expression values")
    comp.add_argument("--continuous", nargs="*", default=[], help=".obs numeric covariates")
    comp.add_argument("--out", required=True, help="output CSV (the tidy table)")
    comp.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    _add_train_options(comp)

    _add_generate_parser(sub)
    return parser


def _add_generate_parser(sub) -> None:
    """``scgensynth generate``: the model folder is enough; ``--adata`` copies ``.var``."""
    gen = sub.add_parser("generate", help="generate samples from a saved model")
    gen.add_argument("model", help="folder written by `scgensynth train`")
    gen.add_argument(
        "--adata",
        default=None,
        help="the training .h5ad (or one with its genes), to copy its .var annotations into "
        "the output; not needed: the model file holds the genes, their annotations, the "
        "training covariates and the weights",
    )
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
    gen.add_argument(
        "--counts",
        choices=["sample", "poisson", "mean"],
        default=None,
        help="for a model trained on raw counts: 'sample' integer counts (the default: the "
        "generated mean rounded at random), 'poisson' Poisson counts around it, or 'mean' the "
        "expected counts; refused for other models",
    )
    _add_threads_option(gen)


# -- files: read inputs, check outputs before any work ---------------------------------------
def _check_out_file(args, inputs: dict[str, str | None], suffix: str | None = None) -> Path:
    """Check ``--out``, a file to write, before any work (see :func:`check_output_path`).

    Refuses one of the ``inputs`` (even with ``--overwrite``), a name not ending in
    ``suffix``, a folder, a path in a missing or unwritable folder, and (without
    ``--overwrite``) an existing file.
    """
    return check_output_path(
        args.out,
        overwrite=args.overwrite,
        inputs=inputs,
        suffix=suffix,
        what="--out",
        overwrite_hint="--overwrite",
        probe=True,
    )


def _prepare_out_folder(out: Path, *, parents: bool = False, exist_ok: bool = True) -> bool:
    """Make ``out`` (a folder to write into) and check it is writable, before any work.

    Refuses a path that is a file, whose parent folder is missing (unless ``parents``), or
    (unless ``exist_ok``) that exists. Returns whether the folder was created here (so a
    failed run can remove it again).
    """
    if out.is_dir() and not exist_ok:
        msg = f"{out} exists; pass --overwrite to replace it or choose another --out."
        raise FileExistsError(msg)
    check_folder(out, "--out", parents=parents, probe=True)
    if out.is_dir():
        return False
    make_folder(out)
    try:
        check_folder(out, "--out", probe=True)
    except OSError:
        _remove_if_empty(out)
        raise
    return True


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


# -- commands ---------------------------------------------------------------------------------
#: the running command's exit stack: :func:`_quiet_lightning` enters quiet training into it
_command_stack: contextlib.ExitStack | None = None


@contextlib.contextmanager
def _command_logging() -> Iterator[None]:
    """Log one line per step of work on stderr (info), for the time of one command.

    The library's mechanism (``sgs.settings.verbosity``), restored after the command
    (``main`` may be called in-process, as the tests do).
    """
    global _command_stack  # (one command runs at a time)
    from scgensynth._settings import settings

    with settings.override(verbosity="info"), contextlib.ExitStack() as stack:
        _command_stack = stack
        try:
            yield
        finally:
            _command_stack = None


@contextlib.contextmanager
def _thread_limit(n: int | None) -> Iterator[None]:
    """At most ``n`` CPU threads for torch and the BLAS libraries, for one command.

    The environment variables reach the libraries the command has not loaded yet (run as a
    command, all of them: they load after this); torch and BLAS libraries this process has
    already loaded (``main`` called in-process) are limited directly. Everything is put
    back at the end of the command.
    """
    if n is None:
        yield
        return
    saved = {k: os.environ.get(k) for k in THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, str(n)))
    torch = sys.modules.get("torch")
    torch_threads = torch.get_num_threads() if torch is not None else None
    with contextlib.ExitStack() as stack:
        if "numpy" in sys.modules:  # first: it restores what it found, before torch's change
            with contextlib.suppress(ImportError):  # (scikit-learn's dependency)
                from threadpoolctl import threadpool_limits

                stack.enter_context(threadpool_limits(limits=n, user_api="blas"))
        if torch is not None:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            if torch_threads is not None:
                torch.set_num_threads(torch_threads)


def _quiet_lightning() -> None:
    """From here to the end of the command: no Lightning tips, device lines or noise.

    Called once the checks are done and the inputs read: it imports Lightning (seconds),
    which a command refusing its arguments should not wait for.
    """
    from scgensynth._utils._logging import quiet_training

    if _command_stack is not None:
        _command_stack.enter_context(quiet_training())


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
    """Train on a stratified 70/30 split of the bundled GTEx set, generate and evaluate.

    Checks and marks ``--out`` here; the demo itself is :func:`scgensynth._demo.run`.
    """
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
    from scgensynth import _demo

    return _demo.run(out, seed=args.seed, train_kwargs=_train_kwargs(args), marker=marker)


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


def _privacy_kwargs(args) -> dict:
    """``privacy=`` and ``public=`` of ``train`` from the command line's privacy options."""
    given = {"delta": args.delta, "max_grad_norm": args.max_grad_norm, "public": args.public}
    if args.epsilon is None:
        extra = [f"--{k.replace('_', '-')}" for k, v in given.items() if v is not None]
        if extra:
            msg = f"{', '.join(extra)}: only for private training; add --epsilon."
            raise ValueError(msg)
        return {}
    privacy = {"epsilon": args.epsilon}
    privacy.update({k: v for k, v in given.items() if k != "public" and v is not None})
    kw = {"privacy": privacy}
    if args.public is not None:
        kw["public"] = _read_h5ad(args.public, "--public")
    return kw


def run_train(args) -> None:
    """Train a generator on an .h5ad file and save it."""
    out = Path(args.out)
    # --out is checked before the data are read and the model trained, not after
    created = _prepare_out_folder(out, exist_ok=args.overwrite)
    saved = False
    try:
        import scgensynth as sgs

        adata = _read_h5ad(args.adata)
        private = _privacy_kwargs(args)
        _quiet_lightning()
        model = sgs.tl.train(
            adata,
            args.model,
            layer=args.layer,
            categorical_covariate_keys=args.categorical or None,
            continuous_covariate_keys=args.continuous or None,
            scaling=args.scaling,
            seed=args.seed,
            **_train_kwargs(args),
            **private,
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
    _check_out_file(args, {"adata": args.adata})
    import scgensynth as sgs

    adata = _read_h5ad(args.adata)
    _quiet_lightning()
    table = sgs.tl.compare_generators(
        adata,
        args.label,
        models=args.models,
        test_size=args.test_size,
        seed=args.seed,
        layer=args.layer,
        continuous_covariate_keys=args.continuous or None,
        metrics=args.metrics[0] if len(args.metrics) == 1 else args.metrics,
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


def _check_model_folder(path: str) -> None:
    """Refuse a model folder that does not exist, before the slow imports of loading it."""
    if not Path(path).exists():
        msg = f"model {path} does not exist (give the folder `scgensynth train --out` wrote)."
        raise FileNotFoundError(msg)


def run_generate(args) -> None:
    """Generate samples from a saved model into an .h5ad file.

    Without ``--adata`` the model is loaded from its file alone (genes, their annotations,
    training covariates, scaling, weights: all that generating needs).
    """
    # before the (slow) loading: a wrong --out fails at once
    inputs = {"--adata": args.adata, "model": args.model, "--covariates-csv": args.covariates_csv}
    _check_out_file(args, inputs, suffix=".h5ad")
    if args.covariates and args.n_obs is None:
        raise ValueError("--covariates KEY=VALUE needs --n-obs.")
    _check_model_folder(args.model)
    table = _read_covariates_csv(args.covariates_csv) if args.covariates_csv else None

    import scgensynth as sgs

    adata = None  # read in memory: --out is written with it closed
    if args.adata is not None:
        adata = _read_h5ad(args.adata, "--adata")
    _quiet_lightning()
    model = sgs.model.load_model(args.model, adata=adata)
    if adata is None:
        logger.info("Loaded %s without --adata: generating from the model file alone.", args.model)
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
        counts=args.counts,
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
        with _thread_limit(args.threads), _command_logging():
            commands[args.command](args)
    # errors of the user's input and files (ModelFileError is a ValueError; OSError covers
    # FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError, ...)
    except (ValueError, KeyError, TypeError, OSError, MemoryError) as err:
        print(f"scgensynth {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
