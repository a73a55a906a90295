"""Fréchet distance: the closed form, the embeddings and the input checks."""

from __future__ import annotations

import doctest

import anndata as ad
import numpy as np
import pytest
import scipy.linalg

import scgensynth as sgs
from scgensynth.metrics import _frechet, frechet_distance, frechet_distance_from_stats


def scipy_reference(mu1, sigma1, mu2, sigma2) -> float:
    """The classic formula with ``scipy.linalg.sqrtm(Σ₁ Σ₂)``."""
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1 + sigma2 - 2 * np.real(covmean)))


def random_gaussian(d: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """A mean and a well-conditioned covariance (eigenvalues in [0.5, 2])."""
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return rng.normal(size=d), (q * rng.uniform(0.5, 2.0, d)) @ q.T


# -- the closed form ------------------------------------------------------------------------------
@pytest.mark.parametrize("d", [2, 10, 50])
def test_from_stats_matches_scipy(d):
    rng = np.random.default_rng(d)
    for _ in range(3):
        (mu1, s1), (mu2, s2) = random_gaussian(d, rng), random_gaussian(d, rng)
        expected = scipy_reference(mu1, s1, mu2, s2)
        assert expected > 0.1
        assert frechet_distance_from_stats(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)


def test_from_stats_by_hand():
    # 1-D: (μ1 - μ2)² + (σ1 - σ2)²
    fd = frechet_distance_from_stats(np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), 9.0)
    assert fd == pytest.approx(3.0**2 + (2.0 - 3.0) ** 2)
    # diagonal covariances: a sum of 1-D distances
    sd1, sd2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 2.0, 0.1])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    fd = frechet_distance_from_stats(mu1, np.diag(sd1**2), mu2, np.diag(sd2**2))
    assert fd == pytest.approx(((mu1 - mu2) ** 2).sum() + ((sd1 - sd2) ** 2).sum())
    # the same Gaussian: 0
    mu, s = random_gaussian(5, np.random.default_rng(0))
    assert frechet_distance_from_stats(mu, s, mu, s) == pytest.approx(0.0, abs=1e-9)


def test_from_stats_on_rank_deficient_covariances():
    rng = np.random.default_rng(0)
    d, r = 40, 5
    a = rng.normal(size=(d, r))
    s1 = a @ a.T  # rank 5: sqrtm(Σ₁ Σ₂) is singular and ill-conditioned
    b = rng.normal(size=(d, r))
    s2 = b @ b.T
    mu = rng.normal(size=d)
    fd = frechet_distance_from_stats(mu, s1, mu, s2)
    assert np.isfinite(fd)
    assert fd >= 0
    # tr sqrt(Σ₁^½ Σ₂ Σ₁^½) = the nuclear norm of B^T A when Σ₁ = A A^T, Σ₂ = B B^T
    nuclear = np.linalg.svd(b.T @ a, compute_uv=False).sum()
    assert fd == pytest.approx(np.trace(s1) + np.trace(s2) - 2 * nuclear, rel=1e-6)
    same = frechet_distance_from_stats(mu, s1, mu, s1)
    assert np.isfinite(same)
    assert 0 <= same < 1e-6 * np.trace(s1)
    zero = np.zeros((d, d))
    assert frechet_distance_from_stats(mu, zero, mu + 1, zero) == pytest.approx(d)


def test_from_stats_checks_shapes():
    with pytest.raises(ValueError, match="two d x d covariances"):
        frechet_distance_from_stats(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="sigma2 contains NaN"):
        frechet_distance_from_stats(np.zeros(2), np.eye(2), np.zeros(2), np.full((2, 2), np.nan))


# -- frechet_distance -----------------------------------------------------------------------------


def shuffle_genes(adata: ad.AnnData, seed: int = 0) -> ad.AnnData:
    """Each gene's column permuted independently: marginals kept, structure and labels lost."""
    out = adata.copy()
    rng = np.random.default_rng(seed)
    X = np.asarray(out.X).copy()
    for j in range(X.shape[1]):
        X[:, j] = X[rng.permutation(X.shape[0]), j]
    out.X = X
    return out


def permuted(adata, seed: int):
    return adata[np.random.default_rng(seed).permutation(adata.shape[0])]


CLASSIFIER = {"embedding": "classifier", "labels_key": "tissue"}


def test_raw_space_is_the_closed_form_on_sample_statistics():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 4))
    b = rng.normal(size=(25, 4)) @ rng.normal(size=(4, 4)) + 1.0
    expected = scipy_reference(a.mean(0), np.cov(a.T), b.mean(0), np.cov(b.T))
    assert frechet_distance(a, b, embedding=None) == pytest.approx(expected, rel=1e-8)
    # PCA with every component is a rotation of the standardised genes
    mean, sd = a.mean(0), a.std(0)
    za, zb = (a - mean) / sd, (b - mean) / sd
    expected = scipy_reference(za.mean(0), np.cov(za.T), zb.mean(0), np.cov(zb.T))
    assert frechet_distance(a, b, n_components=4) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(a, b, n_components=None) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("options", [{}, {"embedding": None}, CLASSIFIER], ids=str)
