"""Plots (scanpy conventions: ``ax``, ``show``, ``return_fig``; no files written)."""

from ._history import training_history

__all__ = ["training_history"]
