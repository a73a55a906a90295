"""Reconstruction error (REM) and explained-variance curves on hand-made and real data."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA

from scgensynth.metrics import pca_variance, reconstruction_error

# -- data --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def collapsed(split):
    """Mode collapse: the training samples squeezed onto their top-2 principal plane."""
    X = split[0].X.astype(np.float64)
    pca = PCA(2).fit(X)
    Y = pca.inverse_transform(pca.transform(X))
    Y += 1e-3 * np.random.default_rng(2).normal(size=Y.shape)
    return ad.AnnData(Y.astype(np.float32), var=split[0].var.copy())


# -- hand-computed -----------------------------------------------------------------------------
def test_rem_points_on_a_line():
    """Real points on a line in 3-D: a synthetic point's error is its distance to the line."""
    rng = np.random.default_rng(0)
    direction = np.array([1.0, 2.0, 2.0]) / 3.0
    origin = np.array([4.0, -1.0, 0.5])
    real = origin + rng.normal(size=(30, 1)) * direction
    normal = np.array([2.0, -1.0, 0.0]) / np.sqrt(5)  # orthogonal to the line
    synth = np.vstack(
        [
            origin + 3.0 * direction,  # on the line
            origin + 1.0 * direction + 2.5 * normal,  # 2.5 away
            origin - 2.0 * direction + 0.5 * normal,  # 0.5 away
            origin + 7.0 * normal,  # 7 away
        ]
    )
    rem = reconstruction_error(real, synth, n_components=1, cv=None)
    np.testing.assert_allclose(rem["synthetic"], [0.0, 2.5, 0.5, 7.0], atol=1e-9)
    np.testing.assert_allclose(rem["real"], 0.0, atol=1e-9)
    assert rem["n_components"] == 1
    # every fold's PCA finds the same line, so cross-validation changes nothing here
    rem_cv = reconstruction_error(real, synth, n_components=1, cv=5)
    np.testing.assert_allclose(rem_cv["synthetic"], [0.0, 2.5, 0.5, 7.0], atol=1e-9)


def test_rem_against_an_explicit_eigendecomposition():
    """2-D cloud, one component: the error is the coordinate along the minor axis."""
    rng = np.random.default_rng(1)
    real = rng.normal(size=(50, 2)) @ np.array([[3.0, 1.0], [0.0, 0.5]]) + [10.0, -3.0]
    synth = rng.normal(size=(20, 2)) * 4
    mean = real.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(real.T))
    minor = eigenvectors[:, np.argmin(eigenvalues)]
    rem = reconstruction_error(real, synth, n_components=1, cv=None)
    np.testing.assert_allclose(rem["real"], np.abs((real - mean) @ minor), atol=1e-9)
    np.testing.assert_allclose(rem["synthetic"], np.abs((synth - mean) @ minor), atol=1e-9)
    assert rem["real_median"] == pytest.approx(np.median(np.abs((real - mean) @ minor)))


def test_rem_cross_validation_is_out_of_sample():
    """With cv = n (leave-one-out), each real error comes from a PCA fitted on the others."""
    rng = np.random.default_rng(2)
    real = rng.normal(size=(12, 6)) * [3, 2, 1, 1, 1, 1]
    synth = rng.normal(size=(5, 6))
    rem = reconstruction_error(real, synth, n_components=2, cv=12)
    expected = []
    for i in range(12):
        pca = PCA(2, svd_solver="full").fit(np.delete(real, i, axis=0))
        expected.append(np.linalg.norm(real[i] - pca.inverse_transform(pca.transform(real[[i]]))))
    np.testing.assert_allclose(rem["real"], expected, rtol=1e-9)
    in_sample = reconstruction_error(real, synth, n_components=2, cv=None)
    assert rem["real_median"] > in_sample["real_median"]  # in-sample errors are biased low
    # each synthetic sample is judged by one of the leave-one-out PCAs
    candidates = []
    for i in range(12):
        pca = PCA(2, svd_solver="full").fit(np.delete(real, i, axis=0))
        candidates.append(
            np.linalg.norm(synth - pca.inverse_transform(pca.transform(synth)), axis=1)
        )
    candidates = np.array(candidates)
    assert all(
        np.isclose(candidates[:, j], rem["synthetic"][j], rtol=1e-9).any() for j in range(5)
    )


def test_rem_float_components_match_sklearn(split):
    train, test = split
    X = train.X.astype(np.float64)
    expected = PCA(0.8, svd_solver="full").fit(X).n_components_
    assert reconstruction_error(train, test, n_components=0.8, cv=None)["n_components"] == (
        expected
    )
    assert reconstruction_error(train, test, n_components=0.8, cv=5)["n_components"] == expected


