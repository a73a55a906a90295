"""Fixtures shared by the model tests."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

import scgensynth as sgs


@pytest.fixture(scope="module")
def gtex_split():
    """The bundled GTEx set split 70/30, stratified by tissue (seed 0), rows in input order."""
    adata = sgs.datasets.gtex_tissues()
    idx_train, idx_test = train_test_split(
        np.arange(adata.n_obs), test_size=0.3, stratify=adata.obs["tissue"], random_state=0
    )
    return adata[np.sort(idx_train)].copy(), adata[np.sort(idx_test)].copy()


def _check_walk(walk, classifier, reference, start, end):
    """Endpoints are labelled as their tissue; steps move monotonically between centroids.

    ``walk`` is ``sgs.tl.interpolate(..., steps=5)``; ``classifier`` was trained on real
    samples; the centroids are those of ``reference``'s tissues.
    """
    lam = walk.obs["sgs_lambda"].to_numpy()
    assert sorted(set(lam)) == [0.0, 0.25, 0.5, 0.75, 1.0]
    pred = classifier.predict(walk.X)
    assert (pred[lam == 0] == start).mean() >= 0.8, (pred[lam == 0] == start).mean()
    assert (pred[lam == 1] == end).mean() >= 0.8, (pred[lam == 1] == end).mean()
    X = np.asarray(reference.X, dtype=float)
    labels = reference.obs["tissue"].to_numpy()
    c0, c1 = X[labels == start].mean(0), X[labels == end].mean(0)
    position = (np.asarray(walk.X) - c0) @ (c1 - c0) / ((c1 - c0) @ (c1 - c0))
    means = [position[lam == v].mean() for v in sorted(set(lam))]
    assert np.all(np.diff(means) > 0), means
    assert means[0] < 0.25, means
    assert means[-1] > 0.75, means


@pytest.fixture
def check_walk():
    """``check_walk(walk, real_classifier, reference, start, end)``: see :func:`_check_walk`."""
    return _check_walk


@pytest.fixture(scope="module")
def real_classifier(gtex_split):
    """Logistic regression trained on the real training part (accuracy > 0.9 on the rest)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, test = gtex_split
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(train.X, train.obs["tissue"].astype(str))
    assert (clf.predict(test.X) == test.obs["tissue"].astype(str)).mean() > 0.9
    return clf
