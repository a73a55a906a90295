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


class ClassLedoitWolfGaussian:
    """A multivariate Gaussian per class, Ledoit-Wolf covariance, in the standardised gene space.

    The data are standardised per gene on all training samples (zero-variance genes keep scale
    1). For each class the covariance of its samples is shrunk towards a scaled identity with
    the Ledoit-Wolf intensity (the estimate of ``sklearn.covariance.LedoitWolf``), without ever
    forming the genes x genes matrix, which at 20,000 genes would take 3.2 GB.

    Derivation, for one class of ``n`` standardised samples ``Z`` (``n x p``) with mean ``m``
    and centred rows ``C = Z - m``:

    - sample covariance (maximum likelihood, as scikit-learn): ``S = C.T @ C / n``;
    - target scale: ``mu = tr(S) / p = ||C||_F^2 / (n p)``;
    - ``||S||_F^2 = tr((C.T C)^2) / n^2 = ||C C.T||_F^2 / n^2``: an ``n x n`` Gram matrix;
    - scikit-learn's ``beta_ = sum(X2.T @ X2)`` (``X2 = C**2``) is ``sum_k r_k^2`` with
      ``r_k = ||c_k||^2`` the squared norm of row ``k``;
    - ``beta = (beta_ / n - ||S||_F^2) / (p n)``, ``delta = (||S||_F^2 - p mu^2) / p``
      (``= ||S - mu I||_F^2 / p``), and the shrinkage ``a = min(beta, delta) / delta``;
    - shrunk covariance ``Sigma = (1 - a) S + a mu I``.

    Sampling uses that representation: with ``z ~ N(0, I_n)`` and ``e ~ N(0, I_p)`` independent,
    ``x = m + sqrt((1 - a) / n) C.T z + sqrt(a mu) e`` has covariance
    ``(1 - a) C.T C / n + a mu I = Sigma`` exactly. Fitting costs ``O(n^2 p)`` time and keeps
    ``C`` (``O(n p)`` memory); each sample costs ``O(n p)``. A class of one sample (``C = 0``)
    yields copies of it.

    Labels are resampled from the training labels, as for the other baselines.
    """

    name = "class_ledoit_wolf_gaussian"

    def fit(self, X, labels) -> ClassLedoitWolfGaussian:
        """Fit the standardisation and one shrunk Gaussian per class."""
        X, labels = _check(X, labels)
        self.scaler_ = StandardScaler().fit(X)
        Z = self.scaler_.transform(X)
        self.labels_ = labels
        self.classes_ = np.unique(labels)
        self.means_, self.centred_, self.shrinkage_, self.mu_ = {}, {}, {}, {}
        for c in self.classes_:
            members = Z[labels == c]
            mean = members.mean(axis=0)
            centred = members - mean
            self.means_[c] = mean
            self.centred_[c] = centred
            self.shrinkage_[c], self.mu_[c] = ledoit_wolf_from_centred(centred)
        return self

    def covariance(self, c) -> np.ndarray:
        """The shrunk covariance of class ``c`` as a dense ``p x p`` matrix (small ``p`` only)."""
        C, a, mu = self.centred_[c], self.shrinkage_[c], self.mu_[c]
        return (1.0 - a) * (C.T @ C) / len(C) + a * mu * np.eye(C.shape[1])

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` samples; labels resampled from the training labels."""
        labels = self.labels_[rng.integers(0, len(self.labels_), size=int(n))]
        p = self.scaler_.n_features_in_
        Z = np.empty((len(labels), p))
        for c in np.unique(labels):
            idx = np.flatnonzero(labels == c)
            C, a, mu = self.centred_[c], self.shrinkage_[c], self.mu_[c]
            z = rng.standard_normal((len(idx), len(C)))
            eps = rng.standard_normal((len(idx), p))
            Z[idx] = self.means_[c] + np.sqrt((1.0 - a) / len(C)) * (z @ C) + np.sqrt(a * mu) * eps
        return self.scaler_.inverse_transform(Z), labels


def ledoit_wolf_from_centred(C: np.ndarray) -> tuple[float, float]:
    """Ledoit-Wolf shrinkage ``a`` and target scale ``mu`` of centred rows ``C`` (``n x p``).

    The same numbers as ``sklearn.covariance.ledoit_wolf_shrinkage(C, assume_centered=True)``
    and ``np.trace(C.T @ C / n) / p``, from ``n x n`` products only (see
    :class:`ClassLedoitWolfGaussian`).
    """
    n, p = C.shape
    row_sq = np.einsum("ij,ij->i", C, C)  # ||c_k||^2
    mu = float(row_sq.sum() / (n * p))
    gram = C @ C.T
    s_frob2 = float(np.einsum("ij,ij->", gram, gram)) / n**2  # ||S||_F^2
    beta = (float((row_sq**2).sum()) / n - s_frob2) / (p * n)
    delta = (s_frob2 - p * mu**2) / p
    if p == 1 or delta <= 0:  # one gene, or S already proportional to I (e.g. C = 0)
        return 0.0, mu
    beta = min(beta, delta)
    return (0.0 if beta == 0 else beta / delta), mu


# the three of bench_quality.py; ClassLedoitWolfGaussian is used by bench_leaderboard.py
BASELINES = {cls.name: cls for cls in (GaussianNoise, ClassPCAGaussian, SMOTEInterpolation)}
