"""Plots (scanpy conventions: ``ax``, ``show``, ``return_fig``; no files written)."""

from ._history import training_history
from ._perturbation import perturbation_heatmap
from ._ranking import ranked_genes

__all__ = ["perturbation_heatmap", "ranked_genes", "training_history"]