def test_rem_warns_when_components_reach_the_rank(split, sgs_logs):
    train, test = split
    with sgs_logs() as logs:
        rem = reconstruction_error(train, test, cv=None)  # default 2000 components
    assert rem["n_components"] == train.n_obs - 1
    assert rem["real_median"] < 1e-6  # in-sample reconstruction is exact
    assert any("reaches the rank" in r.getMessage() for r in logs if r.levelno >= logging.WARNING)
    with sgs_logs() as logs:
        reconstruction_error(train, test, n_components=10)
    assert not any("reaches the rank" in r.getMessage() for r in logs)


def test_rem_randomized_path_finds_the_subspace():
    """Large enough for the randomized SVD: real data spanning a known 5-d affine subspace."""
    rng = np.random.default_rng(4)
    basis = rng.normal(size=(5, 1100))
    offset = rng.normal(size=1100)
    real = offset + rng.normal(size=(1050, 5)) * [10, 8, 6, 4, 2] @ basis
    synth = offset + rng.normal(size=(30, 5)) @ basis + rng.normal(size=(30, 1100))
    rem = reconstruction_error(real, synth, n_components=5, cv=None)
    # distance to the affine subspace offset + span(basis), by least squares
    centred = synth - real.mean(axis=0)
    coef = np.linalg.lstsq(basis.T, centred.T, rcond=None)[0]
    expected = np.linalg.norm(centred - (basis.T @ coef).T, axis=1)
    np.testing.assert_allclose(rem["synthetic"], expected, rtol=1e-6)
    np.testing.assert_allclose(rem["real"], 0.0, atol=1e-8)


# -- ideal values and invariances --------------------------------------------------------------
@pytest.mark.parametrize("cv", [None, 5])
def test_rem_identical_sets(split, cv):
    train = split[0]
    rem = reconstruction_error(train, train.copy(), n_components=20, cv=cv)
    np.testing.assert_array_equal(rem["real"], rem["synthetic"])
    assert rem["median_ratio"] == 1.0
    assert rem["ks_statistic"] == 0.0
    assert not rem["collapse"]


@pytest.mark.parametrize("cv", [None, 5])
def test_rem_invariant_to_sample_order(split, cv):
    train, test = split
    rng = np.random.default_rng(5)
    pr, ps = rng.permutation(train.n_obs), rng.permutation(test.n_obs)
    rem = reconstruction_error(train, test, n_components=20, cv=cv)
    permuted = reconstruction_error(train[pr].copy(), test[ps].copy(), n_components=20, cv=cv)
    np.testing.assert_allclose(permuted["real"], rem["real"][pr], rtol=1e-9)
    np.testing.assert_allclose(permuted["synthetic"], rem["synthetic"][ps], rtol=1e-9)
    assert permuted["median_ratio"] == pytest.approx(rem["median_ratio"])


def test_rem_seed(split):
    train, test = split
    a = reconstruction_error(train, test, n_components=20, seed=1)
    b = reconstruction_error(train, test, n_components=20, seed=1)
    c = reconstruction_error(train, test, n_components=20, seed=2)
    np.testing.assert_array_equal(a["real"], b["real"])
    assert not np.array_equal(a["real"], c["real"])


# -- real data ---------------------------------------------------------------------------------
def test_rem_held_out_real_vs_shuffled(split, shuffled):
    train, test = split
    held_out = reconstruction_error(train, test, n_components=0.9)
    broken = reconstruction_error(train, shuffled, n_components=0.9)
    assert 0.8 < held_out["median_ratio"] < 1.25
    assert held_out["ks_pvalue"] > 0.01
    assert broken["median_ratio"] > 2.0
    assert broken["ks_pvalue"] < 1e-6
    assert not held_out["collapse"]
    assert not broken["collapse"]  # off the subspace is not a collapse


def test_collapse_is_flagged(split, collapsed):
    train = split[0]
    rem = reconstruction_error(train, collapsed, n_components=0.9)
    assert rem["median_ratio"] < 0.1
    assert rem["collapse"]
    pv = pca_variance(train, collapsed)
    real_n = pv["components"]["real"]
    synth_n = pv["components"]["synthetic"]
    assert (synth_n <= 2).all()
    assert (real_n >= 20).all()


