"""Classifier-based metrics: TSTR/TRTS, augmentation gain, two-sample AUC, centroids."""

from __future__ import annotations

import doctest
import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import f1_score

import scgensynth as sgs
from scgensynth.metrics import (
    _classifier,
    _mlp,
    augmentation_gain,
    classifier_two_sample_auc,
    label_preservation,
    nearest_centroid_agreement,
    reverse_validation,
)
from scgensynth.metrics._classifier import _stratified_draw, fit_classifier

CHANCE = 1 / 26  # GTEx: 26 tissues, 20 samples each


# -- data -----------------------------------------------------------------------------------------


def _per_tissue(adata, k: int, rng) -> np.ndarray:
    tissue = adata.obs["tissue"]
    return np.concatenate(
        [rng.choice(np.flatnonzero(tissue == t), k, replace=False) for t in tissue.cat.categories]
    )


def shuffle_genes(adata: ad.AnnData, seed: int = 0) -> ad.AnnData:
    """Each gene's column permuted independently: marginals kept, structure and labels lost."""
    out = adata.copy()
    rng = np.random.default_rng(seed)
    X = np.asarray(out.X).copy()
    for j in range(X.shape[1]):
        X[:, j] = X[rng.permutation(X.shape[0]), j]
    out.X = X
    return out


def permuted(adata: ad.AnnData, seed: int) -> ad.AnnData:
    return adata[np.random.default_rng(seed).permutation(adata.n_obs)].copy()


