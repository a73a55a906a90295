"""One source for published figures (issue 22).

The comparison table in the README and the user guide is rendered from
``benchmarks/results/compare.json`` by ``benchmarks/figures.py``; prose that quotes it may
quote only values of that file; a tutorial's text may quote only figures its stored outputs
show; tutorial 01 reproduces the benchmark's WGAN-GP column.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((REPO / "tutorials").glob("*.ipynb"))
DECIMAL = re.compile(r"(?<![\w.])[-\u2212]?(\d+)\.(\d+)(?![\d.]*\w)")
SECONDS = re.compile(r"(?<![\w.,])(\d[\d,]*) s\b")


def _load_figures():
    name = "figures_under_test"
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "figures.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


figures = _load_figures()


@pytest.fixture(scope="module")
def results():
    return figures.load()


def _quoted(text: str) -> list[tuple[str, float, int]]:
    """(as written, value, decimals) of every decimal figure and every 'N s' in ``text``."""
    found = [(m[0], abs(float(f"{m[1]}.{m[2]}")), len(m[2])) for m in DECIMAL.finditer(text)]
    found += [(m[0], float(m[1].replace(",", "")), 0) for m in SECONDS.finditer(text)]
    return found


def _missing(text: str, values: list[float]) -> list[str]:
    return [
        written
        for written, value, decimals in _quoted(text)
        if not any(round(abs(v), decimals) == value for v in values)
    ]


def test_quoted_figures_are_found_at_their_precision():
    text = "recall 0.64 (vs −0.039), 178 s, k = 5, 70/30, 20,000 steps, v2.1b"
    assert [w for w, _, _ in _quoted(text)] == ["0.64", "−0.039", "178 s"]
    assert _missing(text, [0.6351, 0.0391, 177.6]) == []
    assert _missing(text, [0.6351, 177.6]) == ["−0.039"]


def test_published_tables_are_rendered_from_the_results_file(results):
    for path in figures.TARGETS:
        blocks = [m for m in figures.BLOCK.finditer(path.read_text())]
        assert [m["name"] for m in blocks].count("compare-table") == 1, path
    assert figures.stale(results) == [], "run `python benchmarks/figures.py`"
    table = figures.compare_table(results)
    assert f"({figures.trtr(results):.3f})" in table
    assert "k = 5" in table
    assert "logistic regression" in table
    for model in results["meta"]["models"]:
        assert figures.LABELS[model] in table


def test_render_rewrites_only_the_table_blocks(results):
    text = (
        "before\n<!-- figures:compare-table -->\nold table\n<!-- /figures:compare-table -->\n"
        "middle\n<!-- figures:compare -->\nprose 0.5\n<!-- /figures:compare -->\nafter\n"
    )
    new = figures.render(text, results)
    assert "old table" not in new
    assert figures.compare_table(results) in new
    assert new.startswith("before\n")
    assert "middle\n" in new
    assert new.endswith("after\n")
    assert "<!-- figures:compare -->\nprose 0.5\n<!-- /figures:compare -->" in new
    assert figures.render(new, results) == new


def test_prose_quotes_only_values_of_the_results_file(results):
    values = [v for model in results["values"].values() for v in model.values()]
    values += [v for v in results["meta"].values() if isinstance(v, float)]  # wall seconds
    passages = 0
    for path in figures.PROSE:
        for match in figures.BLOCK.finditer(path.read_text()):
            if match["name"] != "compare":
                continue
            passages += 1
            assert _missing(match["body"], values) == [], path.relative_to(REPO)
    assert passages >= 8  # README, user guide pages and benchmarks/README quote it


def test_a_stale_figure_is_caught(results):
    values = [v for model in results["values"].values() for v in model.values()]
    wgan = results["values"]["wgan"]
    assert _missing(f"recall {wgan['recall']:.3f}", values) == []
    assert _missing(f"recall {wgan['recall'] + 0.01:.3f}", values) != []


def _output_numbers(notebook: dict) -> list[float]:
    numbers = []
    for cell in notebook["cells"]:
        for out in cell.get("outputs", []):
            texts = ["".join(out.get("text", ""))]
            texts += ["".join(v) for k, v in out.get("data", {}).items() if k.startswith("text/")]
            for text in texts:
                numbers += [float(x) for x in re.findall(r"\d+\.\d+|\d+", text)]
    return numbers


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_text_quotes_figures_its_outputs_show(path):
    notebook = json.loads(path.read_text())
    numbers = _output_numbers(notebook)
    for i, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "markdown":
            missing = _missing("".join(cell["source"]), numbers)
            assert missing == [], f"cell {i} quotes figures no output shows: {missing}"


def test_tutorial_01_reproduces_the_benchmark_wgan_column(results):
    notebook = json.loads((REPO / "tutorials" / "01_gtex_wgan.ipynb").read_text())
    shown = {}
    for cell in notebook["cells"]:
        if "report = sgs.metrics.evaluate(" not in "".join(cell["source"]):
            continue
        (out,) = [o for o in cell["outputs"] if "data" in o]
        for line in "".join(out["data"]["text/plain"]).splitlines():
            parts = line.split()
            if len(parts) >= 2 and re.fullmatch(r"-?\d+\.\d+", parts[1]):
                shown[parts[0]] = float(parts[1])
    bench = results["values"]["wgan"]
    compared = ["precision", "recall", "coverage", "c2st_auc", "tstr_accuracy", "dcr_ratio"]
    assert {m: shown[m] for m in compared} == {m: round(bench[m], 3) for m in compared}
    # and the notebook shows the two side by side, equal
    (side,) = [
        "".join(o.get("text", ""))
        for cell in notebook["cells"]
        if "compare.json" in "".join(cell["source"]) and cell["cell_type"] == "code"
        for o in cell["outputs"]
    ]
    rows = [line.split() for line in side.splitlines()[1:]]
    assert [r[0] for r in rows] == compared
    assert all(r[-1] == "True" for r in rows), side


def _stored_run_minutes(notebook: dict) -> float:
    from datetime import datetime

    stamps = [
        datetime.fromisoformat(v.replace("Z", "+00:00"))
        for cell in notebook["cells"]
        for v in cell.get("metadata", {}).get("execution", {}).values()
    ]
    return (max(stamps) - min(stamps)).total_seconds() / 60


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_running_time_is_the_stored_runs(path):
    """The running time a tutorial states is its stored full-length run's (nbclient times)."""
    notebook = json.loads(path.read_text())
    stated = re.search(r"Running time at full length: about (\d+) minutes", "".join(
        notebook["cells"][0]["source"]
    ))  # fmt: skip
    assert stated, "the first cell states the running time"
    minutes = _stored_run_minutes(notebook)
    assert abs(int(stated[1]) - minutes) <= max(1.0, 0.3 * minutes), f"stored run: {minutes:.1f}"
