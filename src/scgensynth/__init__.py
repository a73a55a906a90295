"""scgensynth: conditional generative models for synthetic transcriptomics.

Submodules (``datasets``, ``metrics``, ``model``, ``pl``, ``pp``, ``tl``) are imported on
first access, so the command line starts without loading torch or scvi-tools;
``sgs.settings`` (the verbosity of the log) likewise.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

try:
    __version__ = version("scgensynth")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

# Logging: the 'scgensynth' logger propagates to the root logger and gets no handler here;
# ``sgs.settings.verbosity`` sets its level (see scgensynth/_utils/_logging.py).

_SUBMODULES = ("datasets", "io", "metrics", "model", "module", "nn", "pl", "pp", "tl", "train")

if TYPE_CHECKING:
    from . import datasets, io, metrics, model, module, nn, pl, pp, tl, train
    from ._settings import settings


#: readers exposed at the top level, as ``sc.read_*``
_READERS = {
    "read_gmt": "io",
    "read_gtex": "io",
    "read_tcga": "io",
    "read_tcga_star": "io",
    "read_tcga_xena": "io",
}


def _import_tqdm_quietly() -> None:
    """Import ``tqdm.auto`` (scvi-tools does at import) without its notebook warning.

    In a Jupyter kernel without ipywidgets, ``tqdm.auto`` warns "IProgress not found" when
    imported; scgensynth's progress bars are plain text and need no widget, so the warning
    says nothing to our users. Imported here first, scvi-tools finds it imported.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        importlib.import_module("tqdm.auto")


def __getattr__(name: str):
    if name == "settings":
        return importlib.import_module("._settings", __name__).settings
    if name in _SUBMODULES:
        if name not in ("datasets", "io", "pp"):  # these stay light: no scvi-tools
            _import_tqdm_quietly()
        return importlib.import_module(f".{name}", __name__)
    if name in _READERS:
        return getattr(importlib.import_module(f".{_READERS[name]}", __name__), name)
    msg = f"module 'scgensynth' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted([*globals(), *_SUBMODULES, *_READERS, "settings"])


__all__ = [
    "__version__",
    "datasets",
    "io",
    "metrics",
    "model",
    "module",
    "nn",
    "pl",
    "pp",
    "read_gmt",
    "read_gtex",
    "read_tcga",
    "read_tcga_star",
    "read_tcga_xena",
    "settings",
    "tl",
    "train",
]
