"""Peak memory of training a generator on a large expression matrix.

The model is ``--model`` (a name of ``sgs.model.available()``; default ``wgan``, the case the
target was first set for; ``gaussian`` is the recommended default of ``sgs.tl.train``).

Target: on a 10,000 x 20,000 float32 matrix (800 MB), training must not need more than
3x the matrix size, i.e. ``(peak RSS - baseline RSS) <= 3 * matrix bytes``, where

- *baseline RSS* is the resident set of a fresh Python process right after importing numpy,
  torch, lightning, scvi-tools and scgensynth (before the matrix exists);
- *peak RSS* is the largest resident set of that process from then until training ends;
  it therefore **includes the matrix itself** (1x), the AnnData wrapper, the scvi-tools
  registration, the model construction (which fits the scaling statistics in one pass over
  the data), the networks and optimiser states, the data loader, the validation loop and,
  by default, the model-selection callback (which keeps up to 2,000 scaled reference rows).

Every case runs in its own fresh subprocess (``--child``) so peaks never carry over. Inside
the child the peak of each phase is read from ``/proc/self/status`` (``VmHWM``), resetting the
high-water mark between phases by writing ``5`` to ``/proc/self/clear_refs``; where that is
not allowed the cumulative ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is used (same peak,
no per-phase split). The matrix is built in row chunks in float32, so building it costs no
more than the matrix plus one chunk.

Cases: ``dense`` (default training, ``selection="conditional"``, ``train_size=0.9``),
``dense-noselect`` (``selection=None``, ``train_size=1.0``) and ``csr`` (a scipy CSR matrix
of the same shape at ``--density``; its ratio is reported against both the CSR bytes and the
dense-equivalent bytes; the 3x target is defined for the dense case).

Run ``python benchmarks/bench_memory.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

N_CATEGORIES = 10
TARGET_RATIO = 3.0
CASES = ("dense", "dense-noselect", "csr")
MiB = 2**20


# -- measurements inside the child -----------------------------------------------------------
def _status_kib() -> dict[str, int]:
    out = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":")
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def _maxrss_bytes() -> int:
    # ru_maxrss is in KiB on Linux, bytes on macOS
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _rss_bytes() -> int:
    status = _status_kib()
    return status["VmRSS"] * 1024 if "VmRSS" in status else _maxrss_bytes()


def _reset_peak() -> bool:
    """Reset the kernel's RSS high-water mark (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


class PhaseRecorder:
    """Current and peak RSS after each phase; peak per phase where the kernel allows."""

    def __init__(self):
        self.phases: list[dict[str, Any]] = []
        self.per_phase = _reset_peak()
        self._t = time.perf_counter()

    def mark(self, name: str) -> None:
        status = _status_kib()
        per_phase = self.per_phase and "VmHWM" in status
        peak = status["VmHWM"] * 1024 if per_phase else _maxrss_bytes()
        now = time.perf_counter()
        self.phases.append(
            {
                "phase": name,
                "rss_after": _rss_bytes(),
                "peak": peak,
                "seconds": now - self._t,
            }
        )
        if self.per_phase:
            self.per_phase = _reset_peak()
        self._t = time.perf_counter()


def _make_dense(n_obs: int, n_genes: int, rng, chunk: int = 500):
    import numpy as np

    gene_mu = rng.normal(1.0, 1.5, size=n_genes).astype(np.float32)
    X = np.empty((n_obs, n_genes), dtype=np.float32)
    for start in range(0, n_obs, chunk):
        stop = min(start + chunk, n_obs)
        block = rng.standard_normal((stop - start, n_genes), dtype=np.float32)
        block *= 0.8
        block += gene_mu
        np.exp(block, out=block)
        np.log1p(block, out=block)
        X[start:stop] = block
    return X


