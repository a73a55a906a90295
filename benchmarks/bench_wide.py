"""Time to quality at ~20,000 genes: how long each generator takes to reach its own plateau.

For every dataset and generator, in one run and side by side:

- **time to 95 %** (``t95_s``): wall time from the start of model construction (scaling
  statistics included) until the generator first scores at least 95 % of its own best score
  on the quality criterion model selection uses (:class:`scgensynth.train.SelectionCriterion`,
  ``"conditional"``: gene-gene correlation, conditional fidelity, precision/recall F1 and
  novelty, on the 10 % of the training part held out by ``train``). Learned generators are
  scored every ``--eval-every`` steps during training (``model.selection_`` records the
  seconds of each evaluation); a closed-form generator (the Gaussian) is scored once after
  its fit, and its time is the whole fit;
- **plateau**: that best score, and the quality of the final model (the best weights,
  restored) in the leaderboard's harness (``bench_leaderboard.score``: PCA-F1, C2ST AUC,
  correlation score against its ceiling, TSTR/TRTR, DCR ratio) on a stratified 70/30 split;
- **peak memory**: the peak resident set of a fresh process running that one fit, minus its
  resident set after the imports (the data set, its split and the evaluation included); the
  memory target of issue 20 itself is measured by ``bench_memory.py``;
- **steps run** and whether the run was capped (``--n-steps`` / ``--max-minutes`` below the
  model's default length: the plateau is then the best within the cap, and the time to it a
  lower bound of the uncapped one, so a speed-up against a capped row is conservative).

Datasets: ``lowrank_2000x20000`` (2,000 samples x 20,000 genes drawn from a low-rank-plus-
noise model fitted to bladderbatch's 20,000 most variable probes: class means, the
within-class principal directions and their spread, per-gene residual noise; 3 classes in
bladderbatch's proportions), and the real wide sets of ``../shared/data``: bladderbatch
(22,283 probes), all_leukemia (12,625), gtex_brain_damirseq (21,363, raw counts),
hsmm_myoblast_sc (single cells; all-zero genes dropped), prepared as the leaderboard does.

Every (dataset, generator) runs in its own subprocess (``--child``), one torch thread by
default, so peaks and thread pools never carry over. Results: ``<out>.json`` and
``<out>.md`` (default ``benchmarks/results/wide``).

Run ``python benchmarks/bench_wide.py --help`` for the options; e.g.
``python benchmarks/bench_wide.py --datasets lowrank_2000x20000 --models gaussian wgan
--n-steps 3000`` (about 15 minutes on two cores).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "wide"
SYNTHETIC = "lowrank_2000x20000"
REAL = ("bladderbatch", "all_leukemia", "gtex_brain_damirseq", "hsmm_myoblast_sc")
DATASETS = (SYNTHETIC, *REAL)
DEFAULT_MODELS = ("gaussian", "wgan")  # the recommended default, and the WGAN-GP of before
PLATEAU_SHARE = 0.95
MARKER = "@@RESULT@@"
SCORED = ("f1", "c2st_auc", "corr", "corr_ceiling", "tstr_trtr", "dcr_ratio")


def _leaderboard():
    """``bench_leaderboard`` (the harness: loading, split, evaluation space, scores)."""
    name = "bench_leaderboard"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / "bench_leaderboard.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


# -- data ------------------------------------------------------------------------------------
def lowrank_dataset(
    n_obs: int = 2000, n_genes: int = 20_000, *, seed: int = 0, data_dir: Path | None = None
):
    """``n_obs`` x ``n_genes`` samples of a low-rank-plus-noise model fitted to bladderbatch.

    The model: per class (``cancer``), the class mean of bladderbatch's ``n_genes`` most
    variable probes; the pooled within-class residuals' principal directions ``v_k`` with
    their standard deviations ``s_k``; per-gene residual noise with the variance the
    directions leave unexplained. A sample of class ``c`` is ``m_c + sum_k s_k z_k v_k + e``.

    Returns
    -------
    An AnnData (float32 ``.X``, ``.obs["cancer"]``) and the label key.
    """
    import anndata as ad
    import numpy as np
    import pandas as pd

    lb = _leaderboard()
    real, info = lb.load_dataset("bladderbatch", data_dir)
    label = info["label"]
    X = np.asarray(real.X, dtype=np.float64)
    genes = np.sort(np.argsort(X.var(0))[::-1][:n_genes])
    X = X[:, genes]
    y = real.obs[label].astype(str).to_numpy()
    classes, codes = np.unique(y, return_inverse=True)
    means = np.stack([X[codes == c].mean(0) for c in range(len(classes))])
    resid = X - means[codes]
    dof = len(X) - len(classes)
    _, s, vt = np.linalg.svd(resid, full_matrices=False)
    keep = s > s[0] * 1e-6
    s, vt = s[keep] / np.sqrt(dof), vt[keep]
    noise_var = np.clip(resid.var(0) * len(X) / dof - (vt**2 * s[:, None] ** 2).sum(0), 0, None)
    rng = np.random.default_rng(seed)
    share = np.bincount(codes) / len(codes)
    new_codes = np.sort(rng.choice(len(classes), size=n_obs, p=share))
    Z = rng.standard_normal((n_obs, len(s))) * s
    E = rng.standard_normal((n_obs, X.shape[1])) * np.sqrt(noise_var)
    out = (means[new_codes] + Z @ vt + E).astype(np.float32)
    obs = pd.DataFrame(
        {label: pd.Categorical(classes[new_codes])},
        index=[f"sample_{i}" for i in range(n_obs)],
    )
    var = pd.DataFrame(index=real.var_names[genes])
    return ad.AnnData(X=out, obs=obs, var=var), label


def load(name: str, data_dir: Path | None):
    """The AnnData of ``name`` and its label key (the leaderboard's preparation)."""
    if name == SYNTHETIC:
        return lowrank_dataset(data_dir=data_dir)
    adata, info = _leaderboard().load_dataset(name, data_dir)
    return adata, info["label"]


# -- one fit, in the child --------------------------------------------------------------------
def _rss_bytes() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return _maxrss_bytes()


def _maxrss_bytes() -> int:
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def time_to_plateau(curve, share: float = PLATEAU_SHARE) -> tuple[float, float, int]:
    """``(seconds, plateau, epoch)``: the first evaluation at ``share`` of the best score.

    ``curve``: rows with ``seconds``, ``score`` and ``epoch`` (``model.selection_``).

    Examples
    --------
    >>> import pandas as pd
    >>> curve = pd.DataFrame({"epoch": [1, 2, 3], "seconds": [1.0, 2.0, 3.0],
    ...                       "score": [0.5, 0.79, 0.8]})
    >>> time_to_plateau(curve)
    (2.0, 0.8, 2)
    """
    plateau = float(curve["score"].max())
    first = curve[curve["score"] >= share * plateau].iloc[0]
    return float(first["seconds"]), plateau, int(first["epoch"])


def parse_model(spec: str) -> tuple[str, dict[str, Any]]:
    """``"wgan:n_components=256"`` -> ``("wgan", {"n_components": 256})`` (values: JSON).

    Examples
    --------
    >>> parse_model("wgan:n_components=256,n_latent=32")
    ('wgan', {'n_components': 256, 'n_latent': 32})
    >>> parse_model("gaussian")
    ('gaussian', {})
    """
    name, _, options = spec.partition(":")
    kwargs = {}
    for item in filter(None, options.split(",")):
        key, _, value = item.partition("=")
        try:
            kwargs[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key.strip()] = value
    return name, kwargs


def _train(model_spec: str, data, label: str, args) -> tuple[Any, dict[str, float]]:
    """Build and train one model; the times of its phases."""
    import scvi

    import scgensynth as sgs

    name, model_kwargs = parse_model(model_spec)
    cls = sgs.model.get_model_class(name)
    scvi.settings.seed = args.seed
    t0 = time.perf_counter()
    cls.setup_anndata(data, categorical_covariate_keys=[label])
    model = cls(data, **model_kwargs)
    built = time.perf_counter() - t0
    kwargs: dict[str, Any] = {"enable_progress_bar": False, "accelerator": "cpu"}
    if args.n_steps is not None:
        kwargs["n_steps"] = args.n_steps
    if args.eval_every is not None:
        kwargs["selection_every"] = args.eval_every
    if args.max_minutes is not None:
        kwargs["max_time"] = {"minutes": args.max_minutes}
    model.train(**kwargs)
    return model, {"build_s": built, "train_s": time.perf_counter() - t0}


def _plateau(model, times: dict[str, float], seed: int) -> dict[str, Any]:
    """Time to 95 % of the plateau, the plateau, and how long the run was."""
    curve = getattr(model, "selection_", None)
    if curve is not None and len(curve):
        seconds, plateau, epoch = time_to_plateau(curve)
        steps_per_epoch = math.ceil(len(model.train_indices_) / 32)
        return {
            "t95_s": times["build_s"] + seconds,
            "plateau": plateau,
            "t95_step": epoch * steps_per_epoch,
            "evaluations": len(curve),
            "steps_run": int(curve["epoch"].max()) * steps_per_epoch,
        }
    # closed form: one evaluation of the same criterion after the fit
    criterion = model._make_criterion(
        model.train_indices_, model.validation_indices_, "conditional", seed
    )
    score, _ = criterion(model.module)
    return {
        "t95_s": times["train_s"],
        "plateau": float(score),
        "t95_step": 0,
        "evaluations": 1,
        "steps_run": 0,
    }


def child(args) -> dict[str, Any]:
    """Load, split, train, evaluate one (dataset, model); peak memory of all of it."""
    import logging
    import warnings

    import anndata as ad
    import numpy as np
    import pandas as pd
    import torch

    import scgensynth as sgs

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "scvi", "scgensynth"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    lb = _leaderboard()
    baseline = _rss_bytes()
    adata, label = load(args.dataset, args.data_dir)
    train, test = lb.split_dataset(adata, label, args.seed)
    split = lb.prepare(train, test, label, seed=args.seed)
    data = ad.AnnData(X=train.X.copy(), obs=train.obs[[label]].copy(), var=train.var.copy())
    model, times = _train(args.model, data, label, args)
    record = {"dataset": args.dataset, "model": args.model, "label": label, **times}
    record.update(_plateau(model, times, args.seed))
    cls = type(model)
    record["default_steps"] = int(getattr(cls, "default_n_steps", 0) or 0)
    shortened = args.n_steps is not None and args.n_steps < record["default_steps"]
    record["capped"] = bool(record["steps_run"]) and (shortened or args.max_minutes is not None)
    covariates = pd.DataFrame({label: train.obs[label].to_numpy()})
    synth = sgs.tl.generate(model, covariates=covariates, seed=args.seed)
    scores = lb.score(split, np.asarray(synth.X), synth.obs[label].astype(str).to_numpy())
    record.update({k: float(scores[k]) for k in SCORED})
    record.update(
        n_train=int(train.n_obs),
        n_genes=int(train.n_vars),
        matrix_mib=train.n_obs * train.n_vars * 4 / 2**20,
        peak_rss_mib=(_maxrss_bytes() - baseline) / 2**20,
        threads=torch.get_num_threads(),
    )
    return record


# -- the parent -------------------------------------------------------------------------------
def run_one(dataset: str, model: str, args) -> dict[str, Any]:
    """One (dataset, model) in a fresh interpreter; its record (or the error)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child"]
    cmd += ["--datasets", dataset, "--models", model, "--seeds", str(args.seeds[0])]
    cmd += ["--threads", str(args.threads)]
    for flag, value in (
        ("--n-steps", args.n_steps),
        ("--eval-every", args.eval_every),
        ("--max-minutes", args.max_minutes),
        ("--data-dir", args.data_dir),
    ):
        if value is not None:
            cmd += [flag, str(value)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARKER)]
    if proc.returncode != 0 or not lines:
        return {"dataset": dataset, "model": model, "error": proc.stderr[-2000:]}
    record = json.loads(lines[-1][len(MARKER) :])
    record["wall_s"] = time.perf_counter() - t
    return record


def _fmt(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return format(value, spec)


def markdown(records: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The report: one table row per (dataset, model), then the speed-ups per dataset."""
    out = [
        "# Time to quality at ~20,000 genes",
        "",
        f"- command: `{meta['command']}`",
        f"- date: {meta['date']}; machine: {meta['machine']}; torch threads: {meta['threads']}",
        "- t95: seconds from model construction to 95 % of the model's own best selection "
        "score; plateau: that best score (selection criterion, held-out 10 % of the "
        "training part); quality columns: the leaderboard's harness on a 70/30 split; "
        "peak: resident memory of the fit's process above its post-import baseline.",
        "",
        "| dataset | model | samples x genes | steps run | capped | t95 s | plateau | "
        "F1 | C2ST | corr / ceil. | TSTR/TRTR | DCR | peak MiB | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        if r.get("error"):
            err = r["error"].strip().splitlines()[-1] if r["error"].strip() else "failed"
            out.append(f"| {r['dataset']} | {r['model']} | failed: {err[:80]} |" + " |" * 11)
            continue
        corr = r["corr"] / r["corr_ceiling"] if r["corr_ceiling"] > 0 else math.nan
        cells = [
            r["dataset"], r["model"], f"{r['n_train']} x {r['n_genes']}", str(r["steps_run"]),
            "yes" if r["capped"] else "no", _fmt(r["t95_s"], ".1f"), _fmt(r["plateau"], ".3f"),
            _fmt(r["f1"], ".3f"), _fmt(r["c2st_auc"], ".3f"), _fmt(corr, ".2f"),
            _fmt(r["tstr_trtr"], ".3f"), _fmt(r["dcr_ratio"], ".2f"),
            _fmt(r["peak_rss_mib"], ",.0f"), _fmt(r["train_s"], ".1f"),
        ]  # fmt: skip
        out.append("| " + " | ".join(cells) + " |")
    out += ["", "## Speed-up of each model's time to 95 % against the WGAN-GP's", ""]
    out += speedups(records)
    return "\n".join(out) + "\n"


def speedups(records: list[dict[str, Any]], reference: str = "wgan") -> list[str]:
    """``t95(reference) / t95(model)`` per dataset, as markdown lines."""
    lines = []
    ok = [r for r in records if not r.get("error")]
    for dataset in dict.fromkeys(r["dataset"] for r in ok):
        rows = {r["model"]: r for r in ok if r["dataset"] == dataset}
        if reference not in rows:
            continue
        ref = rows[reference]
        for name, r in rows.items():
            if name == reference:
                continue
            ratio = ref["t95_s"] / max(r["t95_s"], 1e-9)
            note = " (WGAN-GP capped: a lower bound)" if ref["capped"] else ""
            lines.append(
                f"- {dataset}: {name} reaches its plateau {ratio:.1f}x faster than the WGAN-GP "
                f"({r['t95_s']:.1f} s vs {ref['t95_s']:.1f} s){note}; plateau quality "
                f"TSTR/TRTR {r['tstr_trtr']:.3f} vs {ref['tstr_trtr']:.3f}, F1 "
                f"{r['f1']:.3f} vs {ref['f1']:.3f}, C2ST {r['c2st_auc']:.3f} vs "
                f"{ref['c2st_auc']:.3f}, DCR {r['dcr_ratio']:.2f} vs {ref['dcr_ratio']:.2f}."
            )
    return lines or ["- (no WGAN-GP row to compare with)"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                   help="registered generators, with options as name:key=value,... "
                   "(default: gaussian wgan)")  # fmt: skip
    p.add_argument("--seeds", nargs=1, type=int, default=[0], help="one seed (default 0)")
    p.add_argument("--n-steps", type=int, default=None,
                   help="cap every learned model's length (default: its own)")  # fmt: skip
    p.add_argument("--eval-every", type=int, default=None,
                   help="steps between selection evaluations (default 1/40 of a run)")  # fmt: skip
    p.add_argument("--max-minutes", type=float, default=None,
                   help="wall-clock cap per fit (Lightning's max_time)")  # fmt: skip
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--data-dir", type=Path, default=None, help="the shared datasets")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output stem (.json, .md)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        args.dataset, args.model, args.seed = args.datasets[0], args.models[0], args.seeds[0]
        print(MARKER + json.dumps(child(args)), flush=True)
        return 0
    import scgensynth as sgs

    unknown = sorted({parse_model(m)[0] for m in args.models} - set(sgs.model.available().index))
    if unknown:
        msg = f"Unknown models {unknown}; registered: {list(sgs.model.available().index)}."
        raise SystemExit(msg)
    t0 = time.perf_counter()
    records = []
    for dataset in args.datasets:
        for model in args.models:
            record = run_one(dataset, model, args)
            records.append(record)
            status = (record.get("error") and "failed") or (
                f"t95 {record['t95_s']:.1f} s, plateau {record['plateau']:.3f}, "
                f"TSTR/TRTR {record['tstr_trtr']:.3f}, peak {record['peak_rss_mib']:,.0f} MiB"
            )
            print(f"{dataset} / {model}: {status}", flush=True)
    meta = {
        "command": "python benchmarks/bench_wide.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} ({platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs), Python {platform.python_version()}",
        "threads": args.threads,
        "wall_s": time.perf_counter() - t0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps({"meta": meta, "rows": records}, indent=1))
    Path(f"{args.out}.md").write_text(markdown(records, meta))
    print(f"Wrote {args.out}.json and {args.out}.md ({meta['wall_s'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
