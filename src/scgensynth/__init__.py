"""scgensynth: conditional generative models for synthetic transcriptomics.

Submodules (``datasets``, ``metrics``, ``model``, ``pl``, ``pp``, ``tl``) are imported on
first access, so the command line starts without loading torch or scvi-tools.
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

try:
    __version__ = version("scgensynth")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

_logger = logging.getLogger("scgensynth")
if not _logger.handlers:
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("%(levelname)s [scgensynth] %(message)s"))
    _logger.addHandler(_handler)
    _logger.setLevel(logging.INFO)
    _logger.propagate = False

_SUBMODULES = ("datasets", "io", "metrics", "model", "module", "nn", "pl", "pp", "tl", "train")

if TYPE_CHECKING:
    from . import datasets, io, metrics, model, module, nn, pl, pp, tl, train


#: readers exposed at the top level, as ``sc.read_*``
_READERS = {"read_gmt": "io", "read_gtex": "io", "read_tcga": "io"}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _READERS:
        return getattr(importlib.import_module(f".{_READERS[name]}", __name__), name)
    msg = f"module 'scgensynth' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted([*globals(), *_SUBMODULES, *_READERS])


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
    "tl",
    "train",
]
