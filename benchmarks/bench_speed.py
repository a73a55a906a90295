"""Training throughput of ``sgs.model.WGANGP.train`` versus a bare PyTorch loop.

Both sides train the *same* networks (a fresh :class:`scgensynth.module.WGANGPModule` per run,
built with the same arguments and seed) on the *same* generated matrix, in the same process:

- RMSprop, lr 5e-4, for critic (+ its embedding) and generator (+ its embedding);
- mini-batches of 32 (the last, partial batch of an epoch is kept, as the package does);
- every mini-batch one critic update with ``module.critic_loss``, every ``n_critic`` (5)-th
  mini-batch one generator update with ``module.generator_loss``, covariates taken from the
  real mini-batch; data scaled with ``module.scaling``.

The bare loop shuffles row indices once per epoch and indexes a ``torch.from_numpy`` view of
the matrix; it does no logging, no validation and no model selection.

What is timed
-------------
*Steady state* (the headline number and the overhead target): from the start of the second
epoch to the end of training, i.e. the first epoch is a warm-up on both sides and model
construction (scaling statistics, network initialisation) is excluded on both sides. For the
package this interval includes everything Lightning / scvi-tools do per step and per epoch
(callbacks, loss accumulation, epoch-end logging, the validation loop and selection
evaluations where enabled) and ``on_train_end`` (where the selection callback restores the
best weights).

*End to end*: the whole ``model.train(...)`` call (Trainer and data-loader construction,
warm-up epoch, teardown) versus the bare loop's optimiser construction plus all epochs.

Variants are run alternately (the order flips every repeat) and medians over repeats are
reported. ``overhead = bare throughput / package throughput - 1`` (target: <= 15% for
``selection=None``), from wall-clock time (ratio of medians, and median of the per-repeat
ratios) and from the process's CPU time. On a machine shared with other jobs these direct
estimates wobble by +-10-20%, so a *fixed-cost probe* repeats bare vs package on a matrix
with ``--probe-genes`` genes (compute negligible): the extra milliseconds per step it finds,
set against the full-size bare step time, predict the overhead independently of the noise.
The verdict is MET / NOT MET when the direct CPU-time (1 thread) or paired wall-clock
estimate and that prediction agree, INCONCLUSIVE otherwise.

The ``selection="conditional"`` row shows what the default model-selection callback costs;
in a short benchmark it evaluates every epoch, far more often than in a default training
(about 40 evaluations in 10,000 steps), so the cost per evaluation is also reported and
extrapolated to the default cadence.

Run ``python benchmarks/bench_speed.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

BATCH_SIZE = 32
N_CRITIC = 5
LR = 5e-4
N_CATEGORIES = 10
#: default training length of ``WGANGP.train`` and its number of selection evaluations
DEFAULT_N_STEPS = 10_000
DEFAULT_N_EVALUATIONS = 40

BARE = "bare PyTorch loop"
PKG = "WGANGP.train, selection=None"
PKG_SEL = "WGANGP.train, selection='conditional'"
#: the Viñas et al. reference code's seconds per epoch of 2,000 x 20,000, batch 32, 2 cores
REFERENCE_EPOCH_S = 10.8


def pkg_subspace(k: int) -> str:
    """Name of the variant training in a ``k``-dimensional principal subspace."""
    return f"WGANGP.train, n_components={k}"


# -- data ------------------------------------------------------------------------------------
def make_data(n_obs: int, n_genes: int, seed: int = 0, chunk: int = 1000):
    """A log-normal-ish float32 matrix (log1p of over-dispersed expression) and 10 groups.

    Per gene a log-mean, per group a shift of some genes, per value log-normal noise; built
    in row chunks so no float64 copy of the whole matrix ever exists.
    """
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, N_CATEGORIES, size=n_obs)
    gene_mu = rng.normal(1.0, 1.5, size=n_genes).astype(np.float32)
    group_shift = (
        rng.normal(0.0, 0.5, size=(N_CATEGORIES, n_genes)) * (rng.random(n_genes) < 0.1)
    ).astype(np.float32)
    X = np.empty((n_obs, n_genes), dtype=np.float32)
    for start in range(0, n_obs, chunk):
        stop = min(start + chunk, n_obs)
        block = rng.standard_normal((stop - start, n_genes), dtype=np.float32)
        block *= 0.8
        block += gene_mu
        block += group_shift[groups[start:stop]]
        np.exp(block, out=block)
        np.log1p(block, out=block)
        X[start:stop] = block
    labels = np.array([f"group_{g}" for g in groups], dtype=object)
    return X, labels


def make_adata(X: np.ndarray, labels: np.ndarray):
    import anndata as ad
    import pandas as pd

    obs = pd.DataFrame(
        {"group": pd.Categorical(labels)}, index=[f"cell_{i}" for i in range(X.shape[0])]
    )
    var = pd.DataFrame(index=[f"gene_{j}" for j in range(X.shape[1])])
    return ad.AnnData(X=X, obs=obs, var=var)


# -- bare loop -------------------------------------------------------------------------------
def run_bare(adata, epochs: int, seed: int, stats: dict[str, Any]) -> dict[str, Any]:
    """Train a fresh ``WGANGPModule`` with a hand-written loop; see the module docstring."""
    import torch

    from scgensynth.module import WGANGPModule

    codes = np.asarray(adata.obs["group"].cat.codes, dtype=np.int64).reshape(-1, 1)
    n_cats = len(adata.obs["group"].cat.categories)

    # -- one-off setup, not timed (mirrors WGANGP.__init__) --
    torch.manual_seed(seed)
    module = WGANGPModule(adata.n_vars, n_cats_per_cov=[n_cats], scaling="standardize")
    module.scaling.set_statistics(
        stats["mean"], stats["std"], stats["constant"], stats["target_sum"],
        stats["lower_bound"],
    )  # fmt: skip
    module.train()
    X = torch.from_numpy(np.asarray(adata.X))
    cat = torch.from_numpy(codes)
    n = X.shape[0]

    t0 = time.perf_counter()
    opt_critic = torch.optim.RMSprop(
        [*module.critic.parameters(), *module.critic_embedding.parameters()], lr=LR
    )
    opt_generator = torch.optim.RMSprop(
        [*module.generator.parameters(), *module.generator_embedding.parameters()], lr=LR
    )
    gen = torch.Generator().manual_seed(seed)
    critic_steps = 0
    steady_start = steady_cpu = None
    steady_steps = steady_samples = 0
    for epoch in range(epochs):
        if epoch == 1:
            steady_start, steady_cpu = time.perf_counter(), time.process_time()
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n, BATCH_SIZE):
            idx = perm[start : start + BATCH_SIZE]
            x, c = X[idx], cat[idx]
            b = x.shape[0]
            out = module.critic_loss(module.scaling(x), c, None)
            opt_critic.zero_grad(set_to_none=True)
            out["loss"].backward()
            opt_critic.step()
            critic_steps += 1
            if critic_steps % N_CRITIC == 0:
                g_loss = module.generator_loss(b, c, None)
                opt_generator.zero_grad(set_to_none=True)
                g_loss.backward()
                opt_generator.step()
            if epoch >= 1:
                steady_steps += 1
                steady_samples += b
    t_end, cpu_end = time.perf_counter(), time.process_time()
    return {
        "variant": BARE,
        "steady_cpu_s": cpu_end - steady_cpu,
        "end_to_end_s": t_end - t0,
        "total_steps": critic_steps,
        "steady_s": t_end - steady_start,
        "steady_steps": steady_steps,
        "steady_samples": steady_samples,
        "n_evaluations": 0,
        "evaluation_s": 0.0,
    }


# -- package ---------------------------------------------------------------------------------
def _timer_callback():
    import lightning.pytorch as pl
    from scvi import REGISTRY_KEYS

    class EpochTimer(pl.Callback):
        """Records epoch starts, steps and samples per epoch, and the end of training."""

        def __init__(self):
            self.starts: list[float] = []
            self.cpu_starts: list[float] = []
            self.cpu_end: float | None = None
            self.steps: list[int] = []
            self.samples: list[int] = []
            self.end: float | None = None

        def on_train_epoch_start(self, trainer, pl_module):
            self.starts.append(time.perf_counter())
            self.cpu_starts.append(time.process_time())
            self.steps.append(0)
            self.samples.append(0)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.steps[-1] += 1
            self.samples[-1] += int(batch[REGISTRY_KEYS.X_KEY].shape[0])

        def on_train_end(self, trainer, pl_module):
            self.end = time.perf_counter()
            self.cpu_end = time.process_time()

    return EpochTimer()


class _EvaluationClock:
    """Times ``GeneratorSelection.on_train_epoch_end`` (instrumentation only, restored after)."""

    def __init__(self):
        from scgensynth.train import GeneratorSelection

        self.cls = GeneratorSelection
        self.original = GeneratorSelection.on_train_epoch_end
        self.seconds = 0.0
        self.count = 0

    def __enter__(self):
        original, clock = self.original, self

        def timed(cb, trainer, pl_module):
            n_before = len(cb.scores)
            t = time.perf_counter()
            original(cb, trainer, pl_module)
            if len(cb.scores) > n_before:  # an evaluation happened (not a skipped epoch)
                clock.seconds += time.perf_counter() - t
                clock.count += 1

        self.cls.on_train_epoch_end = timed
        return self

    def __exit__(self, *exc):
        self.cls.on_train_epoch_end = self.original


def run_package(
    adata, epochs: int, seed: int, selection: str | None, n_components: int | None = None
) -> dict[str, Any]:
    """Train a fresh ``WGANGP`` with ``model.train``; see the module docstring."""
    import torch

    import scgensynth as sgs

    # -- one-off setup, not timed --
    torch.manual_seed(seed)
    model = sgs.model.WGANGP(adata, scaling="standardize", n_components=n_components)
    timer = _timer_callback()
    train_size = 1.0 if selection is None else 0.9
    with _EvaluationClock() as clock:
        t0 = time.perf_counter()
        model.train(
            max_epochs=epochs,
            batch_size=BATCH_SIZE,
            train_size=train_size,
            selection=selection,
            enable_progress_bar=False,
            accelerator="cpu",
            callbacks=[timer],
            plan_kwargs={
                "lr_generator": LR,
                "lr_critic": LR,
                "n_critic": N_CRITIC,
                "optimizer": "rmsprop",
            },
        )
        t_end = time.perf_counter()
    if len(timer.starts) < 2:
        msg = f"training stopped after {len(timer.starts)} epoch(s); need >= 2 to time"
        raise RuntimeError(msg)
    return {
        "variant": (
            pkg_subspace(n_components) if n_components else PKG if selection is None else PKG_SEL
        ),
        "end_to_end_s": t_end - t0,
        "total_steps": sum(timer.steps),
        "steady_s": timer.end - timer.starts[1],
        "steady_cpu_s": timer.cpu_end - timer.cpu_starts[1],
        "steady_steps": sum(timer.steps[1:]),
        "steady_samples": sum(timer.samples[1:]),
        "n_evaluations": clock.count,
        "evaluation_s": clock.seconds,
        "train_size": train_size,
    }


def probe_fixed_cost(n_obs: int, n_genes: int, epochs: int, repeats: int, seed: int):
    """Per-step cost the package adds, measured where the networks' compute is negligible.

    On a machine shared with other jobs the full-size comparison has a resolution of
    about +-10-20%; the fixed cost per step (Lightning loop, scvi-tools data loader, hooks,
    loss accumulation) is measured here on a matrix with few genes, bare and package
    alternating, and set against the full-size bare step time.
    """
    import scgensynth as sgs

    X, labels = make_data(n_obs, n_genes, seed=seed)
    adata = make_adata(X, labels)
    sgs.model.WGANGP.setup_anndata(adata, categorical_covariate_keys=["group"])
    stats = sgs.pp.fit_scaling(adata, "standardize")
    per_step: dict[str, dict[str, list[float]]] = {
        BARE: {"wall": [], "cpu": []},
        PKG: {"wall": [], "cpu": []},
    }
    for rep in range(repeats):
        for variant in (BARE, PKG) if rep % 2 == 0 else (PKG, BARE):
            gc.collect()
            if variant == BARE:
                r = run_bare(adata, epochs, seed + rep, stats)
            else:
                r = run_package(adata, epochs, seed + rep, None)
            per_step[variant]["wall"].append(r["steady_s"] / r["steady_steps"])
            per_step[variant]["cpu"].append(r["steady_cpu_s"] / r["steady_steps"])
    med = {v: {k: statistics.median(x) for k, x in d.items()} for v, d in per_step.items()}
    return {
        "n_obs": n_obs,
        "n_genes": n_genes,
        "bare_step_ms": 1e3 * med[BARE]["wall"],
        "package_step_ms": 1e3 * med[PKG]["wall"],
        "fixed_ms_per_step": 1e3 * (med[PKG]["wall"] - med[BARE]["wall"]),
        "bare_step_cpu_ms": 1e3 * med[BARE]["cpu"],
        "package_step_cpu_ms": 1e3 * med[PKG]["cpu"],
        "fixed_cpu_ms_per_step": 1e3 * (med[PKG]["cpu"] - med[BARE]["cpu"]),
    }


# -- driver ----------------------------------------------------------------------------------
def _quiet() -> None:
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "scvi", "scgensynth"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def _median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Medians per variant, overheads relative to the bare loop (from median throughputs)."""
    for r in runs:
        r["steps_per_s"] = r["steady_steps"] / r["steady_s"]
        r["samples_per_s"] = r["steady_samples"] / r["steady_s"]
        r["steps_per_cpu_s"] = r["steady_steps"] / r["steady_cpu_s"]
    summary: dict[str, dict[str, Any]] = {}
    for variant in dict.fromkeys(r["variant"] for r in runs):
        rows = [r for r in runs if r["variant"] == variant]
        if not rows:
            continue
        summary[variant] = {
            "repeats": len(rows),
            "steps_per_s": _median(rows, "steps_per_s"),
            "samples_per_s": _median(rows, "samples_per_s"),
            "steps_per_cpu_s": _median(rows, "steps_per_cpu_s"),
            "end_to_end_s": _median(rows, "end_to_end_s"),
            "total_steps": _median(rows, "total_steps"),
            "end_to_end_steps_per_s": statistics.median(
                r["total_steps"] / r["end_to_end_s"] for r in rows
            ),
            "evaluations_per_run": _median(rows, "n_evaluations"),
            "seconds_per_evaluation": (
                sum(r["evaluation_s"] for r in rows)
                / max(1, sum(r["n_evaluations"] for r in rows))
            ),
        }
    bare = summary[BARE]
    bare_runs = {r["repeat"]: r for r in runs if r["variant"] == BARE}
    for variant, s in summary.items():
        # overhead of the median throughputs, and the median of per-repeat (adjacent-in-time)
        # ratios, which is less sensitive to the load of a shared machine drifting
        s["overhead_pct"] = 100 * (bare["steps_per_s"] / s["steps_per_s"] - 1)
        paired = [
            100 * (bare_runs[r["repeat"]]["steps_per_s"] / r["steps_per_s"] - 1)
            for r in runs
            if r["variant"] == variant and r["repeat"] in bare_runs
        ]
        s["paired_overheads_pct"] = paired
        s["paired_overhead_pct"] = statistics.median(paired)
        s["cpu_overhead_pct"] = 100 * (bare["steps_per_cpu_s"] / s["steps_per_cpu_s"] - 1)
        s["end_to_end_overhead_pct"] = 100 * (
            bare["end_to_end_steps_per_s"] / s["end_to_end_steps_per_s"] - 1
        )
    sel = summary.get(PKG_SEL)
    if sel is not None and sel["seconds_per_evaluation"] > 0:
        # cost of the default cadence: ~40 evaluations in a 10,000-step training
        train_s = DEFAULT_N_STEPS / summary[PKG]["steps_per_s"]
        eval_s = DEFAULT_N_EVALUATIONS * sel["seconds_per_evaluation"]
        sel["default_cadence_selection_pct"] = 100 * eval_s / train_s
    return summary


