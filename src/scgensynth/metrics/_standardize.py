"""Standardization with one set's statistics, and the PCA of standardized data.

The classifiers, the classifier two-sample test, the nearest centroids and the Fréchet
distance all standardize their inputs with the mean and standard deviation of a reference set
(the training set, or the real samples) and apply them to other sets, a block of rows at a
time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sklearn.decomposition import PCA

#: rows standardized at once (bounds the memory of large inputs)
_CHUNK = 4096


def standardization(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation (ddof=0); zero-variance features get 1."""
    mean = X.mean(0, dtype=np.float64)
    std = X.std(0, dtype=np.float64)
    std[std <= 1e-12 * np.maximum(1.0, np.abs(mean))] = 1.0
    return mean, std


def apply_standardization(
    X: np.ndarray, mean: np.ndarray, std: np.ndarray, dtype: type = np.float64
) -> np.ndarray:
    """``(X - mean) / std`` in ``dtype``, computed in float64 a block of rows at a time."""
    out = np.empty(X.shape, dtype=dtype)
    for start in range(0, X.shape[0], _CHUNK):
        block = np.asarray(X[start : start + _CHUNK], dtype=np.float64)
        out[start : start + _CHUNK] = (block - mean) / std
    return out


def fit_standardized_pca(
    fit: np.ndarray, n_components: int | None, seed: int
) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """Standardize on ``fit`` and fit its PCA: ``fit`` embedded, and the row-wise map.

    ``n_components=None`` keeps the standardized feature space. The number of components is
    capped at ``min(n_fit - 1, n_features)``.
    """
    mean, std = standardization(fit)
    r = apply_standardization(fit, mean, std)
    if n_components is None:
        return r, lambda x: apply_standardization(x, mean, std)
    if not isinstance(n_components, int | np.integer) or n_components < 1:
        msg = f"n_components must be a positive integer or None, got {n_components!r}."
        raise ValueError(msg)
    q = min(int(n_components), r.shape[0] - 1, r.shape[1])
    if q < 1:
        msg = f"real has {r.shape[0]} samples: a PCA needs at least 2."
        raise ValueError(msg)
    pca = PCA(q, random_state=seed).fit(r)
    return pca.transform(r), lambda x: pca.transform(apply_standardization(x, mean, std))


def standardized_pca(
    fit: np.ndarray, others: Sequence[np.ndarray], n_components: int | None, seed: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Standardize on ``fit``, then project ``fit`` and ``others`` on ``fit``'s PCA."""
    r, embed = fit_standardized_pca(fit, n_components, seed)
    return r, [embed(x) for x in others]


__all__ = [
    "apply_standardization",
    "fit_standardized_pca",
    "standardization",
    "standardized_pca",
]