def test_pca_variance_held_out_vs_shuffled(split, shuffled):
    train, test = split
    held_out = pca_variance(train, test)
    broken = pca_variance(train, shuffled)
    # without gene-gene correlations, many more components are needed (same sample size)
    test_n = held_out["components"]["synthetic"]
    assert (broken["components"]["synthetic"] >= test_n + 20).all()
    # the held-out curve follows the training curve; the shuffled one falls far below it
    gap = (held_out["curves"]["real"] - held_out["curves"]["synthetic"]).abs().iloc[:20].max()
    broken_gap = (broken["curves"]["real"] - broken["curves"]["synthetic"]).iloc[:20].max()
    assert gap < 0.1
    assert broken_gap > 0.3


# -- key_added ---------------------------------------------------------------------------------
def test_key_added_writes_only_that_column(split, snapshot):
    train, test = split[0].copy(), split[1].copy()
    before_train, before_test = snapshot(train), snapshot(test)
    rem = reconstruction_error(train, test, n_components=10, key_added="rem")
    np.testing.assert_array_equal(train.obs["rem"].to_numpy(), rem["real"])
    np.testing.assert_array_equal(test.obs["rem"].to_numpy(), rem["synthetic"])
    for adata, before in ((train, before_train), (test, before_test)):
        assert list(adata.obs.columns) == [*before.obs.columns, "rem"]
        del adata.obs["rem"]
        before.assert_unchanged(adata)


def test_key_added_keeps_existing_columns_unless_overwrite(split):
    train, test = split[0].copy(), split[1].copy()
    test.obs["rem"] = "my own column"
    with pytest.raises(ValueError, match=r"synth.obs\['rem'\] already exists"):
        reconstruction_error(train, test, n_components=5, key_added="rem")
    assert "rem" not in train.obs
    assert (test.obs["rem"] == "my own column").all()
    rem = reconstruction_error(train, test, n_components=5, key_added="rem", overwrite=True)
    np.testing.assert_array_equal(test.obs["rem"].to_numpy(), rem["synthetic"])


def test_key_added_needs_anndata(split):
    train, test = split
    with pytest.raises(ValueError, match="key_added"):
        reconstruction_error(train.X, test.X, n_components=5, key_added="rem")
    with pytest.raises(ValueError, match="key_added"):
        reconstruction_error(train, test.X, n_components=5, key_added="rem")
    assert "rem" not in train.obs


# -- obsm --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def embedded(split):
    """Copies of the split with .obsm["X_emb"]: 30 principal axes fitted on the training part."""
    train, test = split[0].copy(), split[1].copy()
    pca = PCA(30, svd_solver="full").fit(train.X.astype(np.float64))
    for adata in (train, test):
        adata.obsm["X_emb"] = pca.transform(adata.X.astype(np.float64))
    return train, test


def without_obsm(adata: ad.AnnData) -> ad.AnnData:
    """A copy lacking .obsm["X_emb"]."""
    out = adata.copy()
    del out.obsm["X_emb"]
    return out


def test_rem_reads_obsm(embedded, snapshot):
    train, test = embedded
    snaps = snapshot(train), snapshot(test)
    rem = reconstruction_error(train, test, obsm="X_emb", n_components=5)
    direct = reconstruction_error(train.obsm["X_emb"], test.obsm["X_emb"], n_components=5)
    assert rem.keys() == direct.keys()
    for key, value in rem.items():
        np.testing.assert_array_equal(value, direct[key])
    genes = reconstruction_error(train, test, n_components=5)
    assert rem["real_median"] < 0.9 * genes["real_median"]  # fewer dimensions: smaller errors
    snaps[0].assert_unchanged(train)
    snaps[1].assert_unchanged(test)
    # key_added still writes to .obs
    a, b = train.copy(), test.copy()
    reconstruction_error(a, b, obsm="X_emb", n_components=5, key_added="rem")
    np.testing.assert_array_equal(a.obs["rem"].to_numpy(), rem["real"])
    np.testing.assert_array_equal(b.obs["rem"].to_numpy(), rem["synthetic"])
    with pytest.raises(KeyError, match=r"synthetic: 'X_emb' is not in \.obsm"):
        reconstruction_error(train, without_obsm(test), obsm="X_emb", n_components=5)
    with pytest.raises(KeyError, match=r"'X_umap' is not in \.obsm"):
        reconstruction_error(train, test, obsm="X_umap", n_components=5)
    with pytest.raises(ValueError, match="either `layer` or `obsm`"):
        reconstruction_error(train, test, layer="counts", obsm="X_emb", n_components=5)


