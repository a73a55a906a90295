"""Simple conditional generators to compare the WGAN-GP against.

Each baseline follows the same two-call shape::

    gen = GaussianNoise().fit(X_train, labels_train)
    X_synth, labels_synth = gen.sample(n, rng)

``X_train`` is a samples x genes array (input scale), ``labels_train`` one label per sample;
``sample`` returns ``n`` synthetic samples on the input scale with their labels, the labels
resampled (with replacement) from the training labels, so class proportions are kept.
Nothing is clipped: on non-negative data (counts, RSEM) the Gaussian baselines can produce
negative values.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler


def _check(X, labels) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels)
    if X.ndim != 2 or labels.shape != (X.shape[0],):
        msg = (
            "Expected X (samples x genes) and one label per sample, got shapes "
            f"{X.shape} and {labels.shape}."
        )
        raise ValueError(msg)
    if not np.isfinite(X).all():
        msg = "X contains NaN or infinite values."
        raise ValueError(msg)
    return X, labels


class GaussianNoise:
    """Real training samples plus Gaussian noise.

    Rows are resampled from the training data and isotropic Gaussian noise of variance
    ``variance`` is added in the per-gene standardised space (each gene centred and scaled to
    unit variance on the training data), then mapped back to the input scale.

    Parameters
    ----------
    variance
        Noise variance in standardised units (0.1: a tenth of each gene's variance).
    """

    name = "gaussian_noise"

    def __init__(self, variance: float = 0.1):
        self.variance = float(variance)

    def fit(self, X, labels) -> GaussianNoise:
        """Store the standardised training samples and their labels."""
        X, labels = _check(X, labels)
        self.scaler_ = StandardScaler().fit(X)
        self.Z_ = self.scaler_.transform(X)
        self.labels_ = labels
        return self

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` noisy copies of randomly chosen training samples, with their labels."""
        rows = rng.integers(0, self.Z_.shape[0], size=int(n))
        noise = rng.normal(0.0, np.sqrt(self.variance), size=(len(rows), self.Z_.shape[1]))
        return self.scaler_.inverse_transform(self.Z_[rows] + noise), self.labels_[rows]


class ClassPCAGaussian:
    """A Gaussian per class in the PCA space of the standardised training data.

    The data are standardised per gene, projected on ``n_components`` principal components
    (``min(n_components, n_samples - 1, n_genes)``), and for each class a Gaussian (mean and
    covariance of its PC scores) is fitted. Sampled scores are mapped back through the PCA and
    the standardisation; variance outside the kept components is lost.

    A class with no more samples than components has a singular covariance (rank
    ``n_class - 1``); ``ridge`` times the pooled per-component variance is then added to its
    diagonal (a class of one sample gets only that term).

    Parameters
    ----------
    n_components
        Maximum number of principal components.
    ridge
        Diagonal regularisation for small classes, as a share of the pooled PC variances.
    """

    name = "class_pca_gaussian"

    def __init__(self, n_components: int = 50, ridge: float = 0.01):
        self.n_components = int(n_components)
        self.ridge = float(ridge)

    def fit(self, X, labels) -> ClassPCAGaussian:
        """Fit the standardisation, the PCA and one Gaussian per class."""
        X, labels = _check(X, labels)
        self.scaler_ = StandardScaler().fit(X)
        Z = self.scaler_.transform(X)
        q = max(1, min(self.n_components, X.shape[0] - 1, X.shape[1]))
        self.pca_ = PCA(q, random_state=0).fit(Z)
        scores = self.pca_.transform(Z)
        pooled = scores.var(axis=0)
        self.labels_ = labels
        self.classes_ = np.unique(labels)
        self.means_, self.factors_ = {}, {}
        for c in self.classes_:
            s = scores[labels == c]
            cov = np.cov(s, rowvar=False).reshape(q, q) if len(s) > 1 else np.zeros((q, q))
            if len(s) <= q:
                cov = cov + np.diag(self.ridge * pooled)
            w, V = np.linalg.eigh(cov)
            self.means_[c] = s.mean(axis=0)
            self.factors_[c] = V * np.sqrt(np.clip(w, 0.0, None))  # cov = F @ F.T
        return self

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` samples; labels resampled from the training labels."""
        labels = self.labels_[rng.integers(0, len(self.labels_), size=int(n))]
        q = self.pca_.n_components_
        scores = np.empty((len(labels), q))
        for c in np.unique(labels):
            idx = np.flatnonzero(labels == c)
            eps = rng.standard_normal((len(idx), q))
            scores[idx] = self.means_[c] + eps @ self.factors_[c].T
        X = self.scaler_.inverse_transform(self.pca_.inverse_transform(scores))
        return X, labels


class SMOTEInterpolation:
    """SMOTE-style interpolation between same-class neighbours.

    For each synthetic sample a training sample is drawn at random, then one of its ``k``
    nearest neighbours of the same class (Euclidean distance in the standardised gene space;
    ``k`` is reduced to ``n_class - 1`` for small classes), and a point drawn uniformly on the
    segment between them. A class of a single sample yields copies of it.

    Parameters
    ----------
    k
        Number of same-class neighbours to choose from.
    """

    name = "smote"

    def __init__(self, k: int = 5):
        self.k = int(k)

    def fit(self, X, labels) -> SMOTEInterpolation:
        """Find each training sample's ``k`` nearest same-class neighbours."""
        X, labels = _check(X, labels)
        Z = StandardScaler().fit_transform(X)
        n = X.shape[0]
        self.X_ = X
        self.labels_ = labels
        self.neighbours_ = np.tile(np.arange(n)[:, None], (1, max(1, self.k)))
        self.n_neighbours_ = np.zeros(n, dtype=int)
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)
            k = min(self.k, len(members) - 1)
            if k < 1:
                continue
            nn = NearestNeighbors(n_neighbors=k + 1).fit(Z[members])
            idx = nn.kneighbors(Z[members], return_distance=False)
            # drop each point itself (usually column 0, but not if there are duplicates)
            for row, point in zip(idx, members):
                others = members[row[members[row] != point]][:k]
                self.neighbours_[point, :k] = others
                self.n_neighbours_[point] = k
        return self

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` interpolated samples with the label of their anchor sample."""
        n = int(n)
        anchors = rng.integers(0, self.X_.shape[0], size=n)
        k = self.n_neighbours_[anchors]
        pick = np.minimum((rng.random(n) * k).astype(int), np.maximum(k - 1, 0))
        partners = self.neighbours_[anchors, pick]
        lam = rng.random(n)[:, None]
        X = self.X_[anchors] + lam * (self.X_[partners] - self.X_[anchors])
        return X, self.labels_[anchors]


BASELINES = {cls.name: cls for cls in (GaussianNoise, ClassPCAGaussian, SMOTEInterpolation)}
