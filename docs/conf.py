"""Sphinx configuration (build: ``pip install -e ".[doc]" && sphinx-build docs docs/_build``)."""

import inspect
import os
import re

project = "scgensynth"
author = "scgensynth developers"
copyright = "2026, scgensynth developers"
extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.doctest",  # ``testcode`` in docstrings inherited from Lightning
]
autosummary_generate = True
# Class pages list the methods defined in scgensynth only (see _skip_foreign_member): the
# inherited ones of torch.nn.Module, scvi-tools' BaseModelClass and Lightning's
# LightningModule would bury them (and triple the build time).
templates_path = ["_templates"]
autodoc_typehints = "description"
napoleon_numpy_docstring = True
nb_execution_mode = "off"
html_theme = "sphinx_book_theme"
# Intersphinx fetches inventories over the network, which CI and offline builds do not
# have: it is off unless SGS_DOCS_INTERSPHINX=1 (e.g. on Read the Docs).
intersphinx_mapping = {}
if os.environ.get("SGS_DOCS_INTERSPHINX") == "1":
    intersphinx_mapping = {
        "anndata": ("https://anndata.readthedocs.io/en/stable/", None),
        "scanpy": ("https://scanpy.readthedocs.io/en/stable/", None),
        "scvi": ("https://docs.scvi-tools.org/en/stable/", None),
        "torch": ("https://pytorch.org/docs/stable/", None),
    }
exclude_patterns = ["_build", "notebooks/README.md", "**.ipynb_checkpoints"]


# Many docstrings write the Returns section as prose at the section's indentation. Napoleon
# reads each such line as a ``name : type`` field and splits it on its first colon, so the
# text comes out garbled. Before napoleon runs, such a section is rewritten in numpydoc's
# form: the return annotation as the type line, the prose indented under it.
_TYPE_LINE = re.compile(r"^[\w.]+(\[[\w., |\[\]]*\])?( \| [\w.\[\], ]+)*$")


def _prose_returns_to_numpydoc(app, what, name, obj, options, lines):
    for i in range(len(lines) - 1):
        if lines[i].strip() != "Returns" or set(lines[i + 1].strip()) != {"-"}:
            continue
        start = i + 2
        end = start
        while end < len(lines) and not (
            end + 1 < len(lines) and lines[end].strip() and set(lines[end + 1].strip()) == {"-"}
        ):
            end += 1
        body = lines[start:end]
        text = [line for line in body if line.strip()]
        if not text:
            return
        first = text[0]
        indented_after = len(text) > 1 and text[1].startswith((" ", "\t"))
        if " : " in first or indented_after or (len(text) == 1 and _TYPE_LINE.match(first)):
            return  # already ``name : type`` / ``type`` with an indented description
        try:
            annotation = inspect.signature(obj).return_annotation
        except (TypeError, ValueError):
            annotation = inspect.Signature.empty
        if annotation is inspect.Signature.empty:
            rtype = "object"
        elif isinstance(annotation, str):
            rtype = annotation
        else:
            rtype = inspect.formatannotation(annotation)
        lines[start:end] = [rtype] + [f"    {line}" if line.strip() else "" for line in body]
        return


_FOREIGN_KEPT = {"save"}  # scvi-tools' BaseModelClass.save is part of every model's interface


def _skip_foreign_member(app, what, name, obj, skip, options):
    """Skip methods and properties that scgensynth does not define (torch, scvi, Lightning)."""
    func = obj.fget if isinstance(obj, property) else getattr(obj, "__func__", obj)
    if not callable(func) or isinstance(func, type):
        return None
    module = getattr(func, "__module__", None) or ""
    if module.startswith("scgensynth") or name in _FOREIGN_KEPT:
        return None
    return True


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_member)
    # priority < 500: before napoleon's own autodoc-process-docstring handler
    app.connect("autodoc-process-docstring", _prose_returns_to_numpydoc, priority=400)
