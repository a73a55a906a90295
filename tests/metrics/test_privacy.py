"""Membership-inference audit and privacy report on the bundled GTEx set."""

from __future__ import annotations

import numpy as np
import pytest

import scgensynth as sgs


@pytest.fixture(scope="module")
def three_way(gtex):
    """Per tissue: 8 members (208), 6 held out (156), 6 independent "synthetic" (156)."""
    rng = np.random.default_rng(0)
    tissue = gtex.obs["tissue"]
    parts = [[], [], []]
    for t in tissue.cat.categories:
        idx = rng.permutation(np.flatnonzero(tissue == t))
        for part, rows in zip(parts, (idx[:8], idx[8:14], idx[14:]), strict=True):
            part.extend(rows)
    return tuple(gtex[np.sort(p)].copy() for p in parts)


@pytest.fixture(scope="module")
def noisy_copies(three_way):
    """A "generator" that returns its training samples plus tiny noise."""
    out = three_way[0].copy()
    noise = np.random.default_rng(1).normal(scale=0.01, size=out.shape)
    out.X = (out.X + noise).astype(np.float32)
    return out


def _by_attack(table):
    return table.set_index("attack")


def _interval_holds_estimate(table):
    assert (table["auc_low"] <= table["auc"]).all()
    assert (table["auc"] <= table["auc_high"]).all()
    assert (table["auc_high"] - table["auc_low"] > 0).any()


@pytest.mark.parametrize("kind", ["exact", "noisy"])
def test_copies_of_training_samples_are_caught(three_way, noisy_copies, kind):
    train, holdout, _ = three_way
    synth = train if kind == "exact" else noisy_copies
    table = sgs.metrics.membership_inference(train, synth, holdout, n_bootstrap=50)
    assert list(table.columns) == [
        "attack", "auc", "auc_low", "auc_high", "n_members", "n_nonmembers"
    ]  # fmt: skip
    t = _by_attack(table)
    assert list(t.index) == ["distance", "logan", "domias"]
    # measured: distance 1.000, domias 1.000, logan 1.000 (exact and noisy; 0.975 / 0.962
    # with the 200-tree random forest it replaced)
    assert t.loc["distance", "auc"] > 0.9
    assert t.loc["domias", "auc"] > 0.9
    assert t.loc["logan", "auc"] > 0.8
    assert (t["n_members"] == 208).all()
    assert (t["n_nonmembers"] == 78).all()
    assert (table["auc_low"] <= table["auc"]).all()
    assert (table["auc"] <= table["auc_high"]).all()


def test_independent_real_samples_are_at_chance(three_way):
    train, holdout, independent = three_way
    table = sgs.metrics.membership_inference(train, independent, holdout)
    # measured: distance 0.495 [0.422, 0.564], logan 0.531 [0.461, 0.602], domias 0.493
    for r in table.itertuples():
        assert abs(r.auc - 0.5) < 0.1 or r.auc_low <= 0.5 <= r.auc_high, r
    _interval_holds_estimate(table)


def test_same_seed_same_table_and_reference_argument(three_way):
    train, holdout, independent = three_way
    kw = {"attacks": ["distance", "domias"], "n_bootstrap": 20}
    first = sgs.metrics.membership_inference(train, train, holdout, **kw)
    again = sgs.metrics.membership_inference(train, train, holdout, **kw)
    assert first.equals(again)
    # a separate reference set: every holdout sample is scored as a non-member
    ref = sgs.metrics.membership_inference(train, train, holdout, reference=independent, **kw)
    assert (ref["n_nonmembers"] == holdout.n_obs).all()
    assert (ref["auc"] > 0.9).all()


def test_genes_are_matched_by_name(three_way, noisy_copies):
    train, holdout, _ = three_way
    kw = {"attacks": "distance", "n_bootstrap": 0}
    base = sgs.metrics.membership_inference(train, noisy_copies, holdout, **kw)
    rev = noisy_copies[:, noisy_copies.var_names[::-1]].copy()
    assert sgs.metrics.membership_inference(train, rev, holdout, **kw)["auc"].item() == (
        base["auc"].item()
    )
    assert base["auc_low"].isna().all()


def test_report_says_unsafe_for_copies(three_way, noisy_copies):
    train, holdout, _ = three_way
    report = sgs.metrics.privacy_report(train, train, holdout, n_bootstrap=20)
    assert not report.safe
    assert report.exact_copies == train.n_obs
    assert report.near_copies == train.n_obs
    assert str(report).startswith("Not safe to share at AUC threshold 0.6")
    assert any("exact copies" in f for f in report.failed)
    assert any("distance attack" in f for f in report.failed)
    noisy = sgs.metrics.privacy_report(train, noisy_copies, holdout, n_bootstrap=20)
    assert not noisy.safe
    assert noisy.exact_copies == 0
    assert any("near copies" in f for f in noisy.failed)
    assert noisy.dcr["nearer_train"] == 1.0
    assert any("nearer to a training sample" in f for f in noisy.failed)  # permutation test


