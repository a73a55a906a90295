"""Metrics give their known values on real data with known answers."""

from __future__ import annotations

import numpy as np
import pytest

import scgensynth as sgs
from scgensynth import metrics


@pytest.fixture(scope="module")
def real():
    return sgs.datasets.gtex_tissues()


@pytest.fixture(scope="module")
def split(real):
    """Stratified 400 / 120 split of GTEx (tissue proportions kept)."""
    rng = np.random.default_rng(0)
    test_idx = np.concatenate(
        [
            rng.choice(np.flatnonzero(real.obs["tissue"] == t), 4, replace=False)
            for t in real.obs["tissue"].cat.categories
        ]
    )
    train_idx = np.setdiff1d(np.arange(real.n_obs), test_idx)
    return real[train_idx].copy(), real[test_idx].copy()


def _shifted(adata, by: float = 50.0):
    """The same samples moved far away (every gene + ``by``, about 20 gene SDs)."""
    out = adata.copy()
    out.X = out.X + by
    return out





def test_classifier_two_sample_auc_of_random_halves(real):
    perm = np.random.default_rng(1).permutation(real.n_obs)
    half = real.n_obs // 2
    auc = metrics.classifier_two_sample_auc(real[perm[:half]], real[perm[half:]])
    assert 0.35 <= auc <= 0.65


def test_classifier_two_sample_auc_of_shifted_data(real):
    assert metrics.classifier_two_sample_auc(real, _shifted(real, 5.0)) > 0.99




def test_reverse_validation_with_a_copy_of_train(split):
    train, test = split
    rv = metrics.reverse_validation(train, train.copy(), test, "tissue")
    assert rv["tstr_accuracy"] == rv["trtr_accuracy"]
    assert rv["tstr_f1"] == rv["trtr_f1"]
    assert rv["ratio"] == pytest.approx(1.0)
    assert rv["trtr_accuracy"] > 0.9  # tissues are easy to tell apart


def test_reverse_validation_with_shuffled_synthetic_labels(split):
    train, test = split
    synth = train.copy()
    synth.obs["tissue"] = np.random.default_rng(0).permutation(synth.obs["tissue"].to_numpy())
    rv = metrics.reverse_validation(train, synth, test, "tissue")
    assert rv["tstr_accuracy"] < 0.3
    assert rv["ratio"] < 0.3


def test_correlations_of_data_with_itself(real):
    assert metrics.mean_correlation(real, real) == pytest.approx(1.0)
    assert metrics.correlation_score(real, real) == pytest.approx(1.0)


def test_correlations_of_unrelated_data(real):
    rng = np.random.default_rng(0)
    noise = rng.normal(size=real.shape)
    assert abs(metrics.correlation_score(real, noise)) < 0.1
    assert abs(metrics.mean_correlation(real, noise)) < 0.3


def test_nearest_centroid_agreement(split, real):
    train, test = split
    assert metrics.nearest_centroid_agreement(real, real, "tissue") > 0.9
    assert metrics.nearest_centroid_agreement(train, test, "tissue") > 0.8
    shuffled = test.copy()
    shuffled.obs["tissue"] = np.random.default_rng(0).permutation(test.obs["tissue"].to_numpy())
    assert metrics.nearest_centroid_agreement(train, shuffled, "tissue") < 0.2


def test_metrics_refuse_mismatched_or_non_finite_input(real):
    X = np.asarray(real.X)
    with pytest.raises(ValueError, match=r"different numbers of genes \(467 vs 466\)"):
        metrics.precision_recall(X, X[:, 1:])
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite"):
        metrics.mean_correlation(X, bad)
    with pytest.raises(KeyError, match=r"'tisue' is not a column"):
        metrics.nearest_centroid_agreement(real, real, "tisue")
