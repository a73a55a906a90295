"""LinearSubspace (training in the principal subspace) and the WGAN-GP that uses it."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scvi
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from tests.model.test_noise import BLADDER

import scgensynth as sgs
from scgensynth.nn import LinearSubspace


@pytest.fixture(scope="module")
def bladder():
    """Bladderbatch (57 x 22,283 probes), standardized per probe."""
    adata = ad.read_h5ad(BLADDER)
    X = torch.as_tensor(np.asarray(adata.X), dtype=torch.float32)
    return adata, (X - X.mean(0)) / X.std(0).clamp_min(1e-6)


def test_fit_matches_scikit_learn_pca(bladder):
    _, X = bladder
    sub = LinearSubspace(X.shape[1], 10)
    sub.fit(X)
    pca = PCA(10, svd_solver="full").fit(X.double().numpy())
    # same subspace: the projector onto the fitted directions equals scikit-learn's
    overlap = sub.basis.double().numpy() @ pca.components_.T
    np.testing.assert_allclose(np.abs(np.linalg.svd(overlap)[1]), 1.0, atol=1e-3)
    np.testing.assert_allclose(sub.scale.numpy() ** 2, pca.explained_variance_, rtol=1e-3)
    resid = X.double().numpy() - pca.inverse_transform(pca.transform(X.double().numpy()))
    np.testing.assert_allclose(
        sub.residual_std.numpy(), resid.std(0, ddof=1), rtol=1e-2, atol=1e-4
    )  # a randomised PCA: directions to ~1e-3
    assert bool(sub.fitted)


def test_projection_is_whitened_and_decoding_inverts_it(bladder):
    _, X = bladder
    sub = LinearSubspace(X.shape[1], 8)
    sub.fit(X)
    h = sub.project(X)
    np.testing.assert_allclose(h.std(0, unbiased=True).numpy(), 1.0, rtol=1e-3)
    decoded = sub.expand(h, torch.Generator().manual_seed(0))
    # the residual noise is outside the subspace: decoded samples project back exactly
    assert torch.allclose(sub.project(decoded), h, atol=1e-3)
    # and it gives the genes the spread the directions do not explain
    spread = (decoded - X).std(0)
    ratio = (spread / sub.residual_std.clamp_min(1e-6)).median()
    assert 0.9 < float(ratio) < 1.6  # residual of the data plus as much new noise: ~sqrt(2)


def test_fewer_samples_than_components_leave_the_rest_zero(bladder):
    _, X = bladder
    sub = LinearSubspace(X.shape[1], 100)
    sub.fit(X[:20])
    assert torch.count_nonzero(sub.basis.abs().sum(1)) == 19
    assert torch.isfinite(sub.project(X)).all()
    with pytest.raises(ValueError, match="n_components"):
        LinearSubspace(5, 6)


def test_fit_copy_false_works_in_place(bladder):
    _, X = bladder
    mine = X[:30].clone()
    sub = LinearSubspace(X.shape[1], 5)
    sub.fit(mine, copy=False)
    assert torch.allclose(mine.mean(0), torch.zeros(X.shape[1]), atol=1e-4)  # centred in place
    kept = X[:30].clone()
    LinearSubspace(X.shape[1], 5).fit(kept)
    assert torch.equal(kept, X[:30])


def test_wgan_in_the_subspace_learns_bladder_classes(bladder):
    """22,283 probes, 16 coordinates: samples of each class land among real ones of it."""
    adata, _ = bladder
    train = adata.copy()
    scvi.settings.seed = 0
    sgs.model.WGANGP.setup_anndata(train, categorical_covariate_keys=["cancer"])
    model = sgs.model.WGANGP(train, n_components=16)
    assert model.module.generator.net[-1].out_features == 16
    model.train(n_steps=800, enable_progress_bar=False)
    sub = model.module.subspace
    assert bool(sub.fitted)
    basis = sub.basis.clone()
    synth = model.generate(300, seed=0)
    X = np.asarray(synth.X)
    assert np.isfinite(X).all()
    clf = LogisticRegression(max_iter=3000).fit(X, synth.obs["cancer"].astype(str))
    truth = adata.obs["cancer"].astype(str).to_numpy()
    score = balanced_accuracy_score(truth, clf.predict(np.asarray(adata.X)))
    assert score > 0.55, score  # 3 classes: chance 1/3 (0.63 on 1 thread, 0.86 on 2)
    # a second call continues in the same subspace (not refitted)
    model.train(n_steps=20, selection=None, enable_progress_bar=False)
    assert torch.equal(model.module.subspace.basis, basis)