def _make_csr(n_obs: int, n_genes: int, density: float, rng):
    """CSR with a fixed number of non-zeros per row, filled in place (no stacking copies)."""
    import numpy as np
    from scipy import sparse

    k = max(1, min(n_genes, round(density * n_genes)))
    data = np.empty(n_obs * k, dtype=np.float32)
    indices = np.empty(n_obs * k, dtype=np.int32)
    indptr = np.arange(0, (n_obs + 1) * k, k, dtype=np.int64)
    for i in range(n_obs):
        cols = np.sort(rng.choice(n_genes, size=k, replace=False))
        indices[i * k : (i + 1) * k] = cols
    for start in range(0, n_obs * k, 1 << 22):
        stop = min(start + (1 << 22), n_obs * k)
        block = rng.standard_normal(stop - start, dtype=np.float32)
        block += 1.0
        np.exp(block, out=block)
        np.log1p(block, out=block)
        data[start:stop] = block
    return sparse.csr_matrix((data, indices, indptr), shape=(n_obs, n_genes))


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One measurement in this (fresh) process; returns the record the parent prints."""
    rec = PhaseRecorder()
    import logging
    import warnings

    import anndata as ad
    import lightning.pytorch  # noqa: F401
    import numpy as np
    import pandas as pd
    import scvi  # noqa: F401
    import torch

    import scgensynth as sgs
    import scgensynth.model

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "scvi", "scgensynth"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    rec.mark("imports (python, numpy, torch, lightning, scvi-tools, scgensynth)")
    baseline = _rss_bytes()

    rng = np.random.default_rng(args.seed)
    if args.case == "csr":
        X = _make_csr(args.n_obs, args.n_genes, args.density, rng)
        matrix_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    else:
        X = _make_dense(args.n_obs, args.n_genes, rng)
        matrix_bytes = X.nbytes
    groups = rng.integers(0, N_CATEGORIES, size=args.n_obs)
    obs = pd.DataFrame(
        {"group": pd.Categorical([f"group_{g}" for g in groups])},
        index=[f"cell_{i}" for i in range(args.n_obs)],
    )
    var = pd.DataFrame(index=[f"gene_{j}" for j in range(args.n_genes)])
    adata = ad.AnnData(X=X, obs=obs, var=var)
    rec.mark("create matrix + AnnData")

    cls = sgs.model.get_model_class(args.model)
    cls.setup_anndata(adata, categorical_covariate_keys=["group"])
    rec.mark("setup_anndata")

    torch.manual_seed(args.seed)
    model = cls(adata, scaling="standardize")
    rec.mark(f"{cls.__name__}(...) (fits scaling statistics)")

    selection = None if args.case == "dense-noselect" else "conditional"
    model.train(
        max_epochs=1,
        limit_train_batches=args.max_steps,
        train_size=1.0 if selection is None else 0.9,
        selection=selection,
        enable_progress_bar=False,
        accelerator="cpu",
    )
    rec.mark(f"train ({args.max_steps} steps, selection={selection!r})")

    peak = max(p["peak"] for p in rec.phases[1:])  # after the baseline was taken
    dense_bytes = args.n_obs * args.n_genes * 4
    return {
        "case": args.case,
        "model": args.model,
        "n_obs": args.n_obs,
        "n_genes": args.n_genes,
        "density": args.density if args.case == "csr" else 1.0,
        "max_steps": args.max_steps,
        "selection": selection,
        "matrix_bytes": int(matrix_bytes),
        "dense_equivalent_bytes": int(dense_bytes),
        "baseline_rss": int(baseline),
        "peak_rss": int(peak),
        "peak_minus_baseline": int(peak - baseline),
        "ratio": (peak - baseline) / matrix_bytes,
        "ratio_vs_dense_bytes": (peak - baseline) / dense_bytes,
        "per_phase_peaks": rec.per_phase,
        "phases": rec.phases,
        "process_maxrss": _maxrss_bytes(),
        "torch_threads": torch.get_num_threads(),
    }


# -- parent ----------------------------------------------------------------------------------
def run_case(case: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one case in a fresh interpreter and return its record."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--case",
        case,
        "--n-obs",
        str(args.n_obs),
        "--n-genes",
        str(args.n_genes),
        "--max-steps",
        str(args.max_steps),
        "--density",
        str(args.density),
        "--threads",
        str(args.threads),
        "--seed",
        str(args.seed),
        "--model",
        args.model,
    ]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    marker = "@@RESULT@@"
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(marker)]
    if proc.returncode != 0 or not lines:
        return {
            "case": case,
            "error": f"child exited with {proc.returncode}",
            "stderr_tail": proc.stderr[-3000:],
        }
    record = json.loads(lines[-1][len(marker) :])
    record["wall_s"] = time.perf_counter() - t
    return record


def _mib(n: float) -> str:
    return f"{n / MiB:,.0f}"


def print_record(r: dict[str, Any]) -> None:
    print()
    if "error" in r:
        print(f"[{r['case']}] FAILED: {r['error']}\n{r['stderr_tail']}")
        return
    kind = (
        f"scipy CSR, density {r['density']:g}"
        if r["case"] == "csr"
        else "dense float32 numpy array"
    )
    print(
        f"[{r['case']}] {r['n_obs']:,} x {r['n_genes']:,} {kind}: matrix "
        f"{_mib(r['matrix_bytes'])} MiB; train {r['max_steps']} steps, "
        f"selection={r['selection']!r} ({r['wall_s']:.0f} s)"
    )
    how = "peak within the phase" if r["per_phase_peaks"] else "cumulative process peak"
    header = f"  {'phase':<62} {'RSS after':>10} {'peak':>10} {'s':>5}"
    print(header + f"   (MiB; peak = {how})")
    for p in r["phases"]:
        print(
            f"  {p['phase']:<62} {_mib(p['rss_after']):>10} {_mib(p['peak']):>10} "
            f"{p['seconds']:>5.1f}"
        )
    print(
        f"  baseline RSS (after imports) {_mib(r['baseline_rss'])} MiB, peak RSS "
        f"{_mib(r['peak_rss'])} MiB, peak - baseline {_mib(r['peak_minus_baseline'])} MiB "
        f"(includes the matrix itself)"
    )
    line = f"  ratio (peak - baseline) / matrix bytes = {r['ratio']:.2f}x"
    if r["case"] == "csr":
        line += f"; / dense-equivalent bytes = {r['ratio_vs_dense_bytes']:.2f}x"
    else:
        verdict = "MET" if r["ratio"] <= TARGET_RATIO else "NOT MET"
        line += f"  -> target <= {TARGET_RATIO:g}x {verdict}"
    print(line)


def print_summary(records: list[dict[str, Any]]) -> None:
    print()
    header = (
        f"{'case':<16} {'matrix MiB':>10} {'baseline':>9} {'peak':>8} {'peak-base':>10} "
        f"{'ratio':>7} {'vs dense':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in records:
        if "error" in r:
            print(f"{r['case']:<16} failed")
            continue
        print(
            f"{r['case']:<16} {_mib(r['matrix_bytes']):>10} {_mib(r['baseline_rss']):>9} "
            f"{_mib(r['peak_rss']):>8} {_mib(r['peak_minus_baseline']):>10} "
            f"{r['ratio']:>6.2f}x {r['ratio_vs_dense_bytes']:>8.2f}x"
        )
    print(
        "RSS in MiB. ratio = (peak RSS - baseline RSS) / matrix bytes; 'vs dense' divides by "
        "the dense float32 size. Baseline = RSS after imports, before the matrix exists."
    )
    dense = [r for r in records if r.get("case") == "dense" and "error" not in r]
    if dense:
        r = dense[0]
        verdict = "MET" if r["ratio"] <= TARGET_RATIO else "NOT MET"
        print(
            f"Target (dense, default training): (peak - baseline) <= {TARGET_RATIO:g}x matrix "
            f"bytes: {verdict} ({r['ratio']:.2f}x)"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-obs", type=int, default=10_000, help="samples (default 10000)")
    parser.add_argument("--n-genes", type=int, default=20_000, help="genes (default 20000)")
    parser.add_argument(
        "--max-steps",
        type=int,
        default=20,
        help="training mini-batches (one epoch limited to this many; default 20)",
    )
    parser.add_argument(
        "--cases",
        nargs="+",
        choices=CASES,
        default=list(CASES),
        help=f"cases to run (default: all of {', '.join(CASES)})",
    )
    parser.add_argument(
        "--density", type=float, default=0.1, help="non-zero share of the csr case (0.1)"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads in the child (default 1)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--model",
        default="wgan",
        help="registered generator (sgs.model.available(); default wgan)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON results file (default benchmarks/results/memory.json for wgan, "
        "memory_<model>.json for another model)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=CASES, default="dense", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.out is None:
        name = "memory.json" if args.model == "wgan" else f"memory_{args.model}.json"
        args.out = Path(__file__).resolve().parent / "results" / name
    if args.child:
        record = child(args)
        print("@@RESULT@@" + json.dumps(record), flush=True)
        return 0
    print(
        f"Peak memory of {args.model} training; each case in a fresh subprocess, run one after "
        "another. Counted: resident set (RSS) of the child from after its imports to the end "
        "of training - matrix, AnnData, scvi-tools setup, model construction (scaling fit), "
        "networks, optimisers, loaders, validation and selection. Not counted: the imports "
        "themselves (baseline)."
    )
    t0 = time.perf_counter()
    records = []
    for case in args.cases:
        record = run_case(case, args)
        print_record(record)
        records.append(record)
    print_summary(records)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "config": {
            "n_obs": args.n_obs,
            "n_genes": args.n_genes,
            "max_steps": args.max_steps,
            "density": args.density,
            "threads": args.threads,
            "seed": args.seed,
            "model": args.model,
            "target_ratio": TARGET_RATIO,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "counted": (
                "peak RSS of a fresh child process minus its RSS after imports; includes the "
                "matrix itself"
            ),
        },
        "results": records,
        "wall_s": time.perf_counter() - t0,
    }
    args.out.write_text(json.dumps(payload, indent=2))
    print(f"\nresults written to {args.out} (total {payload['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
