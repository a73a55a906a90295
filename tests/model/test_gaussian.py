"""GaussianGenerator (the recommended default) on GTEx, TCGA-ACC and bladderbatch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scvi
import torch
from sklearn.covariance import LedoitWolf, ledoit_wolf_shrinkage
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import scgensynth as sgs
from scgensynth.model import GaussianGenerator
from scgensynth.module import GaussianModule
from scgensynth.module import ledoit_wolf_shrinkage as sgs_shrinkage


def _fit(adata, cat_keys=("tissue",), cont_keys=(), **model_kwargs):
    scvi.settings.seed = 0
    proxy = GaussianGenerator.setup_proxy(
        adata,
        categorical_covariate_keys=list(cat_keys) or None,
        continuous_covariate_keys=list(cont_keys) or None,
    )
    model = GaussianGenerator(proxy, **model_kwargs)
    model.train()
    return model


def _covariance(module: GaussianModule, g: int) -> np.ndarray:
    """The covariance the module samples group ``g`` from, as a dense matrix."""
    iso = float(module.iso_scale[g])
    mine = module.component_group == g
    v = module.components[mine].double().numpy()
    s = module.component_scale[mine].double().numpy()
    return iso**2 * np.eye(module.n_input) + (v.T * ((s + iso) ** 2 - iso**2)) @ v


def _scaled(model, X) -> np.ndarray:
    return model.module.scaling(torch.as_tensor(np.asarray(X), dtype=torch.float32)).numpy()


@pytest.fixture(scope="module")
def gtex_gauss(gtex_split):
    train, _ = gtex_split
    return _fit(train)


# -- the estimator ------------------------------------------------------------------------------
def test_shrinkage_matches_scikit_learn_on_real_classes(gtex_split):
    """p >> n (467 genes, ~14 samples per tissue): the n x n formula equals scikit-learn's."""
    train, _ = gtex_split
    X = np.asarray(train.X, dtype=np.float64)
    for tissue in ["Liver", "Lung", "Muscle"]:
        Z = X[(train.obs["tissue"] == tissue).to_numpy()]
        C = Z - Z.mean(0)
        a, mu = sgs_shrinkage(torch.as_tensor(C))
        assert a == pytest.approx(ledoit_wolf_shrinkage(C, assume_centered=True), rel=1e-9)
        assert mu == pytest.approx(np.trace(C.T @ C / len(C)) / C.shape[1], rel=1e-9)
        assert 0.05 < a < 0.95  # a real trade-off, not a degenerate end


def test_each_class_is_sampled_from_its_ledoit_wolf_covariance(gtex_gauss, gtex_split):
    train, _ = gtex_split
    model = gtex_gauss
    Z = _scaled(model, train.X).astype(np.float64)
    labels = train.obs["tissue"].astype(str).to_numpy()
    codes = list(model.categories["tissue"])
    for tissue in ["Liver", "Blood", "Brain"]:
        g = int(torch.nonzero(model.module.group_keys == codes.index(tissue)).ravel()[0])
        members = Z[labels == tissue]
        expected = LedoitWolf().fit(members)
        assert np.allclose(_covariance(model.module, g), expected.covariance_, atol=2e-4)
        assert np.allclose(model.module.means[g].numpy(), members.mean(0), atol=1e-5)
        assert float(model.module.shrinkage[g]) == pytest.approx(expected.shrinkage_, rel=1e-4)


def test_samples_have_the_fitted_covariance(gtex_gauss):
    """20,000 samples of one tissue: empirical mean/covariance within sampling error."""
    model = gtex_gauss
    n = 20_000
    synth = model.generate(n, covariates={"tissue": ["Liver"] * n}, seed=1)
    Z = _scaled(model, synth.X).astype(np.float64)
    keep = ~model.module.scaling.constant.numpy()
    codes = list(model.categories["tissue"])
    g = int(torch.nonzero(model.module.group_keys == codes.index("Liver")).ravel()[0])
    cov = _covariance(model.module, g)[np.ix_(keep, keep)]
    emp = np.cov(Z[:, keep].T, bias=True)
    rel = np.linalg.norm(emp - cov) / np.linalg.norm(cov)
    assert rel < 0.05, rel
    mean_err = np.abs(Z[:, keep].mean(0) - model.module.means[g].numpy()[keep])
    assert mean_err.max() < 5 * np.sqrt(np.diag(cov).max() / n), mean_err.max()


