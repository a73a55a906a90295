"""Quality indicators of synthetic expression data.

Functions take AnnData (with ``layer``) or arrays, real first, synthetic second.
"""

from ._basic import (
    classifier_two_sample_auc,
    correlation_score,
    distance_to_closest_record,
    mean_correlation,
    nearest_centroid_agreement,
    precision_recall,
    reverse_validation,
)

__all__ = [
    "classifier_two_sample_auc",
    "correlation_score",
    "distance_to_closest_record",
    "mean_correlation",
    "nearest_centroid_agreement",
    "precision_recall",
    "reverse_validation",
]