def toy(centres, n_per_class: int, seed: int, *, spread: float = 0.3, genes=None):
    """Classes as tight Gaussian blobs around ``centres`` ({label: coordinates})."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(list(centres), n_per_class)
    X = np.vstack(
        [rng.normal(centres[c], spread, (n_per_class, len(centres[c]))) for c in centres]
    )
    var = pd.DataFrame(index=genes or [f"g{i}" for i in range(X.shape[1])])
    obs = pd.DataFrame({"label": labels}, index=[f"s{i}" for i in range(len(labels))])
    return ad.AnnData(X, obs=obs, var=var)


# -- the trainer ----------------------------------------------------------------------------------
def test_fit_classifier_is_seeded_and_leaves_global_rng_alone(split):
    train, test = split
    X, y = np.asarray(train.X), train.obs["tissue"].to_numpy()
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()  # noqa: NPY002
    kw = {"hidden": (32,), "lr": 1e-3, "epochs": 3}
    a = fit_classifier(X, y, seed=1, **kw).predict_proba(test.X)
    b = fit_classifier(X, y, seed=1, **kw).predict_proba(test.X)
    c = fit_classifier(X, y, seed=2, **kw).predict_proba(test.X)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state[1])  # noqa: NPY002
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3
    np.testing.assert_allclose(a.sum(1), 1.0, rtol=1e-6)


def test_fit_classifier_ignores_sample_order(split):
    train, test = split
    X, y = np.asarray(train.X), train.obs["tissue"].to_numpy()
    perm = np.random.default_rng(3).permutation(len(y))
    for kind in ("mlp", "logistic"):
        kw = {"kind": kind, "hidden": (32,), "lr": 1e-3, "epochs": 3}
        a = fit_classifier(X, y, **kw).predict_proba(test.X)
        b = fit_classifier(X[perm], y[perm], **kw).predict_proba(test.X)
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_fit_classifier_standardises_predicts_in_chunks_and_embeds(monkeypatch):
    rng = np.random.default_rng(0)
    y = np.repeat(["a", "b", "c"], 20)
    X = rng.normal(size=(60, 4)) + 5 * np.c_[y == "a", y == "b", np.zeros(60), np.zeros(60)]
    X[:, 3] = 7.0  # a zero-variance gene must not produce NaN
    clf = fit_classifier(X, y, hidden=(16, 8), lr=1e-2, epochs=30)
    assert clf.classes_.tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(clf.mean_[:3], X[:, :3].mean(0))
    assert clf.scale_[3] == 1.0
    assert (clf.predict(X) == y).mean() == 1.0
    proba, emb = clf.predict_proba(X), clf.embed(X)
    assert emb.shape == (60, 8)
    assert (emb >= 0).all()
    monkeypatch.setattr(_mlp, "_CHUNK", 7)
    np.testing.assert_allclose(clf.predict_proba(X), proba, rtol=1e-6)
    np.testing.assert_allclose(clf.embed(X), emb, rtol=1e-6)
    logistic = fit_classifier(X, y, kind="logistic")
    assert (logistic.predict(X) == y).mean() == 1.0
    with pytest.raises(ValueError, match="needs an MLP"):
        logistic.embed(X)
    with pytest.raises(ValueError, match="kind must be one of"):
        fit_classifier(X, y, kind="forest")
    with pytest.raises(ValueError, match=r"samples x 4 matrix"):
        clf.predict(X[:, :3])


# -- reverse validation (TSTR) --------------------------------------------------------------------
def test_reverse_validation_hand_computed_with_an_unseen_label():
    synth = toy({"A": [0.0, 0.0], "B": [10.0, 10.0]}, 10, seed=0)
    # real: 2 A, 2 B and a sample of class C (absent from synth) lying on A
    real = toy({"A": [0.0, 0.0], "B": [10.0, 10.0], "C": [0.0, 0.0]}, 2, seed=1)
    real = real[:5].copy()
    for classifier in ("logistic", "mlp"):
        rv = reverse_validation(real, synth, "label", classifier=classifier, lr=1e-2)
        # the C sample is predicted A: accuracy 4/5; F1: A 2*(2/3*1)/(2/3+1) = 0.8, B 1, C 0
        assert rv["accuracy"] == pytest.approx(4 / 5)
        assert rv["macro_f1"] == pytest.approx((0.8 + 1 + 0) / 3)


def test_reverse_validation_mlp_on_gtex(split):
    train, test = split
    good = reverse_validation(test, train, "tissue")  # the survey's MLP protocol
    bad = reverse_validation(test, shuffle_genes(train), "tissue")
    assert good["accuracy"] > 0.9
    assert good["macro_f1"] > 0.9
    assert bad["accuracy"] < 3 * CHANCE
    assert good["accuracy"] - bad["accuracy"] > 0.8


def test_reverse_validation_reference_ratio(split):
    train, test = split
    rv = reverse_validation(test, train, "tissue", reference=train.copy(), classifier="logistic")
    assert rv["accuracy"] == rv["reference_accuracy"] > 0.9
    assert rv["ratio"] == pytest.approx(1.0)
    shuffled = reverse_validation(
        test, shuffle_genes(train), "tissue", reference=train, classifier="logistic"
    )
    assert shuffled["reference_accuracy"] == rv["reference_accuracy"]
    assert shuffled["ratio"] < 0.2
    # identical training and test sets: the ideal score
    same = reverse_validation(train, train, "tissue", classifier="logistic")
    assert same == {"accuracy": 1.0, "macro_f1": 1.0}


def test_reverse_validation_ignores_sample_order(split):
    train, test = split
    kw = {"epochs": 3, "reference": train}
    a = reverse_validation(test, train, "tissue", **kw)
    b = reverse_validation(permuted(test, 1), permuted(train, 2), "tissue", **kw)
    assert b == pytest.approx(a, abs=1e-9)


# -- label preservation (TRTS) --------------------------------------------------------------------
def test_label_preservation_hand_computed():
    real = toy({"A": [0.0, 0.0], "B": [10.0, 10.0]}, 10, seed=0)
    synth = toy({"A": [0.0, 0.0], "B": [10.0, 10.0]}, 3, seed=1)
    labels = np.array(["A", "A", "B", "B", "B", "C"])  # 1 A labelled B, 1 B labelled C
    synth.obs["label"] = labels
    for classifier in ("logistic", "mlp"):
        lp = label_preservation(real, synth, "label", classifier=classifier, lr=1e-2)
        predicted = np.array(["A"] * 3 + ["B"] * 3)
        assert lp["accuracy"] == pytest.approx(4 / 6)
        expected_f1 = f1_score(labels, predicted, average="macro", zero_division=0)
        assert lp["macro_f1"] == pytest.approx(expected_f1)
        # by hand: A (P 1, R 2/3) 0.8; B (P 2/3, R 2/3) 2/3; C 0
        assert expected_f1 == pytest.approx((0.8 + 2 / 3 + 0) / 3)


def test_label_preservation_on_gtex(split):
    train, test = split
    good = label_preservation(train, test, "tissue", classifier="logistic")
    bad = label_preservation(train, shuffle_genes(test), "tissue", classifier="logistic")
    assert good["accuracy"] > 0.9
    assert bad["accuracy"] < 3 * CHANCE
    mlp = label_preservation(train, test, "tissue", epochs=10)
    assert mlp["accuracy"] > 0.85
    assert label_preservation(train, train, "tissue", classifier="logistic")["accuracy"] == 1.0
    # order of either set does not matter
    permuted_ = label_preservation(permuted(train, 1), permuted(test, 2), "tissue", epochs=10)
    assert permuted_ == pytest.approx(mlp, abs=1e-9)


# -- augmentation gain ----------------------------------------------------------------------------
def test_stratified_draw_allocation_by_hand():
    labels = np.repeat(["a", "b", "c"], [10, 6, 4])
    rng = np.random.default_rng(0)
    counts = lambda idx: pd.Series(labels[idx]).value_counts().to_dict()  # noqa: E731
    assert counts(_stratified_draw(labels, 10, rng)) == {"a": 5, "b": 3, "c": 2}
    assert counts(_stratified_draw(labels, 3, rng)) == {"a": 1, "b": 1, "c": 1}
    idx = _stratified_draw(labels, 4, rng)  # 2, 1.2, 0.8 -> 2, 1, 1
    assert counts(idx) == {"a": 2, "b": 1, "c": 1}
    assert len(set(idx)) == 4
    assert counts(_stratified_draw(labels, 1, rng)) == {"a": 1}
    np.testing.assert_array_equal(_stratified_draw(labels, 20, rng), np.arange(20))
    # equal classes, fewer draws than classes: which classes are left out is random
    equal = np.repeat(list("abcdef"), 3)
    drawn = [set(equal[_stratified_draw(equal, 4, np.random.default_rng(s))]) for s in range(20)]
    assert all(len(d) == 4 for d in drawn)
    assert set().union(*drawn) == set("abcdef")
    assert len({frozenset(d) for d in drawn}) > 3


@pytest.fixture(scope="module")
def aug_sets(gtex):
    """GTEx: real_train 8 per tissue, extra 8 per tissue (genuine 'synthetic'), test 4."""
    rng = np.random.default_rng(0)
    test_idx = _per_tissue(gtex, 4, rng)
    rest = gtex[np.setdiff1d(np.arange(gtex.n_obs), test_idx)]
    train_idx = _per_tissue(rest, 8, rng)
    extra = rest[np.setdiff1d(np.arange(rest.n_obs), train_idx)].copy()
    return rest[train_idx].copy(), gtex[test_idx].copy(), extra


AUG = {"n_real": (20,), "n_synth": (0, 100), "seeds": 2, "epochs": 15}


def test_augmentation_gain_with_genuine_and_label_shuffled_samples(aug_sets, snapshot):
    real_train, real_test, extra = aug_sets
    before = [snapshot(a) for a in aug_sets]
    table = augmentation_gain(real_train, real_test, extra, "tissue", **AUG)
    for s, a in zip(before, aug_sets):
        s.assert_unchanged(a)
    assert list(table.columns) == [
        "n_real",
        "n_synth",
        "accuracy_mean",
        "accuracy_std",
        "delta_mean",
        "delta_std",
        "n_seeds",
    ]
    assert table[["n_real", "n_synth", "n_seeds"]].values.tolist() == [[20, 0, 2], [20, 100, 2]]
    zero, added = table.iloc[0], table.iloc[1]
    assert zero["delta_mean"] == 0.0
    assert zero["delta_std"] == 0.0
    assert zero["accuracy_mean"] < 0.7  # 20 samples for 26 tissues: many classes never seen
    assert added["delta_mean"] > 0.2
    assert added["accuracy_mean"] == pytest.approx(zero["accuracy_mean"] + added["delta_mean"])

    noise = extra.copy()
    noise.obs["tissue"] = np.random.default_rng(0).permutation(noise.obs["tissue"].to_numpy())
    hurt = augmentation_gain(real_train, real_test, noise, "tissue", **AUG)
    assert hurt.iloc[0]["accuracy_mean"] == zero["accuracy_mean"]  # same real draws and seeds
    assert hurt.iloc[1]["delta_mean"] < -0.1


def test_augmentation_gain_ideal_hand_case_and_order():
    centres = {"A": [0.0, 0.0, 0.0], "B": [6.0, 6.0, 6.0]}
    train, test, synth = toy(centres, 10, 0), toy(centres, 15, 1), toy(centres, 20, 2)
    kw = {"n_real": (2, 10), "n_synth": (0, 5, 40), "seeds": 3, "epochs": 10}
    table = augmentation_gain(train, test, synth, "label", **kw)
    # well separated classes: 1 sample per class is enough, so every accuracy is 1, every gain 0
    assert table["accuracy_mean"].tolist() == [1.0] * 6
    assert table["delta_mean"].tolist() == [0.0] * 6
    assert table["n_seeds"].tolist() == [3] * 6
    again = augmentation_gain(
        permuted(train, 1), permuted(test, 2), permuted(synth, 3), "label", **kw
    )
    pd.testing.assert_frame_equal(table, again)


def test_augmentation_gain_order_invariance_on_gtex(aug_sets):
    real_train, real_test, extra = aug_sets
    kw = {"n_real": (26,), "n_synth": (50,), "seeds": 1, "epochs": 5}
    a = augmentation_gain(real_train, real_test, extra, "tissue", **kw)
    b = augmentation_gain(permuted(real_train, 1), real_test, permuted(extra, 2), "tissue", **kw)
    pd.testing.assert_frame_equal(a, b)
    assert np.isnan(a["accuracy_std"].iloc[0])  # a single seed has no spread


def test_augmentation_gain_errors_and_unseen_test_labels():
    centres = {"A": [0.0, 0.0], "B": [6.0, 6.0]}
    train, synth = toy(centres, 10, 0), toy(centres, 5, 2)
    test = toy({**centres, "C": [0.0, 0.0]}, 5, 1)  # C never appears in training
    table = augmentation_gain(train, test, synth, "label", n_real=(4,), n_synth=(0,), seeds=1)
    assert table["accuracy_mean"].iloc[0] == pytest.approx(10 / 15)  # the 5 C samples are wrong
    with pytest.raises(ValueError, match=r"n_real=30 is larger than real_train \(20 samples\)"):
        augmentation_gain(train, test, synth, "label", n_real=(4, 30), n_synth=(0,))
    with pytest.raises(ValueError, match=r"n_synth=50 .* \(10 samples\): generate more"):
        augmentation_gain(train, test, synth, "label", n_real=(4,), n_synth=(0, 50))
    with pytest.raises(ValueError, match="n_real must be positive integers"):
        augmentation_gain(train, test, synth, "label", n_real=(0,))
    with pytest.raises(ValueError, match="seeds must be"):
        augmentation_gain(train, test, synth, "label", n_real=(4,), n_synth=(0,), seeds=0)


def test_augmentation_gain_logs_progress_every_10_fits(sgs_logs):
    centres = {"A": [0.0, 0.0], "B": [6.0, 6.0]}
    train, test, synth = toy(centres, 10, 0), toy(centres, 5, 1), toy(centres, 10, 2)
    kw = {"n_real": (2, 4), "n_synth": (0, 5, 10), "seeds": 4, "classifier": "logistic"}
    with sgs_logs() as logs:
        augmentation_gain(train, test, synth, "label", **kw)
    progress = [
        r.getMessage()
        for r in logs
        if r.levelno == logging.INFO and r.getMessage().endswith(" fits")
    ]
    # 2 n_real x 4 seeds x (1 real-only + 2 augmented) = 24 fits
    assert progress == [
        "augmentation_gain: 10/24 fits",
        "augmentation_gain: 20/24 fits",
        "augmentation_gain: 24/24 fits",
    ]


# -- classifier two-sample AUC (ported from test_basic.py) ----------------------------------------
def test_classifier_two_sample_auc_of_random_halves(gtex):
    perm = np.random.default_rng(1).permutation(gtex.n_obs)
    half = gtex.n_obs // 2
    auc = classifier_two_sample_auc(gtex[perm[:half]], gtex[perm[half:]])
    assert 0.35 <= auc <= 0.65


def test_classifier_two_sample_auc_of_shifted_data(gtex):
    shifted = gtex.copy()
    shifted.X = shifted.X + 5.0
    assert classifier_two_sample_auc(gtex, shifted) > 0.99


def test_classifier_two_sample_auc_hand_cases():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 3))
    # disjoint supports along gene 0: every synthetic sample scores above every real one
    assert classifier_two_sample_auc(a, a + np.array([10.0, 0, 0]), n_components=None) == 1.0
    # identical sets: indistinguishable. Cross-validation biases the AUC of exact twins
    # downwards (a held-out sample's twin trains the other class), so it is not 0.5 exactly.
    same = classifier_two_sample_auc(a, a.copy())
    assert same < 0.55
    b = rng.normal(size=(40, 3))
    perm_a, perm_b = rng.permutation(40), rng.permutation(40)
    assert classifier_two_sample_auc(a[perm_a], b[perm_b]) == pytest.approx(
        classifier_two_sample_auc(a, b), abs=1e-9
    )


def test_classifier_two_sample_auc_mlp_sees_gene_structure(split):
    train, test = split
    kw = {"classifier": "mlp", "n_components": 10, "hidden": (64,), "lr": 1e-3}
    same = classifier_two_sample_auc(test, train, **kw)
    shuffled = classifier_two_sample_auc(test, shuffle_genes(train), **kw)
    assert same < 0.65
    assert shuffled > 0.9


def test_classifier_two_sample_auc_fits_the_pca_inside_each_fold(monkeypatch):
    """Standardisation and PCA see each fold's training rows (both classes), not its test rows."""
    rng = np.random.default_rng(0)
    real = rng.normal(size=(40, 6))
    synth = rng.normal(size=(40, 6))
    synth[:, 0] += 100.0  # tells the classes apart in the rows the spy sees
    fits = []
    original = _classifier.standardized_pca

    def spy(fit, others, n_components, seed):
        fits.append((fit.copy(), [o.copy() for o in others]))
        return original(fit, others, n_components, seed)

    monkeypatch.setattr(_classifier, "standardized_pca", spy)
    classifier_two_sample_auc(real, synth, n_components=3, n_splits=4)
    assert len(fits) == 4
    test_rows = []
    for fit, (held_out,) in fits:
        assert fit.shape == (60, 6)
        assert held_out.shape == (20, 6)
        assert (fit[:, 0] > 50).sum() == 30  # as many synthetic rows as real ones
        rows = {r.tobytes() for r in fit}
        assert not rows & {r.tobytes() for r in held_out}
        test_rows += [r.tobytes() for r in held_out]
    # the test rows of the folds are every sample once
    assert sorted(test_rows) == sorted(r.tobytes() for r in np.vstack([real, synth]))


