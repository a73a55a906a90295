"""Nearest-neighbour metrics: hand-computed values, brute force, real GTEx data, bad input."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

from scgensynth import metrics

# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def split(gtex):
    """Stratified halves of GTEx: 10 of each tissue's 20 samples in each."""
    rng = np.random.default_rng(0)
    first = np.concatenate(
        [
            rng.choice(np.flatnonzero(gtex.obs["tissue"] == t), 10, replace=False)
            for t in gtex.obs["tissue"].cat.categories
        ]
    )
    second = np.setdiff1d(np.arange(gtex.n_obs), first)
    return gtex[first].copy(), gtex[second].copy()


def _shuffled(adata, seed=0):
    """Each gene's column permuted on its own: marginals kept, sample structure destroyed."""
    rng = np.random.default_rng(seed)
    X = np.asarray(adata.X).copy()
    for j in range(X.shape[1]):
        X[:, j] = X[rng.permutation(X.shape[0]), j]
    return ad.AnnData(X, obs=adata.obs.copy(), var=adata.var.copy())


def _col(values):
    return np.asarray(values, dtype=np.float64)[:, None]


# -- hand-computed cases ------------------------------------------------------------------------
def test_precision_recall_by_hand():
    # real radii (k=1): all 1. synthetic radii: 9.5 each.
    # 0.5 lies in the balls of 0 and 1 -> precise; 10 is 7 from 3 -> not. Precision 1/2.
    # Every real point is within 9.5 of 0.5 -> recall 1.
    pr = metrics.precision_recall(_col([0, 1, 2, 3]), _col([0.5, 10]), k=1)
    assert pr == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 * 0.5 / 1.5})


def test_ball_boundary_counts_as_inside():
    # real radii (k=1) are all 1; the synthetic point 2 lies exactly 1 from real 1 and 3
    pr = metrics.precision_recall(_col([0, 1, 3, 4]), _col([2.0, 2.0]), k=1)
    assert pr["precision"] == 1.0


def test_density_coverage_by_hand():
    # real radii (k=1): 1. 0.5 is inside the balls of 0 and 1 (count 2), 10 inside none.
    dc = metrics.density_coverage(_col([0, 1, 2, 3]), _col([0.5, 10]), k=1)
    assert dc == pytest.approx({"density": 2 / (1 * 2), "coverage": 2 / 4})


def test_adversarial_accuracy_by_hand():
    # d_TT = (10, 10), d_TS = (1, 8): never farther -> 0
    # d_SS = (1, 1), d_ST = (1, 2): 1 > 1 is false (a tie), 2 > 1 true -> 1/2
    aa = metrics.adversarial_accuracy(_col([0, 10]), _col([1, 2]))
    assert aa == pytest.approx({"adversarial_accuracy": 0.25, "real": 0.0, "synthetic": 0.5})
    far = metrics.adversarial_accuracy(_col([0, 1]), _col([10, 11]))
    assert far["adversarial_accuracy"] == 1.0


def test_distance_to_closest_record_by_hand():
    # synthetic DCRs (1, 0), holdout DCRs (3, 4)
    dcr = metrics.distance_to_closest_record(_col([0, 10]), _col([1, 10]), _col([3, 6]))
    assert dcr == pytest.approx(
        {
            "synthetic_median": 0.5,
            "holdout_median": 3.5,
            "ratio": 0.5 / 3.5,
            "closer_than_holdout": 1.0,
            "copies": 0.5,
            # 1 is 1 from train 0 and 2 from holdout 3; 10 is a copy: both nearer train
            "nearer_train": 1.0,
            "nearer_train_expected": 2 / 4,
        }
    )


def _brute_aa(R, S):
    dtt = cdist(R, R, "sqeuclidean")
    dss = cdist(S, S, "sqeuclidean")
    np.fill_diagonal(dtt, np.inf)
    np.fill_diagonal(dss, np.inf)
    dts = cdist(R, S, "sqeuclidean")
    a = np.mean(dts.min(1) > dtt.min(1))
    b = np.mean(dts.min(0) > dss.min(1))
    return 0.5 * (a + b)


@pytest.mark.parametrize("seed", range(3))
def test_adversarial_accuracy_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    R = rng.integers(0, 4, (120, 6)).astype(float)  # integers: many exact ties and copies
    S = rng.integers(0, 4, (120, 6)).astype(float) + rng.integers(0, 2, (120, 1))
    S[:30] = R[:30]
    aa = metrics.adversarial_accuracy(R, S)
    assert aa["adversarial_accuracy"] == _brute_aa(R, S)


