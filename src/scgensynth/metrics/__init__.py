"""Quality indicators of synthetic expression data.

Functions take AnnData (with ``layer``) or arrays, real first, synthetic second.
"""

from ._basic import (
    classifier_two_sample_auc,
    correlation_score,
    mean_correlation,
    nearest_centroid_agreement,
    reverse_validation,
)
from ._neighbors import (
    adversarial_accuracy,
    density_coverage,
    distance_to_closest_record,
    precision_recall,
)

__all__ = [
    "adversarial_accuracy",
    "classifier_two_sample_auc",
    "correlation_score",
    "density_coverage",
    "distance_to_closest_record",
    "mean_correlation",
    "nearest_centroid_agreement",
    "precision_recall",
    "reverse_validation",
]
