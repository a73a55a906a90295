"""The GPU path, measured: every generator and TSPG trained on a CUDA GPU in three precisions.

What
----
Every registered generator (``sgs.model.available()``) and TSPG (``sgs.model.TSPG``) is built
with its default architecture and trained for ``--steps`` mini-batches (default 200; TSPG
spends a quarter of them on its classifier) on a generated float32 matrix (default 2,000 x
20,000: log-expression-like, low rank plus noise, with a 10-category covariate ``group``):

- on the GPU (``accelerator="gpu"``, ``devices=1``) with ``precision="32-true"``,
  ``"bf16-mixed"`` and ``"16-mixed"``: Lightning ``Trainer`` arguments, which
  ``model.train(**kwargs)`` passes through to the ``Trainer``;
- on the CPU (``accelerator="cpu"``) in fp32 only, for fewer steps (``--cpu-steps``).

AttGAN and RandAttGAN get the gene graph their class declares (``default_graph``): the top-10
co-expression graph of the matrix (``sgs.pp.coexpression_matrix``, AttGAN's default
``top_k``) or its degree-matched random rewiring (``sgs.pp.random_graph``), computed once and
passed as ``graph=``. Closed-form generators (no training plan: they are fitted in one pass
on the CPU and ignore the accelerator) are fitted once and reported apart. Model selection
is off (``selection=None``) and nothing is held out (``train_size=1.0``), so only training
steps are timed.

Checks, per generator and precision
-----------------------------------
- **finite samples**: ``model.generate(256, seed=0)`` (TSPG: ``perturb_values`` of 256 real
  samples to the first class they do not belong to);
- **same seed, same samples**: ``scvi.settings.seed = 0`` before building the model, train,
  generate; twice. The two sample matrices must be identical. When they are not, the pair is
  run once more (once per model, at the first precision where they differ) under
  ``torch.use_deterministic_algorithms(True, warn_only=True)`` and the ops torch warns about
  (no deterministic implementation; cuBLAS too unless ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` is
  set before the script starts) are listed. Reported, never asserted;
- **speed**: steps/s in steady state (from step ``--warmup`` to the last, CUDA synchronised at
  both ends; Trainer set-up and the first steps excluded) and the speed-up GPU steps/s /
  CPU fp32 steps/s. Both are rates, so the CPU run may be shorter. Peak GPU memory
  (``torch.cuda.max_memory_allocated``) of each run.

The work is done in passes, so that a spent budget (``--budget-s``, default 270 s, counted
from the start of the script) costs the least informative part: GPU fp32 for every model,
then CPU fp32, then the other precisions in the order ``--precisions`` names them (default
bf16-mixed, then 16-mixed). A unit (a model on a device in a precision)
starts only if the time it is expected to take (the model's last unit on that device, else
the mean of the others') is left; what is skipped is listed in the table and the JSON.
Results: a table on stdout and ``benchmarks/results/gpu.json``. Training is silent (no
progress bar, logging at WARNING). The exit status is 1 if a training run raised an error,
0 otherwise (non-finite or non-identical samples are findings, reported in the table and
JSON).

Without a CUDA GPU the script says so and exits 0. With ``--cpu-smoke`` (GPU or not) it runs
the same code path with ``accelerator="cpu"`` only, in fp32, on a tiny configuration (default
200 x 2,000, 5 steps, two seeded runs per model; results in
``benchmarks/results/gpu_smoke.json``), so the script can be checked on a CPU-only machine:
``python benchmarks/bench_gpu.py --cpu-smoke --steps 5 --n-genes 2000 --n-obs 200`` (1.5-2.5
minutes on a shared 2-core machine).

Targets (issue 20): every generator and TSPG trains on the GPU and generates finite samples
in all three precisions; the same seed gives the same samples on the GPU (house rule); the
whole run stays under 5 minutes on one H200. The speed-up is measured and reported, not a
target.

Run ``bash benchmarks/bench_gpu.sh`` (or ``python benchmarks/bench_gpu.py --help``).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

T_START = time.perf_counter()
RESULTS = Path(__file__).resolve().parent / "results"
N_CATEGORIES = 10
RANK = 10
N_SAMPLES = 256
TOP_K = 10  # AttGAN's default top_k
GPU_PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")
FP32 = "32-true"
SMOKE = {"n_obs": 200, "n_genes": 2000, "steps": 5}
FULL = {"n_obs": 2000, "n_genes": 20000, "steps": 200}


# -- data ------------------------------------------------------------------------------------
def make_data(n_obs: int, n_genes: int, seed: int = 0, chunk: int = 500):
    """Log-expression-like float32 values: ``softplus(mean + low rank + group shift + noise)``.

    Rank-10 structure (10 factors), a shift of 10 % of the genes per group, Gaussian noise;
    built in row chunks so no float64 copy of the matrix exists.
    """
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, N_CATEGORIES, size=n_obs)
    gene_mu = rng.normal(1.0, 1.0, size=n_genes).astype(np.float32)
    loadings = (0.5 * rng.standard_normal((RANK, n_genes))).astype(np.float32)
    factors = rng.standard_normal((n_obs, RANK)).astype(np.float32)
    shift = (
        rng.normal(0.0, 0.8, size=(N_CATEGORIES, n_genes)) * (rng.random(n_genes) < 0.1)
    ).astype(np.float32)
    X = np.empty((n_obs, n_genes), dtype=np.float32)
    for start in range(0, n_obs, chunk):
        stop = min(start + chunk, n_obs)
        block = factors[start:stop] @ loadings
        block += gene_mu
        block += shift[groups[start:stop]]
        block += 0.5 * rng.standard_normal((stop - start, n_genes), dtype=np.float32)
        X[start:stop] = np.logaddexp(np.float32(0), block)  # softplus: positive, not counts
    return X, np.array([f"group_{g}" for g in groups], dtype=object)


def make_adata(X: np.ndarray, labels: np.ndarray):
    import anndata as ad
    import pandas as pd

    obs = pd.DataFrame(
        {"group": pd.Categorical(labels)}, index=[f"cell_{i}" for i in range(X.shape[0])]
    )
    var = pd.DataFrame(index=[f"gene_{j}" for j in range(X.shape[1])])
    return ad.AnnData(X=X, obs=obs, var=var)


def build_graphs(X: np.ndarray, kinds: set[str]) -> tuple[dict[str, Any], float]:
    """The gene graphs the models declare (``default_graph``), computed once; and seconds."""
    import scgensynth as sgs

    graphs: dict[str, Any] = {}
    t = time.perf_counter()
    if kinds & {"coexpression", "random"}:
        coexpression = sgs.pp.coexpression_matrix(X, top_k=TOP_K)
        graphs["coexpression"] = coexpression
        if "random" in kinds:
            graphs["random"] = sgs.pp.random_graph(coexpression, seed=0)
    return graphs, time.perf_counter() - t


# -- the models ------------------------------------------------------------------------------
@dataclass
class Job:
    """One model to benchmark: its name, class, and how it is built, trained and sampled."""

    name: str
    cls: type
    kind: str  # "generator", "closed_form" or "tspg"
    build_kwargs: dict[str, Any] = field(default_factory=dict)

    def build(self, adata):
        if self.kind == "tspg":
            return self.cls(self.cls.setup_proxy(adata, labels_key="group"))
        proxy = self.cls.setup_proxy(adata, categorical_covariate_keys="group")
        return self.cls(proxy, **self.build_kwargs)

    def train(self, model, steps: int, accelerator: str, precision: str, callbacks: list):
        if self.kind == "closed_form":  # fitted in one pass on the CPU: nothing to pass on
            model.train(train_size=1.0)
            return
        common = {
            "train_size": 1.0,
            "accelerator": accelerator,
            "devices": 1,
            "precision": precision,
            "enable_progress_bar": False,
            "callbacks": callbacks,
        }
        if self.kind == "tspg":
            classifier_steps = max(1, steps // 4)
            n_steps = max(1, steps - classifier_steps)
            model.train(n_steps=n_steps, classifier_steps=classifier_steps, **common)
        else:
            model.train(n_steps=steps, selection=None, **common)

    def sample(self, model, adata) -> np.ndarray:
        if self.kind == "tspg":
            labels = np.asarray(adata.obs["group"].astype(str))
            target = model.categories[0]
            rows = np.flatnonzero(labels != str(target))[:N_SAMPLES]
            X = np.asarray(adata.X[rows], dtype=np.float32)
            return np.asarray(model.perturb_values(X, target)[0])
        return np.asarray(model.generate(N_SAMPLES, seed=0).X)


def make_jobs(names: list[str] | None) -> list[Job]:
    """The registered generators (in registry order) and TSPG, or those in ``names``."""
    import scgensynth as sgs

    jobs = []
    for name in sgs.model.available().index:
        cls = sgs.model.get_model_class(name)
        kind = "closed_form" if getattr(cls, "_training_plan_cls", None) is None else "generator"
        jobs.append(Job(name, cls, kind))
    jobs.append(Job("tspg", sgs.model.TSPG, "tspg"))
    if names:
        unknown = sorted(set(names) - {j.name for j in jobs})
        if unknown:
            msg = f"--models: unknown {unknown}; choose from {[j.name for j in jobs]}."
            raise SystemExit(msg)
        jobs = [j for j in jobs if j.name in names]
    return jobs


def attach_graphs(jobs: list[Job], X: np.ndarray) -> float:
    """Give the models that declare a ``default_graph`` that graph, built once."""
    kinds = {getattr(j.cls, "default_graph", None) for j in jobs} - {None}
    graphs, seconds = build_graphs(X, kinds)
    for job in jobs:
        kind = getattr(job.cls, "default_graph", None)
        if kind in graphs:
            job.build_kwargs["graph"] = graphs[kind]
    return seconds


# -- one run ---------------------------------------------------------------------------------
def _step_clock(n_steps: int, warmup: int, cuda: bool):
    """A callback timing steps ``warmup`` to ``n_steps`` (synchronised), then stopping."""
    import lightning.pytorch as pl
    import torch

    class StepClock(pl.Callback):
        def __init__(self):
            self.seen = 0
            self.t0: float | None = None
            self.t_end: float | None = None

        def _now(self) -> float:
            if cuda:
                torch.cuda.synchronize()
            return time.perf_counter()

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if self.seen == warmup:
                self.t0 = self._now()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.seen += 1
            if self.seen == n_steps:
                self.t_end = self._now()
                trainer.should_stop = True

    return StepClock()


def run_once(job: Job, adata, *, accelerator: str, precision: str, steps: int, warmup: int):
    """Seed, build, train and sample once; the samples and what was measured."""
    import scvi
    import torch

    cuda = accelerator == "gpu"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    scvi.settings.seed = 0
    model = job.build(adata)
    build_s = time.perf_counter() - t
    clock = _step_clock(steps, warmup, cuda)
    t = time.perf_counter()
    job.train(model, steps, accelerator, precision, [clock])
    train_s = time.perf_counter() - t
    samples = job.sample(model, adata)
    out: dict[str, Any] = {"build_s": build_s, "train_s": train_s, "steps": clock.seen}
    if clock.t0 is not None and clock.t_end is not None and clock.seen > warmup:
        out["steady_steps"] = clock.seen - warmup
        out["steady_s"] = clock.t_end - clock.t0
        out["steps_per_s"] = out["steady_steps"] / out["steady_s"]
    out["losses_finite"] = _history_finite(model)
    if cuda:
        out["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    del model
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return samples, out


def _history_finite(model) -> bool | None:
    history = getattr(model, "history_", None) or {}
    values = []
    for frame in history.values():
        try:
            values.append(np.asarray(frame, dtype=float).ravel())
        except (TypeError, ValueError):
            continue
    if not values:
        return None
    return bool(np.isfinite(np.concatenate(values)).all())


def _compare(a: np.ndarray, b: np.ndarray) -> tuple[bool, float]:
    if a.shape != b.shape:
        return False, float("inf")
    same = np.array_equal(a, b, equal_nan=True)
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return bool(same), float(np.nanmax(diff)) if diff.size else 0.0


def _deterministic_pair(job: Job, adata, **kw) -> dict[str, Any]:
    """Both seeded runs again under ``torch.use_deterministic_algorithms(True, warn_only)``."""
    import torch

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            a, _ = run_once(job, adata, **kw)
            b, _ = run_once(job, adata, **kw)
        finally:
            torch.use_deterministic_algorithms(False)
    same, max_diff = _compare(a, b)
    ops = sorted(
        {str(w.message).split("\n")[0][:200] for w in caught if "determinis" in str(w.message)}
    )
    return {"identical": same, "max_abs_diff": max_diff, "nondeterministic_ops": ops}


def _error(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:300]}"


def run_unit(
    job: Job,
    adata,
    *,
    device: str,
    precision: str,
    steps: int,
    repeats: int,
    warmup: int,
    budget: Budget,
    retry: bool = True,
) -> dict[str, Any]:
    """``repeats`` seeded runs of one model on one device and precision, compared.

    Samples that differ are rerun under deterministic algorithms if ``retry`` (once per model:
    the ops torch names do not depend on the precision).
    """
    accelerator = "gpu" if device == "gpu" else "cpu"
    row: dict[str, Any] = {
        "model": job.name,
        "kind": job.kind,
        "device": device,
        "precision": precision,
        "status": "ok",
    }
    if job.kind == "closed_form":
        row["device"] = "cpu (closed form)"
    kw = {"accelerator": accelerator, "precision": precision, "steps": steps, "warmup": warmup}
    t = time.perf_counter()
    try:
        runs = [run_once(job, adata, **kw) for _ in range(repeats)]
    except Exception as exc:  # reported in the table; the benchmark goes on
        row.update(status="error", error=_error(exc), unit_s=time.perf_counter() - t)
        return row
    samples = [s for s, _ in runs]
    row.update(runs[0][1])
    rates = [m["steps_per_s"] for _, m in runs if "steps_per_s" in m]
    if rates:
        row["steps_per_s"] = float(np.mean(rates))
        row["steps_per_s_each"] = rates
    row["finite"] = bool(all(np.isfinite(s).all() for s in samples))
    row["sample_shape"] = list(samples[0].shape)
    if repeats >= 2:
        row["identical"], row["max_abs_diff"] = _compare(samples[0], samples[1])
    row["unit_s"] = time.perf_counter() - t
    if row.get("identical") is False:
        if not retry:
            row["deterministic_retry"] = {"error": "done once per model, see its first row"}
            return row
        if not budget.allows(row["unit_s"]):
            row["deterministic_retry"] = {"error": "skipped: budget spent"}
            return row
        try:
            row["deterministic_retry"] = _deterministic_pair(job, adata, **kw)
        except Exception as exc:  # reported with the row
            row["deterministic_retry"] = {"error": _error(exc)}
        row["unit_s"] = time.perf_counter() - t
    return row


# -- budget and passes -----------------------------------------------------------------------
class Budget:
    """Seconds left of ``--budget-s``, counted from the start of the script."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self.exhausted = False

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - T_START)

    def allows(self, estimate: float) -> bool:
        ok = self.left() > max(0.0, estimate)
        self.exhausted |= not ok
        return ok