def test_report_says_safe_for_independent_samples(three_way):
    train, holdout, independent = three_way
    report = sgs.metrics.privacy_report(train, independent, holdout, n_bootstrap=20)
    assert report.safe, report.failed
    assert report.verdict == "Looks safe to share at AUC threshold 0.6: every check passed."
    assert report.exact_copies == 0
    assert report.near_copies <= 4  # measured 1, about 1.6 expected
    assert "PrivacyReport" in repr(report)
    assert "distance" in str(report)


def test_inputs_are_not_modified(three_way, noisy_copies):
    train, holdout, _ = three_way
    view = noisy_copies[10:150]
    assert view.is_view
    before = [x.X.copy() for x in (train, holdout, view)]
    obs_before = [x.obs.copy() for x in (train, holdout, view)]
    arrays = [np.asarray(train.X).copy(), np.asarray(holdout.X).copy()]
    arrays_before = [a.copy() for a in arrays]
    sgs.metrics.privacy_report(train, view, holdout, n_bootstrap=5)
    sgs.metrics.membership_inference(arrays[0], arrays[0], arrays[1], n_bootstrap=5)
    for x, b, o in zip((train, holdout, view), before, obs_before, strict=True):
        np.testing.assert_array_equal(x.X, b)
        assert x.obs.equals(o)
    assert view.is_view
    for a, b in zip(arrays, arrays_before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_bad_inputs_are_refused(three_way):
    train, holdout, independent = three_way
    mi = sgs.metrics.membership_inference
    with pytest.raises(ValueError, match="holdout is required"):
        mi(train, independent, None)
    with pytest.raises(ValueError, match="half of holdout has 5 samples"):
        mi(train, independent, holdout[:10])
    with pytest.raises(ValueError, match="synthetic has 3 samples"):
        mi(train, independent[:3], holdout)
    with pytest.raises(ValueError, match="different genes"):
        mi(train, independent[:, :-5], holdout)
    bad = independent.copy()
    bad.X[3, 7] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        mi(train, bad, holdout)
    with pytest.raises(ValueError, match="attacks must be"):
        mi(train, independent, holdout, attacks=["distance", "gan"])
    with pytest.raises(ValueError, match="n_components"):
        mi(train, independent, holdout, n_components=0)
    with pytest.raises(ValueError, match="threshold"):
        sgs.metrics.privacy_report(train, independent, holdout, threshold=0.3)


def test_pooled_pca_and_bootstrap_match_the_direct_computations(three_way):
    """The blockwise randomized PCA and the all-at-once bootstrap give the direct answers."""
    from sklearn.decomposition import PCA

    from scgensynth.metrics import _privacy

    train, holdout, _ = three_way
    T, H = np.asarray(train.X), np.asarray(holdout.X)
    pooled = np.concatenate([T, H])
    exact = PCA(50, svd_solver="full").fit(pooled)
    Z = _privacy._pooled_pca([T, H], 50, seed=0)(pooled)
    # measured 0.9999: the same subspace as an exact PCA, without a pooled or centred copy
    assert Z.var(0, ddof=1).sum() / exact.explained_variance_.sum() > 0.999
    rng = np.random.default_rng(0)
    pos, neg = np.round(Z[:208, 0]), np.round(Z[208:, 0])  # rounded: many ties
    draws = [(rng.integers(0, 208, 208), rng.integers(0, 156, 156)) for _ in range(30)]
    loop = [_privacy._auc(pos[i], neg[j]) for i, j in draws]
    counts = [_privacy._resample_counts(n, 30, d) for n, d in zip((208, 156), zip(*draws))]
    np.testing.assert_allclose(_privacy._bootstrap_aucs(pos, neg, *counts), loop, atol=1e-12)


def test_a_fitted_model_is_not_failed_for_its_pull_towards_its_training_means(tcga_lusc):
    # a per-class Gaussian fitted on the training half sits a little nearer to its training
    # samples than to new ones (its class means are theirs): with 1,000 synthetic samples a
    # binomial test over them would call that significant; with the real samples as the
    # units, as the permutation test has it, it is not
    from sklearn.model_selection import train_test_split

    y = tcga_lusc.obs["cancer"].to_numpy()
    train, test = train_test_split(
        np.arange(tcga_lusc.n_obs), test_size=1 / 3, stratify=y, random_state=0
    )
    train, test = tcga_lusc[train].copy(), tcga_lusc[test].copy()
    model = sgs.tl.train(train, categorical_covariate_keys=["cancer"], key_added=None)
    report = sgs.metrics.privacy_report(train, model.generate(1000, seed=0), holdout=test)
    assert report.dcr["nearer_train"] > report.dcr["nearer_train_expected"] + 0.03
    assert report.safe, report.failed