def test_pca_variance_reads_obsm(embedded):
    train, test = embedded
    pv = pca_variance(train, test, obsm="X_emb")
    direct = pca_variance(train.obsm["X_emb"], test.obsm["X_emb"])
    pd.testing.assert_frame_equal(pv["curves"], direct["curves"], check_exact=True)
    pd.testing.assert_frame_equal(pv["components"], direct["components"], check_exact=True)
    assert len(pv["curves"]) == 30  # the representation's dimensions, not the genes
    with pytest.raises(KeyError, match=r"real: 'X_emb' is not in \.obsm"):
        pca_variance(without_obsm(train), test, obsm="X_emb")


# -- pca_variance ------------------------------------------------------------------------------
def test_pca_variance_against_sklearn(split):
    train, test = split
    pv = pca_variance(train, test, thresholds=(0.5, 0.9))
    expected_real = np.cumsum(PCA(svd_solver="full").fit(train.X).explained_variance_ratio_)
    expected_synth = np.cumsum(PCA(svd_solver="full").fit(test.X).explained_variance_ratio_)
    curves = pv["curves"]
    # components up to min(n_genes, the larger number of samples): 416 here
    assert curves.index.tolist() == list(range(1, train.n_obs + 1))
    np.testing.assert_allclose(curves["real"].to_numpy()[:100], expected_real[:100], atol=1e-5)
    np.testing.assert_allclose(curves["synthetic"].to_numpy()[:50], expected_synth[:50], atol=1e-5)
    components = pv["components"]
    assert components.index.tolist() == [0.5, 0.9]
    for t in (0.5, 0.9):
        assert components.loc[t, "real"] == np.searchsorted(expected_real, t) + 1
        assert components.loc[t, "synthetic"] == np.searchsorted(expected_synth, t) + 1


def test_pca_variance_identical_sets_and_shape(split):
    train = split[0]
    pv = pca_variance(train, train.copy())
    curves = pv["curves"]
    np.testing.assert_array_equal(curves["real"], curves["synthetic"])
    for name in ("real", "synthetic"):
        assert (np.diff(curves[name]) >= -1e-12).all()
        assert curves[name].iloc[-1] == pytest.approx(1.0)
    assert pv["components"]["real"].tolist() == pv["components"]["synthetic"].tolist()


def test_pca_variance_max_components(split):
    train, test = split
    pv = pca_variance(train, test, max_components=10, thresholds=(0.5, 0.99))
    assert len(pv["curves"]) == 10
    assert pv["components"].loc[0.99].isna().all()  # not reached within 10 components
    full = pca_variance(train, test, thresholds=(0.5,))["components"]
    assert pv["components"].loc[0.5].tolist() == full.loc[0.5].tolist()


def test_pca_variance_invariant_to_sample_order(split):
    train, test = split
    rng = np.random.default_rng(6)
    pv = pca_variance(train, test)
    permuted = pca_variance(
        train[rng.permutation(train.n_obs)].copy(), test[rng.permutation(test.n_obs)].copy()
    )
    pd.testing.assert_frame_equal(permuted["curves"], pv["curves"], atol=1e-9)
    pd.testing.assert_frame_equal(permuted["components"], pv["components"])


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fn",
    [
        lambda r, s: reconstruction_error(r, s, n_components=10)["synthetic"],
        lambda r, s: pca_variance(r, s)["curves"].to_numpy(),
    ],
    ids=["reconstruction_error", "pca_variance"],
)
def test_bad_input(fn, split, snapshot):
    train, test = split
    before_train, before_test = snapshot(train), snapshot(test)
    reordered = test[:, test.var_names[::-1]].copy()
    np.testing.assert_allclose(fn(train, reordered), fn(train, test), rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="different genes"):
        fn(train, test[:, 3:].copy())
    with_nan = test.copy()
    with_nan.X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fn(train, with_nan)
    before_train.assert_unchanged(train)
    before_test.assert_unchanged(test)


def test_bad_options(split):
    train, test = split
    for n_components in (0, -3, 1.5, 1.0, True, "all"):
        with pytest.raises(ValueError, match="n_components"):
            reconstruction_error(train, test, n_components=n_components)
    for cv in (1, 0, 2.5):
        with pytest.raises(ValueError, match="cv"):
            reconstruction_error(train, test, n_components=5, cv=cv)
    with pytest.raises(ValueError, match="too few"):
        reconstruction_error(train[:3], test, n_components=1, cv=5)
    with pytest.raises(ValueError, match="thresholds"):
        pca_variance(train, test, thresholds=(0.9, 1.5))
    with pytest.raises(ValueError, match="max_components"):
        pca_variance(train, test, max_components=0)
