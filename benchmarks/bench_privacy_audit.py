"""Speed and memory of the privacy audit against ``distance_to_closest_record``.

Times, side by side in one run and on the same data, ``distance_to_closest_record(train,
synth, holdout)`` (the reference neighbour metric), ``membership_inference`` with each
attack alone (``("distance",)``, ``("logan",)``, ``("domias",)``) and ``privacy_report``
(every attack plus the closeness checks), all with their defaults (``n_components=50``,
``n_bootstrap=200``) on the CPU.

Data: expression-like with realistic gene-gene structure -- a low-rank-plus-noise float32
matrix (30 factors with gene loadings, a gene baseline and gene-specific noise), built in
row chunks. ``train`` has n samples, ``holdout`` n/5 and ``synthetic`` n: a share
(``--copy-share``, default 10 %) are training samples plus small noise (what a memorising
generator emits), the rest new samples of the same process -- so the attack AUCs are
informative (neither 0.5 nor 1) and show whether a change weakens an attack.

Every case runs in a fresh child process (``--child``). Memory: the resident-set
high-water mark while the call runs (``/proc/self/status`` ``VmHWM``, reset just before the
call by writing ``5`` to ``/proc/self/clear_refs``) minus the resident set just before the
call, with the inputs already in memory; reported in bytes and as a multiple of the
training matrix.

Run ``python benchmarks/bench_privacy_audit.py --help`` for the options; results go to
``benchmarks/results/privacy_audit.json`` and ``privacy_audit.md``. Records are kept per
``--label`` (e.g. ``before`` / ``after`` a change), so two runs can be compared in one table.
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
from bench_metrics import _status_kib

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CASES = ("dcr", "mi_distance", "mi_logan", "mi_domias", "privacy_report")


def make_data(n: int, p: int, seed: int = 0, *, rank: int = 30, copy_share: float = 0.1):
    """Train (n x p), holdout (n/5 x p) and synthetic (n x p) float32 matrices."""
    rng = np.random.default_rng(seed)
    loadings = (rng.standard_normal((rank, p)) / np.sqrt(rank)).astype(np.float32)
    base = rng.uniform(2.0, 8.0, p).astype(np.float32)
    noise = rng.uniform(0.3, 0.8, p).astype(np.float32)

    def draw(m: int) -> np.ndarray:
        X = np.empty((m, p), dtype=np.float32)
        for start in range(0, m, 1000):
            stop = min(start + 1000, m)
            z = rng.standard_normal((stop - start, rank), dtype=np.float32) * 1.5
            block = z @ loadings
            block += base
            block += rng.standard_normal((stop - start, p), dtype=np.float32) * noise
            X[start:stop] = block
        return X

    train, holdout, synth = draw(n), draw(max(n // 5, 20)), draw(n)
    n_copy = round(copy_share * n)
    rows = rng.choice(n, n_copy, replace=False)
    for start in range(0, n_copy, 1000):
        r = rows[start : start + 1000]
        jitter = rng.standard_normal((len(r), p), dtype=np.float32) * (0.05 * noise)
        synth[start : start + len(r)] = train[r] + jitter
    return train, holdout, synth


def _call(case: str, T, S, H, seed: int):
    """Run one case; return its summary numbers (AUCs, DCR ratio)."""
    import scgensynth as sgs

    if case == "dcr":
        d = sgs.metrics.distance_to_closest_record(T, S, H, device="cpu", seed=seed)
        return {"ratio": d["ratio"], "nearer_train": d["nearer_train"]}
    if case.startswith("mi_"):
        table = sgs.metrics.membership_inference(
            T, S, H, attacks=(case[3:],), device="cpu", seed=seed
        )
        r = table.iloc[0]
        return {"auc": float(r.auc), "auc_low": float(r.auc_low), "auc_high": float(r.auc_high)}
    report = sgs.metrics.privacy_report(T, S, H, device="cpu", seed=seed)
    aucs = report.attacks.set_index("attack")["auc"].round(4).to_dict()
    return {"safe": report.safe, "near_copies": report.near_copies, "aucs": aucs}


def child(args) -> dict:
    """Time and peak memory of one case, inputs already in memory."""
    import torch

    torch.set_num_threads(args.threads)
    n, p = args.n, args.p
    T, H, S = make_data(n, p, args.seed, copy_share=args.copy_share)
    _call(args.case, T[:200, :50], S[:200, :50], H[:100, :50], args.seed)  # warm imports
    before = _status_kib()["VmRSS"] * 1024
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    t = time.perf_counter()
    result = _call(args.case, T, S, H, args.seed)
    seconds = time.perf_counter() - t
    peak = _status_kib()["VmHWM"] * 1024
    return {
        "case": args.case, "n": n, "p": p, "seconds": seconds, "train_bytes": T.nbytes,
        "rss_before": before, "peak": peak, "extra_bytes": peak - before,
        "extra_x_train": (peak - before) / T.nbytes, "result": result,
    }  # fmt: skip


def run_case(case: str, n: int, p: int, args) -> dict:
    cmd = [sys.executable, __file__, "--child", "--case", case, "--n", str(n), "--p", str(p),
           "--seed", str(args.seed), "--threads", str(args.threads),
           "--copy-share", str(args.copy_share)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env,
                          timeout=args.timeout)  # fmt: skip
    if proc.returncode != 0:
        return {"case": case, "n": n, "p": p, "error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _fmt(v, spec: str) -> str:
    return "—" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)


def markdown(records: list[dict], meta: dict) -> str:
    lines = [
        "# Privacy audit: speed and memory",
        "",
        f"`{meta['command']}` -- {meta['machine']}, {meta['threads']} thread(s), "
        f"copy share {meta['copy_share']}.",
        "",
        "Seconds per call; `x DCR`: time over `distance_to_closest_record` on the same data "
        "and label; memory: peak resident set beyond the inputs, as a multiple of the "
        "training matrix.",
        "",
        "| label | n x p | case | seconds | x DCR | peak extra (MB) | x train | result |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    dcr = {(r["label"], r["n"], r["p"]): r.get("seconds") for r in records if r["case"] == "dcr"}
    for r in records:
        ref = dcr.get((r["label"], r["n"], r["p"]))
        sec = r.get("seconds")
        ratio = sec / ref if sec and ref else None
        extra = r.get("extra_bytes")
        res = r.get("result", r.get("error"))
        lines.append(
            f"| {r['label']} | {r['n']:,} x {r['p']:,} | {r['case']} | {_fmt(sec, '.1f')} | "
            f"{_fmt(ratio, '.2f')} | {_fmt(extra and extra / 2**20, '.0f')} | "
            f"{_fmt(r.get('extra_x_train'), '.2f')} | {json.dumps(res)} |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["2000x2000", "10000x20000"],
                    help="n_train x genes, e.g. 2000x2000 10000x20000")  # fmt: skip
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    ap.add_argument("--label", default="current", help="name of this code state")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--copy-share", type=float, default=0.1)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per case")
    ap.add_argument("--out", type=Path, default=RESULTS / "privacy_audit.json")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--p", type=int, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0
    old = json.loads(args.out.read_text())["records"] if args.out.exists() else []
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes]
    done = {(n, p, c) for n, p in sizes for c in args.cases}
    records = [r for r in old if (r["label"] != args.label or
               (r["n"], r["p"], r["case"]) not in done)]  # fmt: skip
    for n, p in sizes:
        for case in args.cases:
            rec = {"label": args.label, **run_case(case, n, p, args)}
            print(json.dumps(rec), flush=True)
            records.append(rec)
    records.sort(key=lambda r: (r["n"] * r["p"], r["label"] != "before", CASES.index(r["case"])))
    command = "python benchmarks/bench_privacy_audit.py " + " ".join(argv or sys.argv[1:])
    meta = {"command": command,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "threads": args.threads, "copy_share": args.copy_share}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "records": records}, indent=1))
    args.out.with_suffix(".md").write_text(markdown(records, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