def test_classifier_two_sample_auc_same_distribution_many_components():
    """Independent samples of one Gaussian: near 0.5 even with nearly as many components as
    training rows, where a projection fitted on all real samples (test folds included) pulled
    the AUC down to ~0.26."""
    aucs = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        a, b = rng.normal(size=(40, 150)), rng.normal(size=(40, 150))
        aucs.append(classifier_two_sample_auc(a, b, n_components=30))
    assert 0.42 < np.mean(aucs) < 0.65


# -- nearest centroid agreement (ported from test_basic.py) ---------------------------------------
def test_nearest_centroid_agreement(split, gtex):
    train, test = split
    assert nearest_centroid_agreement(gtex, gtex, "tissue") > 0.9
    assert nearest_centroid_agreement(train, test, "tissue") > 0.8
    shuffled = test.copy()
    shuffled.obs["tissue"] = np.random.default_rng(0).permutation(test.obs["tissue"].to_numpy())
    assert nearest_centroid_agreement(train, shuffled, "tissue") < 0.2
    assert nearest_centroid_agreement(train, shuffle_genes(test), "tissue") < 3 * CHANCE
    a = nearest_centroid_agreement(train, test, "tissue")
    b = nearest_centroid_agreement(permuted(train, 1), permuted(test, 2), "tissue")
    assert a == pytest.approx(b)


