from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

if TYPE_CHECKING:
    pass

ArrayOrAnnData = Any


def _values(data: ArrayOrAnnData, layer: str | None = None) -> np.ndarray:
    if hasattr(data, "obs") and hasattr(data, "X"):
        X = data.X if layer is None else data.layers[layer]
    else:
        X = data
    if sparse.issparse(X):
        X = X.toarray()
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        msg = f"Expected a samples x genes matrix, got shape {X.shape}."
        raise ValueError(msg)
    if not np.isfinite(X).all():
        msg = "The matrix contains NaN or infinite values; metrics need finite values."
        raise ValueError(msg)
    return X


def _labels(data: ArrayOrAnnData, labels, name: str) -> np.ndarray:
    if isinstance(labels, str):
        if not hasattr(data, "obs"):
            msg = f"{name}: a column name needs AnnData input; pass an array of labels instead."
            raise TypeError(msg)
        if labels not in data.obs:
            msg = f"{name}: {labels!r} is not a column of .obs ({list(data.obs.columns)})."
            raise KeyError(msg)
        return np.asarray(data.obs[labels]).astype(str)
    return np.asarray(labels).astype(str)


def _same_genes(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[1] != b.shape[1]:
        msg = (
            "Real and synthetic data have different numbers of genes "
            f"({a.shape[1]} vs {b.shape[1]})."
        )
        raise ValueError(msg)


def _pca(real: np.ndarray, others: list[np.ndarray], n_components: int | None, seed: int):
    """Standardise on real, project real and others on real's PCA."""
    scaler = StandardScaler().fit(real)
    r = scaler.transform(real)
    o = [scaler.transform(x) for x in others]
    if n_components is None:
        return r, o
    q = min(n_components, r.shape[0] - 1, r.shape[1])
    pca = PCA(q, random_state=seed).fit(r)
    return pca.transform(r), [pca.transform(x) for x in o]


def precision_recall(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    *,
    k: int = 5,
    n_components: int | None = 50,
    layer: str | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) and their F1.

    A synthetic sample is *precise* if it falls inside the ``k``-NN ball of some real sample;
    a real sample is *recalled* if it falls inside the ``k``-NN ball of some synthetic sample.
    Computed in the PCA space of the standardised real data (``n_components=None``: the
    standardised gene space).

    Parameters
    ----------
    real, synth
        AnnData or samples x genes arrays.
    k
        Neighbourhood size.
    n_components
        PCA components (fitted on ``real``).
    layer
        AnnData layer to read.
    seed
        PCA random state.

    Returns
    -------
    ``{"precision", "recall", "f1"}``.

    Examples
    --------
    >>> sgs.metrics.precision_recall(real_test, synth, k=5)["f1"]
    """
    r, s = _values(real, layer), _values(synth, layer)
    _same_genes(r, s)
    r, (s,) = _pca(r, [s], n_components, seed)
    kr = min(k, r.shape[0] - 1)
    ks = min(k, s.shape[0] - 1)
    radius_r = NearestNeighbors(n_neighbors=kr + 1).fit(r).kneighbors(r)[0][:, -1]
    radius_s = NearestNeighbors(n_neighbors=ks + 1).fit(s).kneighbors(s)[0][:, -1]
    precision = _inside_any(s, r, radius_r)
    recall = _inside_any(r, s, radius_s)
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1}


def _inside_any(points: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> float:
    inside = np.zeros(points.shape[0], dtype=bool)
    for start in range(0, points.shape[0], 1024):
        p = points[start : start + 1024]
        d2 = (p**2).sum(1)[:, None] + (centres**2).sum(1)[None, :] - 2 * p @ centres.T
        inside[start : start + 1024] = (d2 <= radii[None, :] ** 2 + 1e-9).any(1)
    return float(inside.mean())


def _classifier(kind: str, seed: int):
    if kind != "logistic":
        msg = f"classifier must be 'logistic', not {kind!r}."
        raise ValueError(msg)
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))


def reverse_validation(
    train: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    test: ArrayOrAnnData,
    label_key: str,
    *,
    layer: str | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Train on synthetic, test on real (TSTR) beside train on real, test on real (TRTR).

    A logistic regression (standardised inputs) is trained on the synthetic samples and,
    separately, on the real training samples; both classify the held-out real samples.

    Returns
    -------
    ``tstr_accuracy``, ``tstr_f1`` (macro), ``trtr_accuracy``, ``trtr_f1`` and
    ``ratio`` = ``tstr_f1 / trtr_f1``.

    Examples
    --------
    >>> sgs.metrics.reverse_validation(train, synth, test, "tissue")["ratio"]
    """
    Xtr, Xs, Xte = _values(train, layer), _values(synth, layer), _values(test, layer)
    ytr = _labels(train, label_key, "train")
    ys = _labels(synth, label_key, "synth")
    yte = _labels(test, label_key, "test")
    out = {}
    for name, (X, y) in {"tstr": (Xs, ys), "trtr": (Xtr, ytr)}.items():
        if len(np.unique(y)) < 2:
            msg = f"{name}: the training samples have a single label; need at least two."
            raise ValueError(msg)
        clf = _classifier("logistic", seed).fit(X, y)
        pred = clf.predict(Xte)
        out[f"{name}_accuracy"] = float(accuracy_score(yte, pred))
        out[f"{name}_f1"] = float(f1_score(yte, pred, average="macro", zero_division=0))
    out["ratio"] = out["tstr_f1"] / out["trtr_f1"] if out["trtr_f1"] > 0 else float("nan")
    return out


def classifier_two_sample_auc(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    *,
    n_components: int | None = 50,
    n_splits: int = 5,
    layer: str | None = None,
    seed: int = 0,
) -> float:
    """Classifier two-sample test: cross-validated ROC AUC of telling real from synthetic.

    A logistic regression on the PCA projection (fitted on real) separates real from
    synthetic samples with ``n_splits``-fold cross-validation; 0.5 means indistinguishable,
    1 means perfectly separable. Classes are balanced by subsampling the larger set.

    Examples
    --------
    >>> sgs.metrics.classifier_two_sample_auc(real_test, synth)  # ~0.5 is best
    """
    r, s = _values(real, layer), _values(synth, layer)
    _same_genes(r, s)
    rng = np.random.default_rng(seed)
    n = min(len(r), len(s))
    r = r[rng.choice(len(r), n, replace=False)]
    s = s[rng.choice(len(s), n, replace=False)]
    r, (s,) = _pca(r, [s], n_components, seed)
    X = np.vstack([r, s])
    y = np.r_[np.zeros(n), np.ones(n)]
    scores = np.zeros(len(y))
    for tr, te in StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(X, y):
        clf = _classifier("logistic", seed).fit(X[tr], y[tr])
        scores[te] = clf.predict_proba(X[te])[:, 1]
    return float(roc_auc_score(y, scores))


def distance_to_closest_record(
    train: ArrayOrAnnData,
    holdout: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    *,
    n_components: int | None = 50,
    layer: str | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Distance to the closest training record, synthetic vs held-out real samples.

    ``ratio`` = median distance synthetic -> nearest training sample divided by median
    distance held-out real -> nearest training sample: about 1 is good, well below 1 means the
    generator copies training samples. Computed in the training data's PCA space.

    Examples
    --------
    >>> sgs.metrics.distance_to_closest_record(train, test, synth)["ratio"]
    """
    tr, ho, s = _values(train, layer), _values(holdout, layer), _values(synth, layer)
    _same_genes(tr, s)
    tr, (ho, s) = _pca(tr, [ho, s], n_components, seed)
    nn = NearestNeighbors(n_neighbors=1).fit(tr)
    d_s = nn.kneighbors(s)[0][:, 0]
    d_h = nn.kneighbors(ho)[0][:, 0]
    med_h = float(np.median(d_h))
    return {
        "synthetic_median": float(np.median(d_s)),
        "holdout_median": med_h,
        "ratio": float(np.median(d_s)) / med_h if med_h > 0 else float("nan"),
    }


def correlation_score(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    *,
    layer: str | None = None,
    max_genes: int | None = 2000,
) -> float:
    """Correlation of real and synthetic gene-gene correlation matrices.

    Pearson correlation between the upper triangles of both matrices, on the ``max_genes``
    most variable real genes.

    Examples
    --------
    >>> sgs.metrics.correlation_score(real_test, synth)
    """
    r, s = _values(real, layer), _values(synth, layer)
    _same_genes(r, s)
    keep = (r.std(0) > 0) & (s.std(0) > 0)
    r, s = r[:, keep], s[:, keep]
    if max_genes is not None and r.shape[1] > max_genes:
        top = np.argsort(r.var(0))[::-1][:max_genes]
        r, s = r[:, top], s[:, top]
    iu = np.triu_indices(r.shape[1], 1)
    a, b = np.corrcoef(r.T)[iu], np.corrcoef(s.T)[iu]
    return float(np.corrcoef(a, b)[0, 1])


def mean_correlation(
    real: ArrayOrAnnData, synth: ArrayOrAnnData, *, layer: str | None = None
) -> float:
    """Pearson correlation between per-gene means of real and synthetic samples."""
    r, s = _values(real, layer), _values(synth, layer)
    _same_genes(r, s)
    return float(np.corrcoef(r.mean(0), s.mean(0))[0, 1])


def nearest_centroid_agreement(
    real: ArrayOrAnnData,
    synth: ArrayOrAnnData,
    label_key: str,
    *,
    layer: str | None = None,
) -> float:
    """Share of synthetic samples whose nearest real class centroid is their own class.

    Centroids are class means of the real samples in the standardised gene space.

    Examples
    --------
    >>> sgs.metrics.mean_correlation(real_test, synth)

    Examples
    --------
    >>> sgs.metrics.nearest_centroid_agreement(real_test, synth, "tissue")
    """
    r, s = _values(real, layer), _values(synth, layer)
    _same_genes(r, s)
    yr, ys = _labels(real, label_key, "real"), _labels(synth, label_key, "synth")
    scaler = StandardScaler().fit(r)
    r, s = scaler.transform(r), scaler.transform(s)
    classes = np.unique(yr)
    centroids = np.stack([r[yr == c].mean(0) for c in classes])
    d2 = (s**2).sum(1)[:, None] + (centroids**2).sum(1)[None, :] - 2 * s @ centroids.T
    return float((classes[d2.argmin(1)] == ys).mean())