def plan_passes(args, cuda: bool) -> list[dict[str, Any]]:
    """(device, precision, steps, repeats) passes, most informative first."""
    if not cuda:  # --cpu-smoke: the CPU side, with the determinism pair
        return [{"device": "cpu", "precision": FP32, "steps": args.steps, "repeats": 2}]
    passes = []
    precisions = list(dict.fromkeys(args.precisions))  # as given, repeats dropped
    if FP32 in precisions:
        passes.append({"device": "gpu", "precision": FP32, "steps": args.steps, "repeats": 2})
    if args.cpu_steps > 0:
        passes.append({"device": "cpu", "precision": FP32, "steps": args.cpu_steps, "repeats": 1})
    passes += [
        {"device": "gpu", "precision": p, "steps": args.steps, "repeats": 2}
        for p in precisions
        if p != FP32
    ]
    return passes


def _estimate(seconds: dict[tuple[str, str], float], device: str, name: str) -> float:
    """Expected seconds of a unit: the model's last one on the device, else the others' mean."""
    if (device, name) in seconds:
        return seconds[device, name]
    others = [s for (d, _), s in seconds.items() if d == device]
    return float(np.mean(others)) if others else 0.0


def _skipped(job: Job, p: dict[str, Any], why: str) -> dict[str, Any]:
    return {"model": job.name, "kind": job.kind, "device": p["device"],
            "precision": p["precision"], "status": "skipped", "error": why}  # fmt: skip