def print_table(summary: dict[str, dict[str, Any]], config: dict[str, Any]) -> None:
    print()
    print(
        f"WGAN-GP training throughput: {config['n_obs']:,} x {config['n_genes']:,} float32, "
        f"1 categorical covariate ({N_CATEGORIES} categories), batch {BATCH_SIZE}, "
        f"n_critic {N_CRITIC}, RMSprop lr {LR:g}"
    )
    print(
        f"{config['epochs']} epochs per run (epoch 1 = warm-up, not in steady state), "
        f"median of {config['repeats']} alternating repeats, torch threads "
        f"{config['torch_threads']}, {config['cpu_count']} CPUs"
    )
    header = (
        f"{'variant':<38} {'steps/s':>7} {'samples/s':>9} {'ovh':>7} {'paired':>7} "
        f"{'steps/cpu-s':>11} {'cpu ovh':>7} {'e2e s':>6} {'e2e ovh':>7}"
    )
    print(header)
    print("-" * len(header))

    def pct(s: dict[str, Any], key: str, variant: str) -> str:
        return "-" if variant == BARE else f"{s[key]:+.1f}%"

    for variant, s in summary.items():
        print(
            f"{variant:<38} {s['steps_per_s']:>7.2f} {s['samples_per_s']:>9.1f} "
            f"{pct(s, 'overhead_pct', variant):>7} {pct(s, 'paired_overhead_pct', variant):>7} "
            f"{s['steps_per_cpu_s']:>11.2f} {pct(s, 'cpu_overhead_pct', variant):>7} "
            f"{s['end_to_end_s']:>6.1f} {pct(s, 'end_to_end_overhead_pct', variant):>7}"
        )
    print()
    print(
        "Steady state = epochs 2..N incl. per-epoch hooks; medians over repeats. "
        "ovh = bare / package - 1 of the median wall-clock throughputs; paired = median of "
        "that ratio within each repeat (bare and package run back to back); cpu ovh = the "
        "same from steps per CPU-second of this process (time.process_time), less affected "
        "by other jobs on the machine when torch runs 1 thread."
    )
    print(
        "e2e: whole train() call (Trainer + loaders + warm-up epoch) vs bare optimiser set-up "
        "+ all epochs, per step; model construction excluded on both sides."
    )
    batches = -(-config["n_obs"] // BATCH_SIZE)
    at_reference_size = (config["n_obs"], config["n_genes"]) == (2000, 20000)
    for variant, s in summary.items():
        epoch_s = batches / s["steps_per_s"]
        versus = (
            f" ({REFERENCE_EPOCH_S / epoch_s:.1f}x faster than the reference code's "
            f"{REFERENCE_EPOCH_S} s, two cores)"
            if at_reference_size
            else ""
        )
        print(f"{variant}: {epoch_s:.2f} s per epoch of {batches} batches{versus}")
    sel = summary.get(PKG_SEL)
    if sel is not None and "default_cadence_selection_pct" in sel:
        print(
            f"selection='conditional': {sel['evaluations_per_run']:.0f} evaluations per run "
            f"(every epoch here), {sel['seconds_per_evaluation']:.2f} s each; at the default "
            f"cadence ({DEFAULT_N_EVALUATIONS} per {DEFAULT_N_STEPS:,} steps) that adds "
            f"~{sel['default_cadence_selection_pct']:.1f}% to training time."
        )


def print_probe(probe: dict[str, Any], summary: dict[str, dict[str, Any]]) -> None:
    bare = summary[BARE]
    print(
        f"Fixed cost per step of WGANGP.train (selection=None), measured on "
        f"{probe['n_obs']:,} x {probe['n_genes']} (negligible compute): bare "
        f"{probe['bare_step_ms']:.1f} ms, package {probe['package_step_ms']:.1f} ms -> "
        f"+{probe['fixed_ms_per_step']:.1f} ms wall (+{probe['fixed_cpu_ms_per_step']:.1f} ms "
        f"CPU) per step."
    )
    print(
        f"Against the full-size bare step ({1e3 / bare['steps_per_s']:.0f} ms wall, "
        f"{1e3 / bare['steps_per_cpu_s']:.0f} ms CPU) that predicts an overhead of "
        f"{probe['predicted_overhead_pct']:+.1f}% (wall) / "
        f"{probe['predicted_cpu_overhead_pct']:+.1f}% (CPU), independent of the full-size noise."
    )


def print_verdict(
    summary: dict[str, dict[str, Any]], config: dict[str, Any], probe: dict[str, Any] | None
) -> str:
    """MET / NOT MET when the direct estimate and the fixed-cost prediction agree."""
    s = summary[PKG]
    single = config["torch_threads"] == 1
    direct = s["cpu_overhead_pct"] if single else s["paired_overhead_pct"]
    name = "CPU-time" if single else "paired wall-clock"
    ok = [direct <= 15]
    detail = (
        f"direct {name} {direct:+.1f}% (wall-clock {s['overhead_pct']:+.1f}% of medians, "
        f"{s['paired_overhead_pct']:+.1f}% paired)"
    )
    if probe is not None:
        ok.append(probe["predicted_overhead_pct"] <= 15)
        detail += f"; fixed-cost prediction {probe['predicted_overhead_pct']:+.1f}%"
    verdict = "MET" if all(ok) else "NOT MET" if not any(ok) else "INCONCLUSIVE (noisy machine)"
    print(f"Target overhead <= 15% (selection=None, steady state): {verdict} - {detail}")
    return verdict


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-obs", type=int, default=2000, help="samples (default 2000)")
    parser.add_argument("--n-genes", type=int, default=20000, help="genes (default 20000)")
    parser.add_argument(
        "--epochs",
        type=int,
        default=2,
        help="epochs per run, >= 2; the first is a warm-up (default 2)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each variant")
    parser.add_argument(
        "--no-selection-row",
        action="store_true",
        help="skip the selection='conditional' variant",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "results" / "speed.json",
        help="JSON results file (default benchmarks/results/speed.json)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for both sides (default 1; 0 keeps torch's default). On a machine "
        "shared with other jobs, torch's default (one thread per core) oversubscribes the "
        "cores and OpenMP barriers make every small op 10-20x slower, which drowns the "
        "comparison in noise",
    )
    parser.add_argument(
        "--probe-genes",
        type=int,
        default=100,
        help="genes of the fixed-cost probe (bare vs package where compute is negligible); "
        "0 skips it (default 100)",
    )
    parser.add_argument(
        "--n-components",
        type=int,
        default=0,
        help="also train WGANGP(n_components=K) in a K-dimensional principal subspace "
        "(0 skips it; default 0)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the first epoch is a warm-up)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import lightning.pytorch  # noqa: F401  (sets its loggers to INFO on import; quieted below)
    import torch

    import scgensynth as sgs
    import scgensynth.model

    _quiet()
    if args.threads:
        torch.set_num_threads(args.threads)

    t_start = time.perf_counter()
    X, labels = make_data(args.n_obs, args.n_genes, seed=args.seed)
    adata = make_adata(X, labels)
    sgs.model.WGANGP.setup_anndata(adata, categorical_covariate_keys=["group"])
    stats = sgs.pp.fit_scaling(adata, "standardize")

    variants = [BARE, PKG] + ([] if args.no_selection_row else [PKG_SEL])
    if args.n_components:
        variants.append(pkg_subspace(args.n_components))
    runs: list[dict[str, Any]] = []
    for rep in range(args.repeats):
        order = variants if rep % 2 == 0 else variants[::-1]
        for variant in order:
            seed = args.seed + rep
            gc.collect()
            if variant == BARE:
                result = run_bare(adata, args.epochs, seed, stats)
            elif args.n_components and variant == pkg_subspace(args.n_components):
                result = run_package(adata, args.epochs, seed, None, args.n_components)
            else:
                sel = None if variant == PKG else "conditional"
                result = run_package(adata, args.epochs, seed, sel)
            result["repeat"] = rep
            runs.append(result)
            print(
                f"repeat {rep + 1}/{args.repeats} {variant:<38} "
                f"{result['steady_steps'] / result['steady_s']:7.2f} steps/s "
                f"(end to end {result['end_to_end_s']:.1f} s)",
                flush=True,
            )

    summary = summarise(runs)
    probe = None
    if args.probe_genes > 0:
        probe = probe_fixed_cost(
            args.n_obs, args.probe_genes, max(args.epochs, 3), args.repeats, args.seed
        )
        bare = summary[BARE]
        probe["predicted_overhead_pct"] = (
            100 * probe["fixed_ms_per_step"] / 1e3 * bare["steps_per_s"]
        )
        probe["predicted_cpu_overhead_pct"] = (
            100 * probe["fixed_cpu_ms_per_step"] / 1e3 * bare["steps_per_cpu_s"]
        )
        summary[PKG]["predicted_overhead_pct"] = probe["predicted_overhead_pct"]
    config = {
        "n_obs": args.n_obs,
        "n_genes": args.n_genes,
        "epochs": args.epochs,
        "repeats": args.repeats,
        "batch_size": BATCH_SIZE,
        "n_critic": N_CRITIC,
        "lr": LR,
        "n_categories": N_CATEGORIES,
        "seed": args.seed,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "timed": (
            "steady state: start of epoch 2 to end of training; model construction excluded "
            "on both sides; end_to_end: whole train() call vs bare optimisers + all epochs"
        ),
    }
    print_table(summary, config)
    if probe is not None:
        print_probe(probe, summary)
    summary[PKG]["verdict"] = print_verdict(summary, config, probe)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "config": config,
        "summary": summary,
        "fixed_cost_probe": probe,
        "runs": runs,
        "wall_s": time.perf_counter() - t_start,
    }
    args.out.write_text(json.dumps(payload, indent=2, default=_json_default))
    print(f"\nresults written to {args.out} (total {payload['wall_s']:.0f} s)")
    return 0


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(type(obj).__name__)


if __name__ == "__main__":
    sys.exit(main())
