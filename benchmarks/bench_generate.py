"""Generating, and measuring, large synthetic sets: in memory (dense) against backed (on disk).

For each size (default 10,000 and 50,000 samples x 20,000 genes) and each mode:

- ``dense``: ``model.generate(n)`` returns an in-memory AnnData (float32 matrix);
- ``backed``: ``model.generate(n, filename=...)`` writes the samples to an ``.h5ad`` a batch
  at a time and returns it backed;

the benchmark records, in a fresh subprocess per case (so peaks never carry over):

1. **generation**: seconds, samples/s and MB/s of float32 output, and the peak resident
   memory above the baseline (the process after imports, with the model loaded);
2. **metrics** on the generated set against the real training data: ``frechet_distance``
   (PCA), ``reconstruction_error`` (5-fold, 90 % of variance) and ``mean_correlation``, which
   read a backed set in blocks: seconds and peak memory above the same baseline.

Peaks come from ``/proc/self/status`` (``VmHWM``, reset between phases through
``/proc/self/clear_refs``), as in ``bench_memory.py``. The model is a WGAN-GP trained
briefly (``--steps``) on bladderbatch (57 real samples, the first 20,000 of its 22,283
genes; ``tests/data``); generation speed does not depend on how long it trained. The
memory ratio (backed / dense) and the throughput ratio are measured side by side in one run.

Run ``python benchmarks/bench_generate.py --help`` for the options; results go to
``benchmarks/results/generate.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_memory import _reset_peak, _rss_bytes, _status_kib

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "bladderbatch.h5ad"
RESULTS = ROOT / "benchmarks" / "results"
MiB = 2**20


def _peak_since_reset() -> int:
    status = _status_kib()
    return status.get("VmHWM", 0) * 1024


def _real(n_genes: int):
    import anndata as ad

    adata = ad.read_h5ad(DATA)
    return adata[:, : min(n_genes, adata.n_vars)].copy()


def train(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Train the model once, in this process, and save it for the children."""
    import torch

    import scgensynth as sgs

    torch.set_num_threads(args.threads)
    real = _real(args.n_genes)
    t = time.perf_counter()
    model = sgs.tl.train_wgan(
        real, categorical_covariate_keys=["cancer"], n_steps=args.steps, batch_size=16,
        train_size=1.0, selection=None, seed=0, enable_progress_bar=False,
    )  # fmt: skip
    seconds = time.perf_counter() - t
    model.save(folder / "model", overwrite=True)
    return {"train_seconds": seconds, "n_real": real.n_obs, "n_genes": real.n_vars}


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One case (size x mode) in a fresh process."""
    import logging
    import warnings

    import torch

    import scgensynth as sgs

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "scvi", "scgensynth"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    real = _real(args.n_genes)
    model = sgs.model.load_model(Path(args.folder) / "model", adata=real)
    baseline = _rss_bytes()
    per_phase = _reset_peak()
    out: dict[str, Any] = {"n_obs": args.n_obs, "mode": args.mode, "per_phase": per_phase}
    filename = Path(args.folder) / f"synth_{args.n_obs}.h5ad" if args.mode == "backed" else None

    t = time.perf_counter()
    synth = model.generate(args.n_obs, seed=0, batch_size=args.batch_size, filename=filename)
    seconds = time.perf_counter() - t
    matrix = args.n_obs * real.n_vars * 4
    out["generate"] = {
        "seconds": seconds,
        "samples_per_s": args.n_obs / seconds,
        "mb_per_s": matrix / MiB / seconds,
        "peak_above_baseline": _peak_since_reset() - baseline,
        "matrix_bytes": matrix,
    }
    if filename is not None:
        out["generate"]["file_bytes"] = filename.stat().st_size
    _reset_peak()
    baseline_metrics = _rss_bytes()

    t = time.perf_counter()
    values = {
        "frechet_distance_pca": sgs.metrics.frechet_distance(real, synth),
        "rem_median_ratio": sgs.metrics.reconstruction_error(real, synth, n_components=0.9)[
            "median_ratio"
        ],
        "mean_correlation": sgs.metrics.mean_correlation(real, synth),
    }
    out["metrics"] = {
        "seconds": time.perf_counter() - t,
        "peak_above_baseline": _peak_since_reset() - baseline,
        "peak_above_start": _peak_since_reset() - baseline_metrics,
        "values": values,
    }
    return out


def _run_child(args: argparse.Namespace, folder: Path, n_obs: int, mode: str) -> dict:
    cmd = [
        sys.executable, __file__, "--child", "--folder", str(folder), "--n-obs", str(n_obs),
        "--mode", mode, "--threads", str(args.threads), "--n-genes", str(args.n_genes),
        "--batch-size", str(args.batch_size),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child {n_obs} {mode} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _table(rows: list[dict], info: dict) -> str:
    lines = [
        "# Generating large sets: in memory vs backed\n",
        f"{info['date']}, {info['machine']}, {info['threads']} thread(s); WGAN-GP trained "
        f"{info['steps']} steps on bladderbatch ({info['n_real']} x {info['n_genes']}); "
        f"batch {info['batch_size']}. Peak = resident memory above the post-load baseline.\n",
        "| samples | mode | generate s | samples/s | MB/s | gen. peak MB | peak / matrix "
        "| metrics s | metrics peak MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        g, m = r["generate"], r["metrics"]
        lines.append(
            f"| {r['n_obs']:,} | {r['mode']} | {g['seconds']:.1f} | {g['samples_per_s']:,.0f} "
            f"| {g['mb_per_s']:,.0f} | {g['peak_above_baseline'] / MiB:,.0f} "
            f"| {g['peak_above_baseline'] / g['matrix_bytes']:.3f} | {m['seconds']:.1f} "
            f"| {m['peak_above_baseline'] / MiB:,.0f} |"
        )
    lines.append("\nSide by side (backed / dense, same size):\n")
    lines.append("| samples | gen. memory | gen. throughput | metrics memory | metrics time |")
    lines.append("|---|---|---|---|---|")
    by = {(r["n_obs"], r["mode"]): r for r in rows}
    for n in sorted({r["n_obs"] for r in rows}):
        if (n, "dense") in by and (n, "backed") in by:
            d, b = by[n, "dense"], by[n, "backed"]

            def ratio(phase: str, key: str, b=b, d=d) -> float:
                return b[phase][key] / d[phase][key]

            lines.append(
                f"| {n:,} | {ratio('generate', 'peak_above_baseline'):.3f} "
                f"| {ratio('generate', 'samples_per_s'):.2f} "
                f"| {ratio('metrics', 'peak_above_baseline'):.3f} "
                f"| {ratio('metrics', 'seconds'):.2f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--modes", nargs="+", default=["dense", "backed"])
    parser.add_argument("--n-genes", type=int, default=20_000)
    parser.add_argument("--steps", type=int, default=100, help="training steps of the model")
    parser.add_argument("--batch-size", type=int, default=4096, help="generation batch")
    parser.add_argument("--threads", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--n-obs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    with tempfile.TemporaryDirectory(prefix="sgs_bench_generate_") as tmp:
        folder = Path(tmp)
        info = train(args, folder)
        info.update(
            date=time.strftime("%Y-%m-%d"), machine=f"{platform.machine()}, "
            f"{os.cpu_count()} cores", threads=args.threads, steps=args.steps,
            batch_size=args.batch_size,
        )  # fmt: skip
        rows = []
        for n in args.sizes:
            for mode in args.modes:
                rec = _run_child(args, folder, n, mode)
                rows.append(rec)
                g = rec["generate"]
                print(
                    f"{n:>7,} {mode:>6}: generate {g['seconds']:.1f} s "
                    f"({g['samples_per_s']:,.0f}/s), peak {g['peak_above_baseline'] / MiB:,.0f}"
                    f" MB; metrics {rec['metrics']['seconds']:.1f} s, peak "
                    f"{rec['metrics']['peak_above_baseline'] / MiB:,.0f} MB",
                    flush=True,
                )
                for f in folder.glob("synth_*.h5ad"):
                    f.unlink()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "generate.json").write_text(json.dumps({"info": info, "rows": rows}, indent=2))
    table = _table(rows, info)
    (RESULTS / "generate.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
