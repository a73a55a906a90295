"""Speed and memory of ``sgs.metrics.precision_recall`` against scikit-learn's brute force.

Targets (issue 3): on a 10,000 x 20,000 real vs 10,000 x 20,000 synthetic float32 matrix,
precision/recall (k=50, in the data space) within 60 s on a 2-core machine, at least 5x
faster than scikit-learn's brute-force ``NearestNeighbors`` route in the same run, and at
most 2 GB of memory beyond the inputs.

The scikit-learn route is the one a careful user would write: ``NearestNeighbors(
algorithm="brute")`` k-NN radii of both sets (``kneighbors`` on the fitted set itself, so
the (k+1)-th neighbour, the first being the sample itself), then one pass of
``pairwise_distances_chunked`` over synthetic x real that settles both precision (per
synthetic row) and recall (per real column). Both routes use all threads of the machine.

Data: expression-like and realistic for the task -- 30 groups with their own means in a
low-rank gene space plus gene-specific noise, log-scale positive values; the synthetic set
comes from the same process with a wider noise and two groups missing, so precision and
recall are both informative (neither 0 nor 1). Inputs are built in float32 row chunks.

Memory is measured in a fresh child process: the resident-set high-water mark while the
metric runs (``/proc/self/status`` ``VmHWM``, reset just before the call by writing ``5`` to
``/proc/self/clear_refs``) minus the resident set just before the call, with the inputs
already in memory.

Run ``python benchmarks/bench_metrics.py --help`` for the options; results go to
``benchmarks/results/metrics.json`` and ``metrics.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
GiB = 2**30


def make_data(n: int, p: int, seed: int = 0, *, rank: int = 40, groups: int = 30):
    """Real and synthetic float32 matrices (n x p each), built chunk by chunk."""
    rng = np.random.default_rng(seed)
    loadings = (rng.standard_normal((rank, p)) / np.sqrt(rank)).astype(np.float32)
    centres = (rng.standard_normal((groups, rank)) * 2.0).astype(np.float32)
    base = rng.uniform(2.0, 8.0, p).astype(np.float32)
    noise = rng.uniform(0.2, 0.6, p).astype(np.float32)

    def one(scale: float, allowed: np.ndarray):
        X = np.empty((n, p), dtype=np.float32)
        for start in range(0, n, 1000):
            stop = min(start + 1000, n)
            g = rng.choice(allowed, stop - start)
            z = centres[g] + rng.standard_normal((stop - start, rank), dtype=np.float32) * 0.5
            block = z @ loadings
            block += base
            block += rng.standard_normal((stop - start, p), dtype=np.float32) * (noise * scale)
            np.maximum(block, 0, out=block)
            X[start:stop] = block
        return X

    real = one(1.0, np.arange(groups))
    synth = one(1.15, np.arange(2, groups))
    return real, synth


def gemm_gflops(p: int = 20_000, n: int = 2048, repeats: int = 3) -> float:
    """Float32 matrix-product throughput of this machine right now (GFLOP/s, best of 3).

    Shared machines vary by 2x from hour to hour; this puts the seconds in context.
    """
    import torch

    x, y = torch.randn(n, p), torch.randn(n, p)
    x @ y.T
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        x @ y.T
        best = min(best, time.perf_counter() - t)
    return 2 * n * n * p / best / 1e9


def sklearn_route(R: np.ndarray, S: np.ndarray, k: int) -> dict[str, float]:
    from sklearn.metrics import pairwise_distances_chunked
    from sklearn.neighbors import NearestNeighbors

    r_real = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(R).kneighbors(R)[0][:, k]
    r_syn = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(S).kneighbors(S)[0][:, k]
    precise = np.zeros(len(S), dtype=bool)
    recalled = np.zeros(len(R), dtype=bool)
    start = 0
    for D in pairwise_distances_chunked(S, R, working_memory=512):
        rows = slice(start, start + len(D))
        precise[rows] = (r_real[None, :] >= D).any(1)
        recalled |= (r_syn[rows, None] >= D).any(0)
        start += len(D)
    p, r = float(precise.mean()), float(recalled.mean())
    return {"precision": p, "recall": r, "f1": 0.0 if p + r == 0 else 2 * p * r / (p + r)}


def _status_kib() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                out[key] = int(value.split()[0])
    return out


def child(args) -> dict:
    """Peak memory of one precision_recall call, inputs already in memory."""
    import torch

    import scgensynth as sgs

    if args.threads:
        torch.set_num_threads(args.threads)
    R, S = make_data(args.n, args.p, args.seed)
    before = _status_kib()["VmRSS"] * 1024
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    t = time.perf_counter()
    sgs.metrics.precision_recall(R, S, k=args.k, device="cpu")
    seconds = time.perf_counter() - t
    peak = _status_kib()["VmHWM"] * 1024
    return {
        "inputs_bytes": R.nbytes + S.nbytes,
        "rss_before": before,
        "peak": peak,
        "extra_bytes": peak - before,
        "seconds": seconds,
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="samples in each set")
    ap.add_argument("--p", type=int, default=20_000, help="genes")
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--skip-sklearn", action="store_true")
    ap.add_argument("--skip-others", action="store_true", help="only precision/recall")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return {}

    import torch

    import scgensynth as sgs

    if args.threads:
        torch.set_num_threads(args.threads)
    gflops_before = gemm_gflops(args.p)
    print(f"float32 matrix products: {gflops_before:.0f} GFLOP/s")
    t = time.perf_counter()
    R, S = make_data(args.n, args.p, args.seed)
    print(f"data {R.shape} + {S.shape} float32 built in {time.perf_counter() - t:.1f} s")

    # warm-up on a slice, so one-time costs (imports of scikit-learn, scipy and the metric
    # modules; torch's first products) are not counted in either route
    sgs.metrics.precision_recall(R[:200], S[:200], k=5, device="cpu")
    sklearn_route(R[:200], S[:200], 5)
    t = time.perf_counter()
    ours = sgs.metrics.precision_recall(R, S, k=args.k, device="cpu")
    t_ours = time.perf_counter() - t
    print(f"sgs.metrics.precision_recall: {t_ours:.1f} s  {ours}")
    record = {
        "n": args.n,
        "p": args.p,
        "k": args.k,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "ours_seconds": t_ours,
        "ours": ours,
    }
    others = {}
    if not args.skip_others:
        for name in ("density_coverage", "adversarial_accuracy"):
            t = time.perf_counter()
            value = getattr(sgs.metrics, name)(R, S, device="cpu")
            others[name] = {"seconds": time.perf_counter() - t, "value": value}
            print(f"sgs.metrics.{name}: {others[name]['seconds']:.1f} s  {value}")
        record["others"] = others
    if not args.skip_sklearn:
        t = time.perf_counter()
        ref = sklearn_route(R, S, args.k)
        t_ref = time.perf_counter() - t
        print(f"scikit-learn brute-force route: {t_ref:.1f} s  {ref}")
        record |= {
            "sklearn_seconds": t_ref,
            "sklearn": ref,
            "speedup": t_ref / t_ours,
            # scikit-learn compares float32-rounded float64 distances; ours are exact
            "max_abs_difference": max(abs(ours[m] - ref[m]) for m in ("precision", "recall")),
        }
        print(f"speed-up: {t_ref / t_ours:.1f}x")
    del R, S
    record["gemm_gflops"] = [gflops_before, gemm_gflops(args.p)]
    print(f"float32 matrix products after: {record['gemm_gflops'][1]:.0f} GFLOP/s")

    cmd = [sys.executable, __file__, "--child", f"--n={args.n}", f"--p={args.p}"]
    cmd += [f"--k={args.k}", f"--seed={args.seed}", f"--threads={args.threads}"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    mem = json.loads(out.stdout.strip().splitlines()[-1])
    record["memory"] = mem
    print(
        f"memory beyond the inputs: {mem['extra_bytes'] / GiB:.2f} GiB "
        f"(inputs {mem['inputs_bytes'] / GiB:.2f} GiB; child run {mem['seconds']:.1f} s)"
    )

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "metrics.json").write_text(json.dumps(record, indent=2))
    lines = [
        f"# precision_recall, {args.n} x {args.p} real vs synthetic, k={args.k}",
        "",
        "| route | seconds | precision | recall |",
        "|---|---|---|---|",
        f"| sgs.metrics.precision_recall | {t_ours:.1f} | {ours['precision']:.4f} "
        f"| {ours['recall']:.4f} |",
    ]
    if "sklearn" in record:
        ref = record["sklearn"]
        lines.append(
            f"| scikit-learn brute force | {record['sklearn_seconds']:.1f} "
            f"| {ref['precision']:.4f} | {ref['recall']:.4f} |"
        )
        lines += ["", f"Speed-up: {record['speedup']:.1f}x."]
    lines.append(f"Memory beyond the inputs: {mem['extra_bytes'] / GiB:.2f} GiB.")
    lo, hi = sorted(record["gemm_gflops"])
    lines.append(f"Float32 matrix-product throughput during the run: {lo:.0f}-{hi:.0f} GFLOP/s.")
    if others:
        lines += ["", "| other metric, same data | seconds |", "|---|---|"]
        lines += [f"| {name} | {rec['seconds']:.1f} |" for name, rec in others.items()]
    (RESULTS / "metrics.md").write_text("\n".join(lines) + "\n")
    return record


if __name__ == "__main__":
    main()
