"""Plots (scanpy conventions: ``ax``, ``show``, ``return_fig``; no files written)."""

from ._augmentation_curve import augmentation_curve
from ._correlation import correlation
from ._dotplot import marker_dotplot
from ._embedding import embedding
from ._history import training_history
from ._moments import gene_moments
from ._pca_variance import pca_variance
from ._perturbation import perturbation_heatmap
from ._precision_recall import precision_recall
from ._ranking import ranked_genes
from ._recall import recall_by_group
from ._reconstruction_error import reconstruction_error

__all__ = [
    "augmentation_curve",
    "correlation",
    "embedding",
    "gene_moments",
    "marker_dotplot",
    "pca_variance",
    "perturbation_heatmap",
    "precision_recall",
    "ranked_genes",
    "recall_by_group",
    "reconstruction_error",
    "training_history",
]