# -- quality on held-out real samples -----------------------------------------------------------
def test_synthetic_samples_train_a_classifier_of_real_tissues(gtex_gauss, gtex_split):
    train, test = gtex_split
    synth = sgs.tl.generate(gtex_gauss, n_obs=train.n_obs, seed=0)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(np.asarray(synth.X), synth.obs["tissue"].astype(str))
    pred = clf.predict(np.asarray(test.X))
    f1 = f1_score(test.obs["tissue"].astype(str), pred, average="macro")
    assert f1 > 0.9, f1  # 26 tissues: chance is 0.04


def test_samples_are_new_not_copies(gtex_gauss, gtex_split):
    """Nearest-training distances like a held-out sample's (DCR ratio about 1)."""
    train, test = gtex_split
    synth = sgs.tl.generate(gtex_gauss, n_obs=train.n_obs, seed=0)
    dcr = sgs.metrics.distance_to_closest_record(train, synth, test)
    assert 0.8 <= dcr["ratio"] <= 1.25, dcr
    assert dcr["copies"] == 0


def test_continuous_covariate_effect_is_the_within_class_slope():
    """TCGA-ACC, purity: the generated shift per unit of purity matches real data's slope."""
    adata = sgs.datasets.tcga_acc()
    adata = adata[adata.obs["purity"].notna() & (adata.obs["C1A_C1B"] != "NA")].copy()
    model = _fit(adata, ["C1A_C1B"], ["purity"])
    lo, hi = 0.5, 0.9
    n = 4000
    arms = [
        _scaled(model, model.generate(n, covariates={"C1A_C1B": ["C1A"] * n, "purity": [v] * n},
                                      seed=2).X)
        for v in (lo, hi)
    ]  # fmt: skip
    generated = (arms[1].mean(0) - arms[0].mean(0)) / (hi - lo)
    # real: least squares of each gene on purity with one intercept per class
    Z = _scaled(model, adata.X).astype(np.float64)
    purity = adata.obs["purity"].to_numpy(dtype=float)
    design = np.column_stack([pd.get_dummies(adata.obs["C1A_C1B"].astype(str)).to_numpy(float),
                              purity])  # fmt: skip
    real = np.linalg.lstsq(design, Z, rcond=None)[0][-1]
    assert np.corrcoef(generated, real)[0, 1] > 0.95
    assert np.abs(real).max() > 1.0  # purity matters: the check is not trivially met


def test_a_class_of_one_sample_gets_the_pooled_spread(gtex_split):
    train, _ = gtex_split
    one = np.flatnonzero((train.obs["tissue"] == "Liver").to_numpy())[0]
    keep = (train.obs["tissue"] != "Liver").to_numpy()
    keep[one] = True
    model = _fit(train[keep].copy())
    synth = model.generate(50, covariates={"tissue": ["Liver"] * 50}, seed=0)
    Z = _scaled(model, synth.X)
    real = _scaled(model, train.X[one : one + 1])[0]
    spread = np.linalg.norm(Z - real, axis=1)
    assert spread.min() > 1.0  # not copies of the one sample
    assert np.linalg.norm(Z.mean(0) - real) < 0.5 * spread.mean()  # centred on it


def test_wide_bladderbatch_fits_with_memory_of_one_matrix():
    """22,283 probes: fitted without a genes x genes matrix; directions <= samples x genes."""
    import anndata as ad
    from tests.model.test_noise import BLADDER

    adata = ad.read_h5ad(BLADDER)
    model = _fit(adata, ["cancer"])
    module = model.module
    assert module.components.shape[1] == adata.n_vars
    assert module.components.shape[0] <= adata.n_obs
    synth = model.generate(200, seed=0)
    assert np.isfinite(np.asarray(synth.X)).all()
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(np.asarray(synth.X), synth.obs["cancer"].astype(str))
    acc = (clf.predict(np.asarray(adata.X)) == adata.obs["cancer"].astype(str)).mean()
    assert acc > 0.8, acc


# -- options, defaults and errors ----------------------------------------------------------------
def test_clip_option(gtex_split):
    train, _ = gtex_split
    free = _fit(train)
    clipped = _fit(train, clip=True)
    a = np.asarray(free.generate(seed=0).X)
    b = np.asarray(clipped.generate(seed=0).X)
    assert (a < 0).mean() > 0.01  # a Gaussian's lower tail, below the data's bound 0
    assert b.min() >= 0
    assert np.array_equal(np.maximum(a, 0), b)  # same draws, clipped


def test_fixed_shrinkage_values(gtex_split):
    train, _ = gtex_split
    diag = _fit(train, shrinkage=1.0)
    assert torch.all(diag.module.shrinkage == 1.0)
    assert torch.all(diag.module.component_scale.abs() < 1e-6)  # nothing but mu I
    for bad, err in [(1.5, ValueError), ("oas", ValueError), (True, TypeError)]:
        with pytest.raises(err, match="shrinkage"):
            _fit(train, shrinkage=bad)
    with pytest.raises(TypeError, match="clip"):
        _fit(train, clip="yes")