def test_adversarial_accuracy_subsample_equals_brute_force_on_the_subsample():
    rng = np.random.default_rng(5)
    R, S = rng.normal(size=(150, 8)), rng.normal(size=(90, 8)) + 0.5
    aa = metrics.adversarial_accuracy(R, S, n_obs=60, seed=3)
    from scgensynth.metrics._utils import canonical_order

    # the documented draw: rows in an order given by their contents, then a seeded choice
    pick = np.random.default_rng(3)
    r = R[np.sort(canonical_order(R)[pick.choice(150, 60, replace=False)])]
    s = S[np.sort(canonical_order(S)[pick.choice(90, 60, replace=False)])]
    assert aa["adversarial_accuracy"] == _brute_aa(r, s)


# -- ideal and worst values ---------------------------------------------------------------------
def test_identical_sets_are_ideal(gtex):
    assert metrics.precision_recall(gtex, gtex, k=5) == {
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
    }
    assert metrics.density_coverage(gtex, gtex)["coverage"] == 1.0
    # a copy is the extreme of copying: every nearest neighbour is the sample itself
    assert metrics.adversarial_accuracy(gtex, gtex)["adversarial_accuracy"] == 0.0


def test_far_apart_sets_score_zero(gtex):
    far = ad.AnnData(np.asarray(gtex.X) + 100.0, obs=gtex.obs, var=gtex.var)
    assert metrics.precision_recall(gtex, far, k=5) == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
    }
    assert metrics.density_coverage(gtex, far) == {"density": 0.0, "coverage": 0.0}
    assert metrics.adversarial_accuracy(gtex, far)["adversarial_accuracy"] == 1.0


def test_subsampling_does_not_depend_on_sample_order(split):
    real, synth = split
    smaller = synth[:150].copy()
    perm = np.random.default_rng(2).permutation(real.n_obs)
    aa = metrics.adversarial_accuracy(real, smaller, seed=4)
    assert aa == metrics.adversarial_accuracy(real[perm].copy(), smaller, seed=4)
    assert aa != metrics.adversarial_accuracy(real, smaller, seed=5)  # the seed does draw


def test_results_do_not_depend_on_sample_order(split):
    real, synth = split
    rng = np.random.default_rng(1)
    real_p = real[rng.permutation(real.n_obs)].copy()
    synth_p = synth[rng.permutation(synth.n_obs)].copy()
    for fn, kw in (
        (metrics.precision_recall, {"k": 5}),
        (metrics.density_coverage, {}),
        (metrics.adversarial_accuracy, {}),
    ):
        assert fn(real, synth, **kw) == fn(real_p, synth_p, **kw)
    by_group = metrics.precision_recall(real, synth, k=3, labels_key="tissue")
    pd.testing.assert_frame_equal(
        by_group, metrics.precision_recall(real_p, synth_p, k=3, labels_key="tissue")
    )
    assert metrics.distance_to_closest_record(real, synth, synth) == (
        metrics.distance_to_closest_record(real_p, synth_p, synth_p)
    )


# -- real data: real vs real beats real vs shuffled ---------------------------------------------
def test_real_test_beats_shuffled_on_every_neighbour_metric(split):
    train, test = split
    shuffled = _shuffled(test)
    good = metrics.precision_recall(train, test, k=5)
    bad = metrics.precision_recall(train, shuffled, k=5)
    assert good["f1"] > bad["f1"] + 0.3
    assert good["precision"] > 0.8
    assert bad["precision"] < 0.5
    dc_good, dc_bad = (
        metrics.density_coverage(train, test),
        metrics.density_coverage(train, shuffled),
    )
    assert dc_good["coverage"] > dc_bad["coverage"] + 0.3
    assert abs(dc_good["density"] - 1) < abs(dc_bad["density"] - 1)
    aa_good = metrics.adversarial_accuracy(train, test)
    aa_bad = metrics.adversarial_accuracy(train, shuffled)
    assert abs(aa_good["real"] - 0.5) < 0.1
    assert abs(aa_good["synthetic"] - 0.5) < 0.1
    # shuffled samples are far from every real one (real half 1) but nearer to real samples
    # than to each other (synthetic half ~0): the mean hides it, the halves do not
    assert aa_bad["real"] > 0.95
    assert aa_bad["synthetic"] < 0.05
    # DCR: half the test set stands in for synthetic samples, the other half is the holdout
    half = test.n_obs // 2
    dcr_good = metrics.distance_to_closest_record(train, test[:half], test[half:])
    dcr_bad = metrics.distance_to_closest_record(train, shuffled[:half], test[half:])
    assert abs(np.log(dcr_good["ratio"])) + 0.2 < abs(np.log(dcr_bad["ratio"]))