def test_nearest_centroid_agreement_by_hand():
    # one gene: centroids A = 1, B = 11 (standardising one gene keeps the order)
    real = ad.AnnData(np.array([[0.0], [2.0], [10.0], [12.0]]), obs={"t": ["A", "A", "B", "B"]})
    synth = ad.AnnData(np.array([[3.0], [8.0], [11.0], [1.0]]), obs={"t": ["A", "A", "B", "C"]})
    # 3 -> A (agree), 8 -> B (disagree), 11 -> B (agree), 1 -> A (C: disagree)
    assert nearest_centroid_agreement(real, synth, "t") == 0.5


# -- obsm representations -------------------------------------------------------------------------
def with_embedding(adata: ad.AnnData, components: np.ndarray, mean: np.ndarray) -> ad.AnnData:
    """A copy with ``.obsm["X_emb"]``: the samples projected on given principal axes."""
    out = adata.copy()
    out.obsm["X_emb"] = (np.asarray(out.X, dtype=np.float64) - mean) @ components.T
    return out


def as_values(adata: ad.AnnData) -> ad.AnnData:
    """The ``.obsm["X_emb"]`` representation passed directly, as an AnnData's ``.X``."""
    return ad.AnnData(adata.obsm["X_emb"].copy(), obs=adata.obs.copy())