def test_identical_sets_give_zero(split, options):
    train, _ = split
    kw = {**options, "classifier_kwargs": {"epochs": 3}} if options == CLASSIFIER else options
    assert frechet_distance(train, train.copy(), **kw) == pytest.approx(0.0, abs=1e-6)


def test_obsm_space(split):
    train, test = split
    a, b = train.copy(), test.copy()
    rng = np.random.default_rng(0)
    a.obsm["X_emb"] = rng.normal(size=(a.n_obs, 8))
    b.obsm["X_emb"] = rng.normal(size=(b.n_obs, 8)) + 0.5
    fd = frechet_distance(a, b, obsm="X_emb")
    assert fd == pytest.approx(
        frechet_distance(a.obsm["X_emb"], b.obsm["X_emb"], embedding=None), rel=1e-12
    )
    assert fd > 8 * 0.5**2 * 0.5  # the mean shift shows
    assert frechet_distance(a, a, obsm="X_emb") == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="measured in that representation as it is"):
        frechet_distance(a, b, obsm="X_emb", **CLASSIFIER)
    with pytest.raises(KeyError, match=r"'X_umap' is not in \.obsm"):
        frechet_distance(a, b, obsm="X_umap")


def test_grows_with_a_mean_shift(split):
    _train, test = split
    X = np.asarray(test.X, dtype=np.float64)
    shifts = [0.0, 0.1, 0.3, 1.0]
    raw = [frechet_distance(X, X + s, embedding=None) for s in shifts]
    np.testing.assert_allclose(raw, [X.shape[1] * s**2 for s in shifts], rtol=1e-6, atol=1e-6)
    pca = [frechet_distance(X, X + s) for s in shifts]
    assert pca[0] == pytest.approx(0.0, abs=1e-6)
    assert np.all(np.diff(pca) > 0)
    kw = {**CLASSIFIER, "classifier_kwargs": {"epochs": 5}}
    shifted = [test.copy() for _ in shifts[1:]]
    for a, s in zip(shifted, shifts[1:]):
        a.X = a.X + s
    clf = [frechet_distance(test, a, **kw) for a in shifted]
    assert np.all(np.diff(clf) > 0)
    assert clf[0] > 0


@pytest.mark.parametrize("options", [{}, CLASSIFIER], ids=["pca", "classifier"])
def test_gtex_split_beats_gene_shuffled_copy(split, options):
    train, test = split
    good = frechet_distance(test, train, **options)
    bad = frechet_distance(test, shuffle_genes(train), **options)
    assert 0 < good < 0.2 * bad


@pytest.mark.parametrize("options", [{}, CLASSIFIER], ids=["pca", "classifier"])
def test_ignores_sample_order(split, options):
    train, test = split
    kw = {**options, "classifier_kwargs": {"epochs": 5}} if options else options
    a = frechet_distance(test, train, **kw)
    b = frechet_distance(permuted(test, 1), permuted(train, 2), **kw)
    assert b == pytest.approx(a, rel=1e-6)


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize("options", [{}, CLASSIFIER], ids=["pca", "classifier"])
def test_bad_input(split, snapshot, options):
    train, test = split
    kw = {**options, "classifier_kwargs": {"epochs": 3}} if options else options
    snaps = snapshot(train), snapshot(test)
    fd = frechet_distance(test, train, **kw)
    reordered = train[:, train.var_names[::-1]].copy()
    assert frechet_distance(test, reordered, **kw) == pytest.approx(fd, rel=1e-6)
    with pytest.raises(ValueError, match="different genes"):
        frechet_distance(test, train[:, 1:].copy(), **kw)
    nan = train.copy()
    nan.X[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        frechet_distance(test, nan, **kw)
    with pytest.raises(ValueError, match="a covariance needs at least 2"):
        frechet_distance(test, train[:1].copy(), **kw)
    snaps[0].assert_unchanged(train)
    snaps[1].assert_unchanged(test)


def test_classifier_embedding_checks(split, snapshot):
    train, test = split
    snap = snapshot(test)
    with pytest.raises(KeyError, match="'tisue' is not a column"):
        frechet_distance(test, train, embedding="classifier", labels_key="tisue")
    one = test.copy()
    one.obs["tissue"] = "Lung"
    with pytest.raises(ValueError, match="single class"):
        frechet_distance(one, train, **CLASSIFIER)
    with pytest.raises(ValueError, match="needs labels_key"):
        frechet_distance(test, train, embedding="classifier")
    with pytest.raises(ValueError, match="labels_key is only used with embedding='classifier'"):
        frechet_distance(test, train, labels_key="tissue")
    with pytest.raises(ValueError, match="classifier_kwargs are only used"):
        frechet_distance(test, train, classifier_kwargs={"epochs": 3})
    with pytest.raises(ValueError, match="embedding must be one of"):
        frechet_distance(test, train, embedding="umap")
    snap.assert_unchanged(test)


def test_docstring_examples(monkeypatch):
    for name in _frechet.__all__:  # until sgs.metrics exports them
        monkeypatch.setattr(sgs.metrics, name, getattr(_frechet, name), raising=False)
    result = doctest.testmod(_frechet, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0