def test_copying_generator_is_caught(split):
    train, test = split
    dcr = metrics.distance_to_closest_record(train, train[:100], test)
    assert dcr["ratio"] == 0.0
    assert dcr["copies"] == 1.0
    assert dcr["closer_than_holdout"] == 1.0
    assert dcr["nearer_train"] == 1.0
    # half the test set as honest "synthetic" samples, the other half as holdout
    rng = np.random.default_rng(0)
    perm = rng.permutation(test.n_obs)
    honest = metrics.distance_to_closest_record(train, test[perm[:130]], test[perm[130:]])
    assert 0.7 < honest["ratio"] < 1.4
    assert honest["copies"] == 0.0
    assert honest["nearer_train_expected"] == pytest.approx(260 / 390)
    assert abs(honest["nearer_train"] - honest["nearer_train_expected"]) < 0.15


# -- groups -------------------------------------------------------------------------------------
def test_groupby_reports_blind_spots_in_one_space(split):
    train, test = split
    tissues = list(test.obs["tissue"].cat.categories)
    # synthetic set without the first three tissues, and with the fourth moved far away
    keep = ~test.obs["tissue"].isin(tissues[:3]).to_numpy()
    synth = test[keep].copy()
    moved = (synth.obs["tissue"] == tissues[3]).to_numpy()
    synth.X[moved] += 50.0
    out = metrics.precision_recall(train, synth, k=3, labels_key="tissue")
    assert list(out.columns) == [
        "precision",
        "recall",
        "f1",
        "n_real",
        "n_synthetic",
        "k_real",
        "k_synthetic",
    ]
    assert set(out.index) == set(tissues)
    assert (out.loc[tissues[:4], "recall"] == 0).all()
    assert out.loc[tissues[:3], "precision"].isna().all()
    assert out.attrs["zero_recall_share"] == pytest.approx(4 / len(tissues))
    n_blind = out.loc[tissues[:4], "n_real"].sum()
    assert out.attrs["zero_recall_sample_share"] == pytest.approx(n_blind / train.n_obs)
    assert out.loc[tissues[4:], "recall"].mean() > 0.5
    # each group is the plain metric on that group's samples (the space is the data space)
    t = tissues[5]
    alone = metrics.precision_recall(
        train[train.obs["tissue"] == t], synth[synth.obs["tissue"] == t], k=3
    )
    assert out.loc[t, ["precision", "recall", "f1"]].to_dict() == alone
    assert out.loc[t, ["k_real", "k_synthetic"]].tolist() == [3, 3]
    dc = metrics.density_coverage(train, synth, k=3, labels_key="tissue")
    assert (dc.loc[tissues[:3], "coverage"] == 0).all()


def test_groupby_lowers_k_for_small_groups(split):
    """Groups with few samples use the k they allow; one synthetic sample covers nothing."""
    train, test = split
    t0, t1 = test.obs["tissue"].cat.categories[:2]
    keep = np.r_[
        np.flatnonzero(test.obs["tissue"] == t0)[:1], np.flatnonzero(test.obs["tissue"] == t1)
    ]
    out = metrics.precision_recall(train, test[keep], k=50, labels_key="tissue")
    assert out.loc[t0, "recall"] == 0.0  # a single synthetic sample
    assert out.loc[t0, ["k_real", "k_synthetic"]].tolist() == [9, 0]
    assert out.loc[t1, ["k_real", "k_synthetic"]].tolist() == [9, 9]
    alone = metrics.precision_recall(
        train[train.obs["tissue"] == t1], test[test.obs["tissue"] == t1], k=9
    )
    assert out.loc[t1, ["precision", "recall", "f1"]].to_dict() == alone
    assert np.isnan(out.loc[test.obs["tissue"].cat.categories[5], "precision"])