def run_passes(jobs: list[Job], adata, passes, budget: Budget) -> list[dict[str, Any]]:
    """Every pass over every model; a unit that would not fit in the budget is skipped."""
    rows: list[dict[str, Any]] = []
    seconds: dict[tuple[str, str], float] = {}  # (device, model) -> last unit's seconds
    fitted: set[str] = set()
    retried: set[str] = set()  # models whose differing samples were rerun deterministically
    for p in passes:
        for job in jobs:
            if job.kind == "closed_form" and job.name in fitted:
                continue  # the accelerator and precision do not apply: fitted once
            estimate = _estimate(seconds, p["device"], job.name)
            if not budget.allows(estimate):
                left = max(0.0, budget.left())
                rows.append(
                    _skipped(job, p, f"budget: {left:.0f} s left, ~{estimate:.0f} s needed")
                )
                continue
            warmup = max(1, min(20, p["steps"] // 10))
            retry = job.name not in retried
            row = run_unit(job, adata, warmup=warmup, budget=budget, retry=retry, **p)
            if "identical" in row.get("deterministic_retry", {}):
                retried.add(job.name)
            print(_progress_line(row), flush=True)
            rows.append(row)
            fitted.add(job.name)
            if "unit_s" in row and job.kind != "closed_form":
                seconds[p["device"], job.name] = row["unit_s"]
    return rows


# -- report ----------------------------------------------------------------------------------
def _progress_line(row: dict[str, Any]) -> str:
    rate = f"{row['steps_per_s']:.1f} steps/s" if "steps_per_s" in row else "-"
    what = row.get("error", rate)
    return (
        f"  [{time.perf_counter() - T_START:5.0f} s] {row['model']:<11} {row['device']:<4} "
        f"{row['precision']:<10} {row['status']:<7} {what}"
    )


def _same_seed(row: dict[str, Any]) -> str:
    if "identical" not in row:
        return "-"
    if row["identical"]:
        return "identical"
    retry = row.get("deterministic_retry")
    text = f"DIFFER ({row['max_abs_diff']:.2g})"
    if retry and "identical" in retry:
        text += "; det.: " + ("identical" if retry["identical"] else "still differ")
    elif retry:
        text += f"; det. retry: {retry['error']}"
    return text


def summarise(rows: list[dict[str, Any]]) -> None:
    """Speed-up of each GPU row against the same model's CPU fp32 row (in place)."""
    cpu = {
        r["model"]: r["steps_per_s"]
        for r in rows
        if r["device"] == "cpu" and r["status"] == "ok" and "steps_per_s" in r
    }
    for r in rows:
        if r["device"] == "gpu" and "steps_per_s" in r and r["model"] in cpu:
            r["cpu_fp32_steps_per_s"] = cpu[r["model"]]
            r["speedup_vs_cpu_fp32"] = r["steps_per_s"] / cpu[r["model"]]


def print_table(rows: list[dict[str, Any]], config: dict[str, Any]) -> None:
    steps = (
        f"CPU smoke: {config['cpu_steps']} steps (fp32), steady state from step "
        f"{config['warmup_cpu']}"
        if config["cpu_smoke"]
        else f"{config['steps']} steps on the GPU, {config['cpu_steps']} on the CPU (fp32); "
        f"steady state from step {config['warmup_gpu']} (GPU) / {config['warmup_cpu']} (CPU)"
    )
    print()
    print(
        f"{config['n_obs']:,} x {config['n_genes']:,} float32, {N_CATEGORIES} categories; "
        f"{steps}; {N_SAMPLES} samples generated per run"
    )
    header = (
        f"{'model':<11} {'device':<17} {'precision':<10} {'steps/s':>8} "
        f"{'CPU fp32':>8} {'speed-up':>8} {'finite':>6} {'peak MiB':>8} "
        f"{'train s':>7}  same seed"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        if r["status"] != "ok":
            print(
                f"{r['model']:<11} {r['device']:<17} {r['precision']:<10} "
                f"{r['status'].upper()}: {r.get('error', '')}"
            )
            continue
        rate = f"{r['steps_per_s']:.1f}" if "steps_per_s" in r else "-"
        base = f"{r['cpu_fp32_steps_per_s']:.1f}" if "cpu_fp32_steps_per_s" in r else "-"
        speed = f"{r['speedup_vs_cpu_fp32']:.1f}x" if "speedup_vs_cpu_fp32" in r else "-"
        peak = f"{r['peak_gpu_mib']:.0f}" if "peak_gpu_mib" in r else "-"
        finite = "yes" if r["finite"] and r.get("losses_finite") is not False else "NO"
        print(
            f"{r['model']:<11} {r['device']:<17} {r['precision']:<10} {rate:>8} {base:>8} "
            f"{speed:>8} {finite:>6} {peak:>8} {r['train_s']:>7.1f}  {_same_seed(r)}"
        )
    print()
    print(
        "steps/s: steady state (CUDA synchronised); GPU rows: mean of the two seeded runs. "
        "speed-up: GPU steps/s / CPU fp32 steps/s of the same model. finite: generated "
        "samples and logged losses. same seed: two runs with scvi.settings.seed = 0 give "
        "identical samples (max |difference| when not; det.: rerun under "
        "torch.use_deterministic_algorithms). Closed-form models ignore the accelerator."
    )


def problems(rows: list[dict[str, Any]]) -> list[str]:
    out = []
    for r in rows:
        where = f"{r['model']} {r['device']} {r['precision']}"
        if r["status"] == "error":
            out.append(f"{where}: {r['error']}")
        elif r["status"] == "ok" and not r["finite"]:
            out.append(f"{where}: non-finite samples")
        elif r["status"] == "ok" and r.get("losses_finite") is False:
            out.append(f"{where}: non-finite logged losses")
        if r.get("identical") is False:
            out.append(f"{where}: two seeded runs differ: {_same_seed(r)}")
    return out


def environment(cuda: bool) -> dict[str, Any]:
    import lightning
    import scvi
    import torch

    import scgensynth as sgs

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "scvi-tools": scvi.__version__,
        "scgensynth": sgs.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cuda": cuda,
    }
    if cuda:
        env.update(
            gpu=torch.cuda.get_device_name(0),
            cuda_version=torch.version.cuda,
            bf16_supported=torch.cuda.is_bf16_supported(),
        )
    return env


# -- driver ----------------------------------------------------------------------------------
def _quiet() -> None:
    # import what sets Lightning's log levels on import (the model layer is imported lazily)
    import lightning.pytorch  # noqa: F401

    import scgensynth as sgs
    import scgensynth.model

    sgs.settings.verbosity = "warning"
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "scvi", "scgensynth"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for message in (
        ".*LeafSpec.*",
        ".*does not have many workers.*",
        ".*GPU available.*",
        ".*Tensor Cores.*",
        ".*smaller than the logging interval.*",
    ):
        warnings.filterwarnings("ignore", message=message)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-obs", type=int, default=None, help="samples (default 2000)")
    parser.add_argument("--n-genes", type=int, default=None, help="genes (default 20000)")
    parser.add_argument(
        "--steps", type=int, default=None, help="training steps per GPU run (default 200)"
    )
    parser.add_argument(
        "--cpu-steps",
        type=int,
        default=None,
        help="training steps of the CPU fp32 run (default steps / 10, at least 10; 0: none)",
    )
    parser.add_argument(
        "--precisions",
        nargs="+",
        default=list(GPU_PRECISIONS),
        choices=GPU_PRECISIONS,
        help="GPU precisions, run after GPU and CPU fp32 in the order given (default all three)",
    )
    parser.add_argument("--models", nargs="+", default=None, help="model names (default all)")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=270.0,
        help="time box in seconds from the start; remaining work is skipped (default 270)",
    )
    parser.add_argument(
        "--matmul-precision",
        choices=("highest", "high", "medium"),
        default="highest",
        help="torch.set_float32_matmul_precision for the runs (default 'highest', what "
        "users get; 'high' lets fp32 matmuls use TF32)",
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (default 0: torch's own)"
    )
    parser.add_argument(
        "--cpu-smoke",
        action="store_true",
        help="run the CPU side only, on a tiny configuration (default 200 x 2000, 5 steps)",
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON results file")
    args = parser.parse_args(argv)
    sizes = SMOKE if args.cpu_smoke else FULL
    for key, value in sizes.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.cpu_steps is None:
        args.cpu_steps = args.steps if args.cpu_smoke else max(10, args.steps // 10)
    if args.out is None:
        args.out = RESULTS / ("gpu_smoke.json" if args.cpu_smoke else "gpu.json")
    if min(args.steps, args.n_obs, args.n_genes) < 1 or args.cpu_steps < 0:
        parser.error("--steps, --n-obs and --n-genes must be >= 1, --cpu-steps >= 0")
    return args


def run_config(args: argparse.Namespace, jobs: list[Job], cuda: bool) -> dict[str, Any]:
    """The settings of a run, as the table and the JSON report them."""
    return {
        "n_obs": args.n_obs,
        "n_genes": args.n_genes,
        "n_categories": N_CATEGORIES,
        "rank": RANK,
        "steps": args.steps,
        "cpu_steps": args.cpu_steps,
        "warmup_gpu": max(1, min(20, args.steps // 10)),
        "warmup_cpu": max(1, min(20, args.cpu_steps // 10)),
        "precisions": list(dict.fromkeys(args.precisions)) if cuda else [FP32],
        "models": [j.name for j in jobs],
        "n_samples": N_SAMPLES,
        "graph_top_k": TOP_K,
        "budget_s": args.budget_s,
        "cpu_smoke": bool(args.cpu_smoke),
        "matmul_precision": args.matmul_precision,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    cuda = torch.cuda.is_available() and not args.cpu_smoke
    if not torch.cuda.is_available():
        print(
            "No CUDA GPU found (torch.cuda.is_available() is False): the GPU path is not "
            "measured.",
            flush=True,
        )
        if not args.cpu_smoke:
            print("Pass --cpu-smoke to run the CPU side of the benchmark on a tiny configuration.")
            return 0
    if args.cpu_smoke:
        print(
            f"CPU smoke run: {args.n_obs} x {args.n_genes}, {args.steps} steps, "
            "accelerator='cpu', fp32, two seeded runs per model.",
            flush=True,
        )
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.set_float32_matmul_precision(args.matmul_precision)
    _quiet()
    budget = Budget(args.budget_s)

    jobs = make_jobs(args.models)
    X, labels = make_data(args.n_obs, args.n_genes)
    adata = make_adata(X, labels)
    graph_s = attach_graphs(jobs, X)
    setup_s = time.perf_counter() - T_START
    print(
        f"data and gene graphs ready after {setup_s:.1f} s (graphs {graph_s:.1f} s); "
        f"models: {[j.name for j in jobs]}",
        flush=True,
    )

    passes = plan_passes(args, cuda)
    rows = run_passes(jobs, adata, passes, budget)
    summarise(rows)
    config = run_config(args, jobs, cuda)
    print_table(rows, config)
    found = problems(rows)
    elapsed = time.perf_counter() - T_START
    skipped = [r for r in rows if r["status"] == "skipped"]
    if skipped:
        names = ", ".join(f"{r['model']} {r['device']} {r['precision']}" for r in skipped)
        print(f"Budget of {args.budget_s:.0f} s spent: {len(skipped)} unit(s) skipped ({names}).")
    print("Problems:" if found else "Problems: none.")
    for line in found:
        print(f"  - {line}")
    print(f"Total {elapsed:.0f} s (budget {args.budget_s:.0f} s).")
    result = {
        "config": config,
        "environment": environment(cuda),
        "setup_s": setup_s,
        "graph_s": graph_s,
        "elapsed_s": elapsed,
        "budget_exhausted": bool(skipped),
        "rows": rows,
        "problems": found,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"Results written to {args.out}")
    return 1 if any(r["status"] == "error" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