def test_train_without_model_trains_the_gaussian(gtex_split):
    train, _ = gtex_split
    data = train.copy()
    model = sgs.tl.train(data, categorical_covariate_keys=["tissue"])
    assert isinstance(model, GaussianGenerator)
    assert data.uns["gaussian"]["params"]["model"] == "GaussianGenerator"
    assert "gaussian" in sgs.model.available().index


def test_unseen_combination_is_refused_with_the_known_ones(gtex_split):
    train, _ = gtex_split
    data = train[train.obs["tissue"].isin(["Liver", "Lung"])].copy()
    data.obs["sex"] = pd.Categorical(
        ["male", "female"] * (data.n_obs // 2) + ["male"] * (data.n_obs % 2)
    )
    data = data[~((data.obs["tissue"] == "Liver") & (data.obs["sex"] == "female"))].copy()
    model = _fit(data, ["tissue", "sex"])
    with pytest.raises(ValueError, match=r"no training sample.*request one of those"):
        model.generate(5, covariates={"tissue": ["Liver"] * 5, "sex": ["female"] * 5})
    ok = model.generate(5, covariates={"tissue": ["Liver"] * 5, "sex": ["male"] * 5})
    assert ok.n_obs == 5


def test_counterfactual_moves_samples_by_the_class_difference(gtex_gauss, gtex_split):
    """Same noise, another tissue: the paired shift is the difference of the class means."""
    import scanpy as sc

    train, _ = gtex_split
    cf = sgs.tl.counterfactual(gtex_gauss, "tissue", "Lung", "Liver", n_obs=500, seed=0)
    ranked = sc.get.rank_genes_groups_df(cf, "Liver").set_index("names")
    X = np.asarray(train.X, dtype=float)
    labels = train.obs["tissue"].to_numpy()
    expected = X[labels == "Liver"].mean(0) - X[labels == "Lung"].mean(0)
    got = ranked["logfoldchanges"].reindex(train.var_names).to_numpy()
    assert np.corrcoef(got, expected)[0, 1] > 0.95
    # paired: one individual's two samples share their noise, so they are closer than chance
    ref = np.asarray(cf.X[cf.obs["tissue"] == "Lung"])
    tgt = np.asarray(cf.X[cf.obs["tissue"] == "Liver"])
    paired = np.linalg.norm(tgt - ref, axis=1).mean()
    shuffled = np.linalg.norm(tgt - ref[np.roll(np.arange(len(ref)), 1)], axis=1).mean()
    assert paired < shuffled


def test_fit_leaves_its_input_alone(gtex_split):
    """The residuals are computed in place, on a copy: float64 input is not centred."""
    train, _ = gtex_split
    x = torch.as_tensor(np.asarray(train.X[:60], dtype=np.float64))
    before = x.clone()
    cat = torch.as_tensor(train.obs["tissue"].cat.codes.to_numpy()[:60, None].astype(np.int64))
    module = GaussianModule(train.n_vars, [len(train.obs["tissue"].cat.categories)])
    module.fit(x, cat)
    assert torch.equal(x, before)
    assert module.n_groups == len(np.unique(cat.numpy()))


def test_in_place_fit_on_grouped_rows_equals_the_copying_fit(gtex_split):
    """``copy=False`` on rows grouped by class fits in the input's own storage, same model."""
    train, _ = gtex_split
    x = torch.as_tensor(np.asarray(train.X, dtype=np.float32))
    x = (x - x.mean(0)) / x.std(0).clamp_min(1e-6)
    cat = torch.as_tensor(train.obs["tissue"].cat.codes.to_numpy()[:, None].astype(np.int64))
    n_cats = [len(train.obs["tissue"].cat.categories)]
    copying = GaussianModule(train.n_vars, n_cats)
    copying.fit(x, cat)  # rows in the data's order: classes interleaved
    order = torch.argsort(cat[:, 0], stable=True)
    grouped = x[order].clone()
    in_place = GaussianModule(train.n_vars, n_cats)
    in_place.fit(grouped, cat[order], copy=False)
    assert in_place.components.untyped_storage().data_ptr() == grouped.data_ptr()
    assert torch.allclose(in_place.means, copying.means, atol=1e-5)
    assert torch.allclose(in_place.shrinkage, copying.shrinkage, atol=1e-6)
    for g in (0, 7, copying.n_groups - 1):
        np.testing.assert_allclose(
            _covariance(in_place, g), _covariance(copying, g), atol=1e-4, rtol=0
        )
