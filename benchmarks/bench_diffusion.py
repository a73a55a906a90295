"""Diffusion sampling cost and GMDA's frugality, side by side in one run (issue 5).

1. **DDIM-50 vs DDPM-1000.** One DDPM is trained with its defaults on the GTEx 70/30 split
   (seed 0). The same number of samples is then drawn alternately with DDIM in 50 steps
   and with ancestral DDPM in 1,000 steps (``--repeats`` times each, interleaved, so both
   see the same machine load); the report gives the median throughput of each and their
   ratio, and precision/recall (k=5, against the training part) plus the synthetic-trained
   logistic-regression accuracy on the held-out part for each sampler, so the speed-up is
   read at the quality it costs.
2. **GMDA vs WGAN-GP.** Both are trained with their defaults on the same split, one after
   the other; the report gives their trainable parameter counts (also at 22,283 genes, the
   bladderbatch panel, where only the networks are built), training wall time and the same
   quality figures.

Writes ``benchmarks/results/diffusion.json`` and ``diffusion.md``. About 15 minutes on a
2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "bladderbatch.h5ad"


def _split():
    from sklearn.model_selection import train_test_split

    import scgensynth as sgs

    gtex = sgs.datasets.gtex_tissues()
    a, b = train_test_split(
        np.arange(gtex.n_obs), test_size=0.3, stratify=gtex.obs["tissue"], random_state=0
    )
    return gtex[np.sort(a)].copy(), gtex[np.sort(b)].copy()


def _quality(train, test, synth) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import scgensynth as sgs

    pr = sgs.metrics.precision_recall(train, synth, k=5)
    y = test.obs["tissue"].astype(str)

    def acc(data):
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        clf.fit(data.X, data.obs["tissue"].astype(str))
        return float((clf.predict(test.X) == y).mean())

    real = acc(train)
    tstr = acc(synth)
    return {
        "precision": pr["precision"],
        "recall": pr["recall"],
        "tstr_accuracy": tstr,
        "trtr_accuracy": real,
        "tstr_trtr_ratio": tstr / real,
    }


def _n_parameters(model) -> int:
    return sum(p.numel() for p in model.module.parameters() if p.requires_grad)


def _networks_only(name: str, adata, key: str) -> int:
    import scgensynth as sgs
    from scgensynth.model.base._proxy import proxy_anndata

    cls = sgs.model.get_model_class(name)
    proxy = proxy_anndata(adata, None, [key], [])
    cls.setup_anndata(proxy, categorical_covariate_keys=[key])
    return _n_parameters(cls(proxy))


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-steps", type=int, default=None, help="shorten training (smoke runs)")
    ap.add_argument(
        "--parts", nargs="*", default=["samplers", "gmda"], choices=["samplers", "gmda"],
        help="run only some parts; the others are kept from the existing diffusion.json",
    )  # fmt: skip
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    train, test = _split()
    quiet = {"enable_progress_bar": False, "seed": 0, "categorical_covariate_keys": ["tissue"]}
    if args.n_steps:
        quiet["n_steps"] = args.n_steps
    report: dict = {}
    if set(args.parts) != {"samplers", "gmda"} and (RESULTS / "diffusion.json").exists():
        report = json.loads((RESULTS / "diffusion.json").read_text())
    report.update({"n_train": train.n_obs, "n_genes": train.n_vars})
    report.setdefault("threads", {}).update(dict.fromkeys(args.parts, args.threads))
    if "samplers" in args.parts:
        _samplers(report, train, test, quiet, args.repeats)
    if "gmda" in args.parts:
        _gmda(report, train, test, quiet)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "diffusion.json").write_text(json.dumps(report, indent=2))
    if {"ddim50", "gmda"} <= set(report):
        _write_markdown(report, train, args)


def _samplers(report, train, test, quiet, repeats) -> None:
    """DDIM-50 against DDPM-1000 on one trained DDPM."""
    import scgensynth as sgs

    t0 = time.perf_counter()
    ddpm = sgs.tl.train(train, "ddpm", **quiet)
    report["ddpm_train_seconds"] = time.perf_counter() - t0
    report["ddpm_parameters"] = _n_parameters(ddpm)
    samplers = {
        "ddim50": {"sampler": "ddim", "n_sampling_steps": 50},
        "ddpm1000": {"sampler": "ddpm"},
    }
    times: dict[str, list[float]] = {k: [] for k in samplers}
    draws = {}
    for r in range(repeats):
        for name, kw in samplers.items():
            t0 = time.perf_counter()
            draws[name] = ddpm.generate(train.n_obs, seed=r, **kw)
            times[name].append(time.perf_counter() - t0)
    for name in samplers:
        seconds = statistics.median(times[name])
        report[name] = {
            "seconds": seconds,
            "samples_per_second": train.n_obs / seconds,
            **_quality(train, test, draws[name]),
        }
    report["throughput_ratio"] = (
        report["ddim50"]["samples_per_second"] / (report["ddpm1000"]["samples_per_second"])
    )

    report["repeats"] = repeats


def _gmda(report, train, test, quiet) -> None:
    """GMDA against WGAN-GP: parameters, training time, quality."""
    import anndata as ad

    import scgensynth as sgs

    for name in ("gmda", "wgan"):
        t0 = time.perf_counter()
        model = sgs.tl.train(train, name, **quiet)
        seconds = time.perf_counter() - t0
        report[name] = {
            "train_seconds": seconds,
            "parameters": _n_parameters(model),
            **_quality(train, test, model.generate(train.n_obs, seed=0)),
        }
    wide = ad.read_h5ad(DATA)
    for name in ("gmda", "wgan"):
        report[name]["parameters_22283_genes"] = _networks_only(name, wide, "cancer")
    report["parameter_ratio"] = report["wgan"]["parameters"] / report["gmda"]["parameters"]
    report["train_time_ratio"] = report["wgan"]["train_seconds"] / report["gmda"]["train_seconds"]


def _write_markdown(report, train, args) -> None:
    d, p = report["ddim50"], report["ddpm1000"]
    g, w = report["gmda"], report["wgan"]
    lines = [
        f"# Diffusion sampling and GMDA's cost, {time.strftime('%Y-%m-%d %H:%M')}",
        "",
        f"GTEx 70/30 (seed 0): {train.n_obs} training samples x {train.n_vars} genes; "
        f"torch threads per part {report['threads']}; "
        f"training length: {args.n_steps or 'each model default'}.",
        "",
        f"DDPM trained in {report['ddpm_train_seconds']:.0f} s "
        f"({report['ddpm_parameters']:,} parameters). Sampling {train.n_obs} samples, median "
        f"of {report['repeats']} interleaved runs:",
        "",
        "| sampler | seconds | samples/s | precision | recall | TSTR acc. | TSTR/TRTR |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, r in (("DDIM, 50 steps", d), ("DDPM, 1,000 steps", p)):
        lines.append(
            f"| {label} | {r['seconds']:.2f} | {r['samples_per_second']:.0f} | "
            f"{r['precision']:.3f} | {r['recall']:.3f} | {r['tstr_accuracy']:.3f} | "
            f"{r['tstr_trtr_ratio']:.3f} |"
        )
    lines += [
        "",
        f"**DDIM-50 throughput / DDPM-1000 throughput: {report['throughput_ratio']:.1f}x.**",
        "",
        "| model | parameters (467 genes) | parameters (22,283 genes) | train s | precision "
        "| recall | TSTR acc. | TSTR/TRTR |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, r in (("GMDA", g), ("WGAN-GP", w)):
        lines.append(
            f"| {label} | {r['parameters']:,} | {r['parameters_22283_genes']:,} | "
            f"{r['train_seconds']:.0f} | {r['precision']:.3f} | {r['recall']:.3f} | "
            f"{r['tstr_accuracy']:.3f} | {r['tstr_trtr_ratio']:.3f} |"
        )
    lines += [
        "",
        f"**WGAN-GP / GMDA: {report['parameter_ratio']:.1f}x the parameters, "
        f"{report['train_time_ratio']:.1f}x the training time.**",
    ]
    (RESULTS / "diffusion.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