@pytest.fixture(scope="module")
def embedded(small):
    """``small`` with a 3-d PCA representation (fitted on its training part) in .obsm."""
    train, test = small
    X = np.asarray(train.X, dtype=np.float64)
    mean = X.mean(0)
    components = np.linalg.svd(X - mean, full_matrices=False)[2][:3]
    return with_embedding(train, components, mean), with_embedding(test, components, mean)


def test_obsm_reverse_validation_and_label_preservation(embedded, small, snapshot):
    train, test = embedded
    snaps = snapshot(train), snapshot(test)
    kw = {"classifier": "logistic"}
    rv = reverse_validation(test, train, "tissue", reference=train, obsm="X_emb", **kw)
    direct = reverse_validation(
        as_values(test), as_values(train), "tissue", reference=as_values(train), **kw
    )
    assert rv == direct
    genes = reverse_validation(test, train, "tissue", reference=train, **kw)
    assert rv != genes  # 3 components carry less than the genes: obsm is really what is read
    lp = label_preservation(train, test, "tissue", obsm="X_emb", epochs=3)
    assert lp == label_preservation(as_values(train), as_values(test), "tissue", epochs=3)
    snaps[0].assert_unchanged(train)
    snaps[1].assert_unchanged(test)
    # the reference is read from the same key
    plain_reference = small[0]
    with pytest.raises(KeyError, match=r"reference: 'X_emb' is not in \.obsm"):
        reverse_validation(test, train, "tissue", reference=plain_reference, obsm="X_emb", **kw)
    with pytest.raises(KeyError, match=r"'X_umap' is not in \.obsm"):
        reverse_validation(test, train, "tissue", obsm="X_umap", **kw)
    with pytest.raises(KeyError, match=r"synthetic: 'X_emb' is not in \.obsm"):
        label_preservation(train, small[1], "tissue", obsm="X_emb", **kw)
    with pytest.raises(ValueError, match="either `layer` or `obsm`"):
        label_preservation(train, test, "tissue", layer="counts", obsm="X_emb", **kw)