def test_groupby_in_a_shared_pca_space(split):
    """With ``n_components`` the PCA is fitted once on all real samples, not per group."""
    from sklearn.decomposition import PCA

    train, test = split
    out = metrics.precision_recall(train, test, k=3, labels_key="tissue", n_components=10)
    pca = PCA(10, random_state=0).fit(np.asarray(train.X))
    t = test.obs["tissue"].cat.categories[2]
    r = pca.transform(np.asarray(train[train.obs["tissue"] == t].X))
    s = pca.transform(np.asarray(test[test.obs["tissue"] == t].X))
    assert out.loc[t, ["precision", "recall", "f1"]].to_dict() == (
        metrics.precision_recall(r, s, k=3)
    )


def test_arrays_sparse_and_anndata_agree(split):
    from scipy import sparse

    train, test = split
    as_arrays = metrics.precision_recall(np.asarray(train.X), np.asarray(test.X), k=5)
    as_sparse = ad.AnnData(sparse.csr_matrix(test.X), obs=test.obs, var=test.var)
    assert metrics.precision_recall(train, test, k=5) == as_arrays
    assert metrics.precision_recall(train, as_sparse, k=5) == as_arrays


def test_layer_is_read_instead_of_X(split):
    train, test = split
    train, test = train.copy(), test.copy()
    for a in (train, test):
        a.layers["shifted"] = np.asarray(a.X) + 100.0
        a.X = np.zeros_like(a.X)  # X would give precision 1 (all points equal)
    via_layer = metrics.precision_recall(train, test, k=5, layer="shifted")
    direct = metrics.precision_recall(train.layers["shifted"], test.layers["shifted"], k=5)
    assert via_layer == direct
    assert via_layer["recall"] < 1.0
    with pytest.raises(KeyError, match=r"not in \.layers"):
        metrics.density_coverage(train, test, layer="counts")


def test_representation_from_obsm(split):
    train, test = split
    train, test = train.copy(), test.copy()
    rng = np.random.default_rng(0)
    train.obsm["X_emb"] = rng.normal(size=(train.n_obs, 4))
    test.obsm["X_emb"] = rng.normal(size=(test.n_obs, 4))
    via_obsm = metrics.precision_recall(train, test, k=5, obsm="X_emb")
    assert via_obsm == metrics.precision_recall(train.obsm["X_emb"], test.obsm["X_emb"], k=5)


# -- bad input ----------------------------------------------------------------------------------
def test_gene_order_is_aligned_by_name(split):
    train, test = split
    order = np.random.default_rng(0).permutation(test.n_vars)
    reordered = test[:, order].copy()
    assert metrics.precision_recall(train, reordered, k=5) == (
        metrics.precision_recall(train, test, k=5)
    )


def test_bad_input_gives_clear_errors_and_leaves_data_alone(split, snapshot):
    train, test = split
    before = [snapshot(train), snapshot(test)]
    with pytest.raises(ValueError, match="different genes"):
        metrics.precision_recall(train, test[:, 1:], k=5)
    with pytest.raises(ValueError, match=r"too few for k=50: use k<=9"):
        metrics.precision_recall(train, test[:10], k=50)
    with pytest.raises(KeyError, match=r"not a column of \.obs"):
        metrics.precision_recall(train, test, k=5, labels_key="tisue")
    with pytest.raises(ValueError, match="k must be a positive integer"):
        metrics.density_coverage(train, test, k=0)
    for bad_value in (np.nan, np.inf):
        bad = test.copy()
        bad.X[3, 7] = bad_value
        for fn in (
            metrics.precision_recall,
            metrics.density_coverage,
            metrics.adversarial_accuracy,
        ):
            with pytest.raises(ValueError, match="NaN or infinite"):
                fn(train, bad)
    with pytest.raises(ValueError, match="nearest other sample needs at least 2"):
        metrics.adversarial_accuracy(train, test[:1])
    with pytest.raises(ValueError, match="different numbers of genes"):
        metrics.adversarial_accuracy(np.ones((5, 3)), np.ones((5, 4)))
    with pytest.raises(ValueError, match="different genes"):
        metrics.distance_to_closest_record(train, test, test[:, 1:])
    with pytest.raises(KeyError, match=r"not in \.obsm"):
        metrics.adversarial_accuracy(train, test, obsm="X_pca")
    for snap, adata in zip(before, (train, test), strict=True):
        snap.assert_unchanged(adata)
