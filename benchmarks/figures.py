"""Published figures from one source: the tables the README and the user guide quote.

The comparison table on GTEx is rendered from ``benchmarks/results/compare.json`` (written
by ``benchmarks/bench_compare.py``) into every block between

    <!-- figures:compare-table -->
    ...
    <!-- /figures:compare-table -->

of the files in ``TARGETS``. Run ``python benchmarks/figures.py`` after a benchmark run to
rewrite the blocks, ``--check`` to list the stale ones (exit 1). Prose that quotes the
comparison sits between ``<!-- figures:compare -->`` and ``<!-- /figures:compare -->``;
``tests/test_figures.py`` checks that every figure quoted there is a value of the same file.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SOURCE = HERE / "results" / "compare.json"
#: files holding rendered blocks
TARGETS = (REPO / "README.md", REPO / "docs" / "user_guide" / "index.md")
#: files whose ``figures:compare`` passages quote the comparison
PROSE = (
    *TARGETS,
    *(REPO / "docs" / "user_guide" / f"{n}.md" for n in ("wgan", "gan", "attgan", "cvae")),
    *(REPO / "docs" / "user_guide" / f"{n}.md" for n in ("ddpm", "gmda", "noise", "gaussian")),
    HERE / "README.md",
    REPO / "docs" / "getting_started.md",
)
LABELS = {
    "gaussian": "Gaussian", "wgan": "WGAN-GP", "gan": "GAN", "attgan": "AttGAN",
    "randattgan": "RandAttGAN", "cvae": "CVAE", "ddpm": "DDPM", "gmda": "GMDA", "noise": "noise",
}  # fmt: skip
#: (metric, row label, format) of the published table
ROWS = (
    ("precision", "precision", "{:.3f}"),
    ("recall", "recall", "{:.3f}"),
    ("coverage", "coverage", "{:.3f}"),
    ("adversarial_accuracy", "adversarial accuracy (0.5 best)", "{:.3f}"),
    ("c2st_auc", "C2ST AUC (0.5 best)", "{:.3f}"),
    ("frechet_distance_pca", "Fréchet distance (PCA)", "{:.1f}"),
    ("correlation_score", "correlation score", "{:.3f}"),
    ("tstr_accuracy", "TSTR accuracy", "{:.3f}"),
    ("tstr_trtr_accuracy_ratio", "TSTR accuracy / TRTR", "{:.3f}"),
    ("dcr_ratio", "distance-to-closest-record ratio", "{:.3f}"),
    ("train_seconds", "training seconds", "{:.0f}"),
    ("n_parameters", "parameters", "{:,.0f}"),
)
BLOCK = re.compile(
    r"(<!-- figures:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /figures:(?P=name) -->)", re.S
)


def load(path: Path = SOURCE) -> dict:
    """The benchmark's results file, with a clear error when it is missing."""
    if not path.exists():
        msg = f"{path} is missing: run `python benchmarks/bench_compare.py` first."
        raise FileNotFoundError(msg)
    return json.loads(path.read_text())


def trtr(results: dict) -> float:
    """The real-trained classifier's accuracy: one value, every model saw the same split."""
    values = {round(v["trtr_accuracy"], 6) for v in results["values"].values()}
    if len(values) != 1:
        msg = f"The models' TRTR accuracies differ ({sorted(values)}): not one split."
        raise ValueError(msg)
    return values.pop()


def compare_table(results: dict) -> str:
    """The settings sentence and the model x metric table, as Markdown."""
    meta, values = results["meta"], results["values"]
    models = [m for m in meta["models"] if m in values]
    ref = trtr(results)
    settings = (
        f"`{meta['command']}` ({meta['date']}; {meta['machine']}; {_n(meta['jobs'], 'model')} "
        f"trained at once, {_n(meta['threads'], 'torch thread')} each): every registered model "
        "at its default length (20,000 steps for the adversarial ones) on the bundled GTEx "
        f"set, {meta['split']}; precision/recall with k = {meta['k']} against the training "
        f"part; TSTR = {_classifier(meta)} trained on {meta['n_train']} synthetic samples and "
        f"tested on the {meta['n_test']} held-out real ones, TRTR = the same trained on the "
        f"{meta['n_train']} real ones ({ref:.3f}); parameters: those trained by gradient "
        "(none for the closed-form Gaussian and noise). Source: "
        "`benchmarks/results/compare.json`."
    )
    lines = [
        textwrap.fill(settings, width=92, break_on_hyphens=False, break_long_words=False),
        "",
        "| metric | " + " | ".join(LABELS.get(m, m) for m in models) + " |",
        "|---" * (len(models) + 1) + "|",
    ]
    for metric, label, fmt in ROWS:
        cells = [_cell(values[m].get(metric), fmt) for m in models]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: float | None, fmt: str) -> str:
    if value is None:
        return ""
    if fmt == "{:.0f}" and value < 10:  # seconds of the closed-form models
        return f"{value:.2g}"
    return fmt.format(value)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _classifier(meta: dict) -> str:
    return {"logistic": "logistic regression", "mlp": "an MLP"}.get(
        meta["classifier"], meta["classifier"]
    )


def render(text: str, results: dict) -> str:
    """``text`` with every ``compare-table`` block re-rendered."""

    def one(match: re.Match) -> str:
        if match["name"] != "compare-table":
            return match[0]
        return match[1] + compare_table(results) + "\n" + match[4]

    return BLOCK.sub(one, text)


def stale(results: dict) -> list[Path]:
    """The target files whose blocks differ from a fresh rendering."""
    return [p for p in TARGETS if render(p.read_text(), results) != p.read_text()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="list stale files, change nothing")
    args = ap.parse_args(argv)
    results = load()
    old = stale(results)
    if args.check:
        for path in old:
            print(f"stale: {path.relative_to(REPO)}")
        return 1 if old else 0
    for path in old:
        path.write_text(render(path.read_text(), results))
        print(f"rewrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