def test_obsm_classifier_two_sample_auc(embedded, small):
    train, test = embedded
    auc = classifier_two_sample_auc(test, train, obsm="X_emb", n_components=2)
    direct = classifier_two_sample_auc(test.obsm["X_emb"], train.obsm["X_emb"], n_components=2)
    assert auc == direct
    assert auc != classifier_two_sample_auc(test, train, n_components=2)
    with pytest.raises(KeyError, match=r"real: 'X_emb' is not in \.obsm"):
        classifier_two_sample_auc(small[1], train, obsm="X_emb")


# -- bad input, for every public function ---------------------------------------------------------
CALLS = {
    "reverse_validation": lambda r, s: reverse_validation(r, s, "tissue", classifier="logistic"),
    "label_preservation": lambda r, s: label_preservation(r, s, "tissue", classifier="logistic"),
    "augmentation_gain": lambda r, s: augmentation_gain(
        r, r, s, "tissue", n_real=(30,), n_synth=(0, 20), seeds=1, epochs=3
    ),
    "classifier_two_sample_auc": lambda r, s: classifier_two_sample_auc(r, s),
    "nearest_centroid_agreement": lambda r, s: nearest_centroid_agreement(r, s, "tissue"),
}


@pytest.fixture(scope="module")
def small(split):
    """6 tissues x 8 train samples, 6 x 4 test samples (keeps the checks quick)."""
    train, test = split
    keep = train.obs["tissue"].cat.categories[:6]
    t = train[train.obs["tissue"].isin(keep).to_numpy()]
    t = t[np.concatenate([np.flatnonzero(t.obs["tissue"] == c)[:8] for c in keep])].copy()
    s = test[test.obs["tissue"].isin(keep).to_numpy()].copy()
    return t, s


