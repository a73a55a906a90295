"""scgensynth: conditional generative models for synthetic transcriptomics."""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version

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

from . import datasets, metrics, model, pl, pp, tl  # noqa: E402

__all__ = ["__version__", "datasets", "metrics", "model", "pl", "pp", "tl"]
