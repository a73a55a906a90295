"""The tutorials run top to bottom and carry the outputs of full-length runs.

CI executes each notebook in a fresh kernel with ``SGS_TUTORIAL_FAST=1`` (short training,
same code), so a notebook broken by an API change fails here. The stored outputs must come
from a full-length run: every code cell executed once, in order, without errors, with
``FAST`` shown as ``False``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("*.ipynb"))
EXPECTED = [
    "01_gtex_wgan.ipynb",
    "02_tcga_augmentation.ipynb",
    "03_perturbation_counterfactual.ipynb",
    "04_compare_generators.ipynb",
    "05_tcga_private_sharing.ipynb",
]


def _code_cells(book) -> list:
    return [c for c in book.cells if c.cell_type == "code"]


def _images(book) -> int:
    return sum("image/png" in out.get("data", {}) for c in _code_cells(book) for out in c.outputs)


def _fast_flag_output(book) -> str:
    for cell in _code_cells(book):
        if 'os.environ.get("SGS_TUTORIAL_FAST")' in cell.source:
            texts = [o["data"].get("text/plain", "") for o in cell.outputs if "data" in o]
            return "".join(texts).strip()
    msg = "no cell reads SGS_TUTORIAL_FAST"
    raise AssertionError(msg)


def test_the_tutorials_exist_and_are_listed():
    assert [p.name for p in TUTORIALS] == EXPECTED
    listed = (ROOT / "tutorials" / "README.md").read_text()
    toc = (ROOT / "docs" / "tutorials.md").read_text()
    for name in EXPECTED:
        assert name in listed, f"tutorials/README.md does not list {name}"
        assert f"notebooks/{name.removesuffix('.ipynb')}" in toc, f"docs do not render {name}"


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_stored_outputs_are_a_full_length_run(path):
    book = nbformat.read(path, as_version=4)
    cells = _code_cells(book)
    counts = [c.execution_count for c in cells]
    assert counts == list(range(1, len(cells) + 1)), (
        f"{path.name}: run it top to bottom in a fresh kernel and save it with its outputs "
        f"(execution counts {counts})"
    )
    errors = [o for c in cells for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path.name} was saved with an error: {errors[0]['ename']}"
    assert _fast_flag_output(book) == "False", f"{path.name}: stored outputs of a FAST run"
    assert _images(book) >= 1, f"{path.name}: stored outputs have no figures"


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_runs_top_to_bottom(path, tmp_path, monkeypatch):
    stored = nbformat.read(path, as_version=4)
    book = nbformat.read(path, as_version=4)
    for cell in _code_cells(book):
        cell.outputs, cell.execution_count = [], None
    monkeypatch.setenv("SGS_TUTORIAL_FAST", "1")
    # the inline backend renders figures as PNG outputs without a display (what Jupyter uses)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # the kernel is a subprocess: keep it to one thread like the test process
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        monkeypatch.setenv(var, "1")
    monkeypatch.setenv("PYTHONHASHSEED", os.environ.get("PYTHONHASHSEED", "0"))
    client = NotebookClient(
        book,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError naming the failing cell
    assert _fast_flag_output(book) == "True"
    # every figure of the full-length run is drawn by the short run too
    assert _images(book) == _images(stored)
    assert not list(tmp_path.iterdir()), "the tutorial left files in its working directory"


def _stored_text(book) -> list[str]:
    """Every stored output's text (streams, plain-text results, tracebacks)."""
    texts = []
    for cell in _code_cells(book):
        for out in cell.outputs:
            if "text" in out:
                texts.append(out["text"])
            texts.extend(v for k, v in out.get("data", {}).items() if k.startswith("text/"))
    return texts


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_stored_outputs_carry_no_warnings_or_machine_paths(path):
    """A reader sees the package's output, not our machine or library noise."""
    text = "\n".join(_stored_text(nbformat.read(path, as_version=4)))
    for marker in ("Warning:", "warnings.warn", "DeprecationWarning", "UserWarning"):
        assert marker not in text, f"{path.name}: a stored output holds a warning ({marker})"
    for prefix in ("/work/", "/home/", "/tmp/", "/root/", "site-packages"):
        assert prefix not in text, f"{path.name}: a stored output shows a machine path {prefix}"
    assert not re.search(r"entrez_[0-9]", text), f"{path.name}: genes shown by Entrez id"