@pytest.mark.parametrize("name", list(CALLS))
def test_bad_input(name, small, snapshot):
    call = CALLS[name]
    real, synth = small
    snaps = snapshot(real), snapshot(synth)
    result = call(real, synth)
    # genes in another order are matched by name: the same result
    reordered = synth[:, synth.var_names[::-1]].copy()
    again = call(real, reordered)
    if isinstance(result, pd.DataFrame):
        pd.testing.assert_frame_equal(result, again)
    else:
        assert again == pytest.approx(result, abs=1e-9)
    with pytest.raises(ValueError, match="different genes"):
        call(real, synth[:, 1:].copy())
    nan = synth.copy()
    nan.X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        call(real, nan)
    if name != "classifier_two_sample_auc":
        renamed = synth.copy()
        renamed.obs = renamed.obs.rename(columns={"tissue": "tisue"})
        with pytest.raises(KeyError, match="'tissue' is not a column"):
            call(real, renamed)
        one_class = real.copy()
        one_class.obs["tissue"] = "Lung"
        one_synth = synth.copy()
        one_synth.obs["tissue"] = "Lung"
        with pytest.raises(ValueError, match="single class"):
            call(one_class, one_synth)
    snaps[0].assert_unchanged(real)
    snaps[1].assert_unchanged(synth)


def test_classifier_option_is_checked(small):
    real, synth = small
    with pytest.raises(ValueError, match="classifier must be one of"):
        reverse_validation(real, synth, "tissue", classifier="svm")
    with pytest.raises(ValueError, match="classifier must be one of"):
        classifier_two_sample_auc(real, synth, classifier="svm")
    with pytest.raises(ValueError, match="3-fold cross-validation needs at least 3"):
        classifier_two_sample_auc(real, synth[:2], n_splits=3)


# -- docstring examples ---------------------------------------------------------------------------
def test_docstring_examples(monkeypatch):
    for name in _classifier.__all__:  # until sgs.metrics exports them
        monkeypatch.setattr(sgs.metrics, name, getattr(_classifier, name), raising=False)
    result = doctest.testmod(_classifier, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0


def test_augmentation_gain_progress_is_info_alone_and_debug_inside_evaluate(aug_sets, sgs_logs):
    """evaluate logs one line per call: augmentation_gain's progress lines go to debug there."""
    real_train, real_test, extra = aug_sets
    with sgs_logs() as logs:
        augmentation_gain(real_train, real_test, extra, "tissue", **AUG)
    progress = [r for r in logs if r.getMessage().startswith("augmentation_gain")]
    assert progress
    assert {r.levelname for r in progress} == {"INFO"}
    with sgs_logs() as logs:
        sgs.metrics.evaluate(
            real_train, extra, labels_key="tissue", holdout=real_test,
            metrics=["augmentation_gain"], key_added=None,
        )  # fmt: skip
    info = [r.getMessage() for r in logs if r.levelno >= logging.INFO]
    assert len(info) == 1
    assert info[0].startswith("evaluate:")
