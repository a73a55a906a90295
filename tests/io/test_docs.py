"""The readers' docstrings: shared fragments filled in, and every example in io/ runs."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re

import pytest

import scgensynth.io
from scgensynth._utils._docs import doc_params

IO_MODULES = sorted(
    f"scgensynth.io.{m.name}" for m in pkgutil.iter_modules(scgensynth.io.__path__)
)


def test_fragments_fill_whole_line_placeholders_at_their_indentation():
    @doc_params(dtype="dtype\n    ``float32`` or ``float64``.")
    def read(dtype="float32"):
        """Read.

        Parameters
        ----------
        {dtype}

        Examples
        --------
        >>> {"a": 1}
        {'a': 1}
        """

    lines = read.__doc__.splitlines()
    assert "        dtype" in lines
    assert "            ``float32`` or ``float64``." in lines
    assert "        {'a': 1}" in lines  # braces that are not a whole-line placeholder stay


def test_a_placeholder_without_fragment_is_an_error():
    with pytest.raises(KeyError, match="dtyp"):

        @doc_params(dtype="dtype\n    float32.")
        def read():
            """Read.

            {dtyp}
            """


@pytest.mark.parametrize("name", ["read_gtex", "read_tcga", "read_tcga_star", "read_tcga_xena"])
def test_public_readers_have_filled_docstrings(name):
    doc = getattr(scgensynth.io, name).__doc__
    for section in ("Parameters", "Returns", "Examples"):
        assert f"\n    {section}\n" in doc
    assert "\n    genes\n        Keep these genes" in doc
    assert not re.search(r"^\s*\{\w+\}\s*$", doc, flags=re.MULTILINE)  # all filled


@pytest.mark.parametrize("name", IO_MODULES)
def test_docstring_examples_of_every_io_module(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, verbose=False)
    assert result.failed == 0
    has_examples = any(
        ">>>" in (obj.__doc__ or "")
        for obj in vars(module).values()
        if getattr(obj, "__module__", None) == name
    )
    assert result.attempted > 0 or not has_examples
