"""Quality indicators of synthetic expression data.

Every function takes the real data first and the synthetic data second, as AnnData (genes
matched by ``var_names``; ``layer=`` / ``obsm=`` choose what is read) or as samples x genes
arrays, and never modifies them unless a parameter asks it to write a result.
:func:`evaluate` runs them all as one tidy report; :func:`available` lists them.
"""

from ._classifier import (
    augmentation_gain,
    classifier_two_sample_auc,
    label_preservation,
    nearest_centroid_agreement,
    reverse_validation,
)
from ._correlation import (
    correlation_matrices,
    correlation_score,
    gene_cluster_agreement,
    mean_correlation,
    s_dend,
    s_dist,
    s_tf_tg,
    s_tg_tg,
)
from ._evaluate import available, evaluate
from ._frechet import frechet_distance, frechet_distance_from_stats
from ._neighbors import (
    adversarial_accuracy,
    density_coverage,
    distance_to_closest_record,
    precision_recall,
)
from ._pca import pca_variance, reconstruction_error
from ._privacy import PrivacyReport, membership_inference, privacy_report

__all__ = [
    "PrivacyReport",
    "adversarial_accuracy",
    "augmentation_gain",
    "available",
    "classifier_two_sample_auc",
    "correlation_matrices",
    "correlation_score",
    "density_coverage",
    "distance_to_closest_record",
    "evaluate",
    "frechet_distance",
    "frechet_distance_from_stats",
    "gene_cluster_agreement",
    "label_preservation",
    "mean_correlation",
    "membership_inference",
    "nearest_centroid_agreement",
    "pca_variance",
    "precision_recall",
    "privacy_report",
    "reconstruction_error",
    "reverse_validation",
    "s_dend",
    "s_dist",
    "s_tf_tg",
    "s_tg_tg",
]
