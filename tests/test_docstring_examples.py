"""Every docstring example in the package runs and gives what it shows.

The modules are found by walking the package, so a new file with examples is collected
without being listed here. Examples that need a trained model or minutes of training are
marked with ``scgensynth._utils._docs.doctest_skip`` on their function or class: they are
compiled (so they stay valid Python) but not run.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest
import torch

import scgensynth


def _documented_object(module, test: doctest.DocTest):
    obj = module
    for part in test.name.removeprefix(module.__name__).split(".")[1:]:
        obj = getattr(obj, part)
    return obj


def _split_tests(name: str) -> tuple[list[doctest.DocTest], list[doctest.DocTest]]:
    """The docstring tests of module ``name`` with examples: (to run, to compile only)."""
    module = importlib.import_module(name)
    run, shown = [], []
    for test in doctest.DocTestFinder().find(module, extraglobs={"torch": torch}):
        if test.examples:
            skipped = getattr(_documented_object(module, test), "__doctest_skip__", None)
            (shown if skipped else run).append(test)
    return run, shown


MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(scgensynth.__path__, prefix="scgensynth.")
    if any(_split_tests(info.name))
)


def test_examples_are_found():
    """The walk finds the files we know have examples (a broken walk finds none)."""
    assert {"scgensynth._utils._checks", "scgensynth.metrics._correlation"} <= set(MODULES)
    assert {"scgensynth.model._wgan", "scgensynth.tl"} <= set(MODULES)
    assert len(MODULES) >= 60


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    run, shown = _split_tests(name)
    for test in shown:
        for example in test.examples:
            compile(example.source, f"<{test.name}>", "single")
    runner = doctest.DocTestRunner(verbose=False)
    for test in run:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0
