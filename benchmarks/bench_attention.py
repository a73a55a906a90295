"""Speed and memory of ``SparseGeneAttention``: forward + backward grow linearly with edges.

Setting: 22,283 genes (the width of bladderbatch / an HG-U133A array), batch 32, random
directed graphs of 50,000, 100,000 and 200,000 edges (duplicates merged, so slightly fewer),
``learn_gamma=True`` so every parameter gets a gradient. One *step* is
``attn(x).square().sum().backward()`` with ``x`` requiring grad.

- **Time**: after warm-up, the edge counts are timed in alternating rounds (so a busy spell
  of a shared machine hits all of them alike); the median of the repeats is reported, as wall
  time and as process CPU time, with the time per edge, the ratios of times against the
  ratios of edges, and a least-squares line ``time = a + b * edges`` (``a``: the per-gene
  work, independent of edges).
- **Memory**: the 100,000-edge case runs again in a fresh subprocess; reported is its peak
  resident set during the steps minus its resident set just before (inputs and layer
  already built), against the 1.85 GiB that one dense 22,283 x 22,283 float32 matrix needs.

Writes ``benchmarks/results/attention.json`` and ``attention.md``. Runs in about a minute
on two CPU cores. Run ``python benchmarks/bench_attention.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

N_GENES = 22_283
MiB = 2**20
RESULTS = Path(__file__).resolve().parent / "results"


def _build(n_genes: int, n_edges: int, batch: int, seed: int, device: str):
    import numpy as np
    import torch

    from scgensynth.nn._attention import SparseGeneAttention

    rng = np.random.default_rng(seed)
    graph = (rng.integers(0, n_genes, n_edges), rng.integers(0, n_genes, n_edges))
    attn = SparseGeneAttention(n_genes, graph, learn_gamma=True).to(device)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n_genes, generator=gen).to(device).requires_grad_(True)
    return attn, x


def _step(attn, x) -> None:
    import torch

    attn.zero_grad(set_to_none=True)
    x.grad = None
    attn(x).square().sum().backward()
    if x.is_cuda:
        torch.cuda.synchronize()


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def child(args: argparse.Namespace) -> dict[str, Any]:
    """Peak memory of the steps of one case, in this fresh process."""
    import torch

    torch.set_num_threads(args.threads)
    attn, x = _build(args.n_genes, args.memory_edges, args.batch, args.seed, args.device)
    before = (_status_kib("VmRSS") or 0) * 1024
    try:  # reset the kernel's high-water mark so imports and set-up do not count
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        per_phase = True
    except OSError:
        per_phase = False
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    for _ in range(3):
        _step(attn, x)
    hwm = _status_kib("VmHWM")
    peak = hwm * 1024 if per_phase and hwm else resource.getrusage(resource.RUSAGE_SELF)[2] * 1024
    out = {
        "n_edges": attn.n_edges,
        "rss_before": before,
        "peak_rss": peak,
        "peak_minus_before": peak - before,
        "peak_is_per_phase": per_phase,
    }
    if args.device.startswith("cuda"):
        out["cuda_peak_allocated"] = int(torch.cuda.max_memory_allocated())
    return out


def measure_memory(args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child"]
    cmd += ["--n-genes", str(args.n_genes), "--batch", str(args.batch)]
    cmd += ["--memory-edges", str(args.memory_edges), "--threads", str(args.threads)]
    cmd += ["--seed", str(args.seed), "--device", args.device]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@RESULT@@")]
    if proc.returncode != 0 or not lines:
        return {"error": f"child exited with {proc.returncode}", "stderr": proc.stderr[-2000:]}
    return json.loads(lines[-1][len("@@RESULT@@") :])


def measure_time(args: argparse.Namespace) -> list[dict[str, Any]]:
    import torch

    torch.set_num_threads(args.threads)
    cases = [_build(args.n_genes, e, args.batch, args.seed, args.device) for e in args.edges]
    for attn, x in cases:
        for _ in range(args.warmup):
            _step(attn, x)
    wall: list[list[float]] = [[] for _ in cases]
    cpu: list[list[float]] = [[] for _ in cases]
    for _ in range(args.repeats):
        for i, (attn, x) in enumerate(cases):
            w, c = time.perf_counter(), time.process_time()
            _step(attn, x)
            wall[i].append(time.perf_counter() - w)
            cpu[i].append(time.process_time() - c)
    return [
        {
            "requested_edges": requested,
            "n_edges": attn.n_edges,
            "wall_median_s": statistics.median(w),
            "wall_min_s": min(w),
            "cpu_median_s": statistics.median(c),
            "wall_s": w,
        }
        for requested, (attn, _), w, c in zip(args.edges, cases, wall, cpu, strict=True)
    ]


def _line(edges: list[int], times: list[float]) -> tuple[float, float]:
    n = len(edges)
    mx, my = sum(edges) / n, sum(times) / n
    slope = sum((e - mx) * (t - my) for e, t in zip(edges, times, strict=True)) / sum(
        (e - mx) ** 2 for e in edges
    )
    return my - slope * mx, slope


def report(timing: list[dict[str, Any]], memory: dict[str, Any], args) -> str:
    base = timing[0]
    lines = [
        f"SparseGeneAttention forward + backward, {args.n_genes:,} genes, batch {args.batch}, "
        f"device {args.device}, {args.threads} torch thread(s); medians of {args.repeats} "
        "alternating repeats.",
        "",
        "| edges | wall median (ms) | CPU median (ms) | ns per edge x sample | time ratio | "
        "edge ratio |",
        "|---|---|---|---|---|---|",
    ]
    for r in timing:
        per = r["wall_median_s"] / (r["n_edges"] * args.batch) * 1e9
        lines.append(
            f"| {r['n_edges']:,} | {r['wall_median_s'] * 1e3:.1f} | "
            f"{r['cpu_median_s'] * 1e3:.1f} | {per:.2f} | "
            f"{r['wall_median_s'] / base['wall_median_s']:.2f} | "
            f"{r['n_edges'] / base['n_edges']:.2f} |"
        )
    a, b = _line([r["n_edges"] for r in timing], [r["wall_median_s"] for r in timing])
    lines += [
        "",
        f"Least-squares line: time = {a * 1e3:.1f} ms + {b * 1e9:.0f} ns x edges "
        f"(intercept: the per-gene work, {args.n_genes:,} x {args.batch}).",
    ]
    if "error" in memory:
        lines.append(f"Memory: FAILED ({memory['error']})")
    else:
        dense = args.n_genes**2 * 4
        how = "peak within the steps" if memory["peak_is_per_phase"] else "process peak"
        lines.append(
            f"Memory, {memory['n_edges']:,} edges (fresh process, {how}): peak RSS - RSS before "
            f"the steps = {memory['peak_minus_before'] / MiB:,.0f} MiB; one dense "
            f"{args.n_genes:,} x {args.n_genes:,} float32 matrix = {dense / MiB:,.0f} MiB."
        )
        if "cuda_peak_allocated" in memory:
            lines.append(f"CUDA peak allocated: {memory['cuda_peak_allocated'] / MiB:,.0f} MiB.")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-genes", type=int, default=N_GENES)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument(
        "--edges", type=int, nargs="+", default=[50_000, 100_000, 200_000], help="edge counts"
    )
    parser.add_argument("--memory-edges", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "attention.json")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print("@@RESULT@@" + json.dumps(child(args)), flush=True)
        return 0
    t0 = time.perf_counter()
    timing = measure_time(args)
    memory = measure_memory(args)
    text = report(timing, memory, args)
    print(text)
    import torch

    payload = {
        "config": {
            "n_genes": args.n_genes,
            "batch": args.batch,
            "edges_requested": args.edges,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "threads": args.threads,
            "device": args.device,
            "seed": args.seed,
            "torch": torch.__version__,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d %H:%M"),
        },
        "timing": timing,
        "memory": memory,
        "wall_s": time.perf_counter() - t0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2))
    args.out.with_suffix(".md").write_text(
        f"# SparseGeneAttention benchmark ({payload['config']['date']})\n\n{text}\n"
    )
    print(f"\nresults written to {args.out} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
