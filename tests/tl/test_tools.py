"""The one-call tools: train_wgan, generate, augment, and scaling detection."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import scgensynth as sgs


# -- train_wgan -------------------------------------------------------------------------------
def test_train_wgan_writes_only_params(gtex_model, tmp_path):
    adata = gtex_model.adata
    gtex_model.before.assert_unchanged(adata, new_uns=("wgan",))
    assert list(adata.uns["wgan"]) == ["params"]
    params = adata.uns["wgan"]["params"]
    assert params["model"] == "WGANGP"
    assert list(params["categorical_covariate_keys"]) == ["tissue"]
    assert list(params["continuous_covariate_keys"]) == []
    assert params["n_steps"] == 200
    assert params["seed"] == 0
    assert params["scaling"] == "standardize"
    assert list(params["n_hidden"]) == [64, 64]
    assert isinstance(gtex_model.model, sgs.model.WGANGP)
    assert gtex_model.model.is_trained_

    path = tmp_path / "trained_on.h5ad"
    adata.write_h5ad(path)
    back = ad.read_h5ad(path)
    read = back.uns["wgan"]["params"]
    assert set(read) == set(params)
    for key, value in params.items():
        if isinstance(value, list):
            assert list(read[key]) == value, key
        else:
            assert read[key] == value, key
    np.testing.assert_array_equal(back.X, adata.X)


def test_unconditional_training(gtex, snapshot, fast):
    snap = snapshot(gtex)
    model = sgs.tl.train_wgan(gtex, n_steps=60, selection=None, key_added="uncond", **fast)
    snap.assert_unchanged(gtex, new_uns=("uncond",))
    assert model.categorical_covariate_keys == []
    assert model.continuous_covariate_keys == []
    assert gtex.uns["uncond"]["params"]["categorical_covariate_keys"] == []

    synth = sgs.tl.generate(model, n_obs=25, seed=0)
    assert synth.shape == (25, gtex.n_vars)
    assert synth.obs.shape[1] == 0
    assert synth.uns["sgs"]["covariates"] == []
    assert np.isfinite(synth.X).all()
    assert synth.X.min() >= 0  # non-negative input -> non-negative output


def test_continuous_covariate(tcga_acc, snapshot, fast):
    """Age as a continuous covariate on the clinical TCGA-ACC set (79 samples)."""
    snap = snapshot(tcga_acc)
    model = sgs.tl.train_wgan(
        tcga_acc,
        continuous_covariate_keys=["years_to_birth"],
        categorical_covariate_keys=["gender"],
        n_steps=100,
        batch_size=16,
        selection=None,
        **fast,
    )
    snap.assert_unchanged(tcga_acc, new_uns=("wgan",))
    assert model.continuous_covariate_keys == ["years_to_birth"]
    assert model.scaling_["mode"] == "log1p"

    synth = sgs.tl.generate(model, n_obs=12, covariates={"years_to_birth": 40, "gender": "male"})
    assert synth.obs["years_to_birth"].dtype.kind == "f"
    np.testing.assert_array_equal(synth.obs["years_to_birth"], 40.0)
    assert (synth.obs["gender"] == "male").all()
    assert np.isfinite(synth.X).all()
    assert synth.X.min() >= 0

    frame = pd.DataFrame({"years_to_birth": [20.0, 35.5, 70.0], "gender": ["female"] * 3})
    synth = sgs.tl.generate(model, covariates=frame, seed=3)
    np.testing.assert_array_equal(synth.obs["years_to_birth"], [20.0, 35.5, 70.0])

    resampled = sgs.tl.generate(model, n_obs=40, seed=0)
    assert set(resampled.obs["years_to_birth"]) <= set(tcga_acc.obs["years_to_birth"])


def test_sparse_input(pbmc, snapshot, fast):
    assert sparse.isspmatrix_csr(pbmc.X) or isinstance(pbmc.X, sparse.csr_array)
    assert pbmc.X.min() >= 0
    snap = snapshot(pbmc)
    model = sgs.tl.train_wgan(
        pbmc, categorical_covariate_keys=["bulk_labels"], n_steps=60, selection=None, **fast
    )
    snap.assert_unchanged(pbmc, new_uns=("wgan",))
    synth = sgs.tl.generate(model, n_obs=80, seed=0)
    assert synth.shape == (80, pbmc.n_vars)
    assert np.isfinite(synth.X).all()
    assert synth.X.min() >= 0
    assert set(synth.obs["bulk_labels"]) <= set(pbmc.obs["bulk_labels"])


@pytest.fixture
def pbmc_counts(pbmc):
    """Integer counts recovered from the log-normalised PBMCs, as a sparse int matrix."""
    counts = np.round(np.expm1(pbmc.X.toarray())).astype(np.int64)
    return ad.AnnData(
        sparse.csr_matrix(counts),
        obs=pbmc.obs[["bulk_labels"]].copy(),
        var=pd.DataFrame(index=pbmc.var_names.copy()),
    )


def test_counts_are_detected_and_generated_non_negative(pbmc_counts, snapshot, fast):
    assert sgs.pp.detect_scaling(pbmc_counts) == "counts"
    snap = snapshot(pbmc_counts)
    model = sgs.tl.train_wgan(
        pbmc_counts, categorical_covariate_keys=["bulk_labels"], n_steps=60, selection=None, **fast
    )
    snap.assert_unchanged(pbmc_counts, new_uns=("wgan",))
    assert model.scaling_["mode"] == "counts"
    assert pbmc_counts.uns["wgan"]["params"]["scaling"] == "counts"

    synth = sgs.tl.generate(model, n_obs=60, seed=0)
    assert np.isfinite(synth.X).all()
    assert synth.X.min() >= 0
    np.testing.assert_array_equal(synth.X, np.rint(synth.X))  # integer counts out
    # each synthetic sample has the library size of a (resampled) training sample (the
    # expected counts' total; the counts drawn around them add Poisson noise to it)
    library = np.asarray(pbmc_counts.X.sum(1)).ravel()
    totals = sgs.tl.generate(model, n_obs=60, seed=0, counts="mean").X.sum(1)
    nearest = np.abs(totals[:, None] - library[None, :]).min(1)
    np.testing.assert_array_less(nearest, 1e-3 * totals)


def test_train_on_a_layer(pbmc_counts, snapshot, fast):
    """Counts in a layer, centred log values (with negatives) in X: the layer is used."""
    adata = pbmc_counts
    adata.layers["counts"] = adata.X.copy()
    logged = np.log1p(adata.X.toarray().astype(np.float32))
    adata.X = logged - logged.mean(0)
    snap = snapshot(adata)
    model = sgs.tl.train_wgan(
        adata, layer="counts", categorical_covariate_keys=["bulk_labels"], n_steps=40,
        selection=None, **fast,
    )  # fmt: skip
    snap.assert_unchanged(adata, new_uns=("wgan",))
    assert model.scaling_["mode"] == "counts"
    assert adata.uns["wgan"]["params"]["layer"] == "counts"
    synth = sgs.tl.generate(model, n_obs=20, seed=0, counts="mean")  # totals: the libraries
    assert synth.X.min() >= 0
    library = np.asarray(adata.layers["counts"].sum(1)).ravel()
    assert library.min() * 0.999 <= synth.X.sum(1).min()
    assert synth.X.sum(1).max() <= library.max() * 1.001

    both = sgs.tl.augment(adata, model, n_obs=10, seed=0, layer="counts")
    real = both[both.obs["sgs_source"] == "real"].X
    np.testing.assert_array_equal(_dense(real), adata.layers["counts"].toarray())
    snap.assert_unchanged(adata, new_uns=("wgan",))


def _dense(X):
    return X.toarray() if sparse.issparse(X) else np.asarray(X)


@pytest.mark.parametrize(
    ("loader", "expected"),
    [
        (sgs.datasets.gtex_tissues, "standardize"),  # log2(RPKM + 1)
        (sgs.datasets.tcga_lusc, "standardize"),  # z-scores
        (sgs.datasets.tcga_acc, "log1p"),  # RSEM, not logged
    ],
)
def test_detect_scaling_on_bundled_data(loader, expected):
    adata = loader()
    assert sgs.pp.detect_scaling(adata) == expected
    # the matrix itself, dense or sparse, gives the same answer
    assert sgs.pp.detect_scaling(np.asarray(adata.X)) == expected
    assert sgs.pp.detect_scaling(sparse.csr_matrix(adata.X)) == expected


def test_detect_scaling_refuses_what_is_not_a_matrix():
    with pytest.raises(TypeError, match="2-D numeric matrix"):
        sgs.pp.detect_scaling(np.array(["a", "b"]))
    with pytest.raises(TypeError, match="needs an AnnData"):
        sgs.pp.detect_scaling(np.ones((3, 2)), layer="counts")


def test_params_leave_unset_arguments_out(gtex, tmp_path):
    # scanpy-style params: no 'None' strings for unset arguments (layer, max_epochs)
    sgs.tl.train(gtex, categorical_covariate_keys=["tissue"], key_added="plain")
    params = gtex.uns["plain"]["params"]
    assert "layer" not in params
    assert "max_epochs" not in params
    assert "None" not in map(str, params.values())
    assert params["categorical_covariate_keys"] == ["tissue"]
    gtex.write_h5ad(tmp_path / "x.h5ad")  # and the file takes it
    assert ad.read_h5ad(tmp_path / "x.h5ad").uns["plain"]["params"]["seed"] == 0


def test_training_keeps_the_users_entries_under_its_key(gtex):
    gtex.uns["wgan"] = {"notes": "x", "params": {"old": 1}}
    kept = gtex.uns["wgan"]
    sgs.tl.train_wgan(gtex, categorical_covariate_keys=["tissue"], n_steps=4, batch_size=16,
                      n_hidden=(8,), selection=None, enable_progress_bar=False)  # fmt: skip
    assert gtex.uns["wgan"] is kept  # the user's dict, updated in place
    assert gtex.uns["wgan"]["notes"] == "x"
    assert gtex.uns["wgan"]["params"]["n_steps"] == 4  # the documented params are replaced


def test_training_refuses_a_key_that_holds_something_else(gtex, snapshot):
    gtex.uns["wgan"] = "my notes"
    snap = snapshot(gtex)
    with pytest.raises(ValueError, match=r"adata.uns\['wgan'\] holds a str.*key_added"):
        sgs.tl.train_wgan(gtex, categorical_covariate_keys=["tissue"], n_steps=4)
    snap.assert_unchanged(gtex)
    assert gtex.uns["wgan"] == "my notes"


def test_compare_refuses_an_empty_model_list(gtex, snapshot):
    snap = snapshot(gtex)
    with pytest.raises(ValueError, match=r"models is empty; name at least one generator"):
        sgs.tl.compare_generators(gtex, "tissue", models=[])
    snap.assert_unchanged(gtex)


# -- generate ---------------------------------------------------------------------------------
def test_generate_output(gtex_model):
    adata, model = gtex_model.adata, gtex_model.model
    synth = sgs.tl.generate(model, n_obs=50, seed=0)
    assert isinstance(synth, ad.AnnData)
    assert synth.shape == (50, adata.n_vars)
    assert synth.X.dtype == np.float32
    assert np.isfinite(synth.X).all()
    assert synth.X.min() >= 0  # GTEx values are non-negative
    pd.testing.assert_frame_equal(synth.var, adata.var)
    pd.testing.assert_index_equal(synth.var_names, adata.var_names)
    assert synth.obs_names.is_unique
    assert list(synth.obs.columns) == ["tissue"]
    assert isinstance(synth.obs["tissue"].dtype, pd.CategoricalDtype)
    assert list(synth.obs["tissue"].cat.categories) == list(adata.obs["tissue"].cat.categories)
    sgs_uns = synth.uns["sgs"]
    assert sgs_uns["model"] == "WGANGP"
    assert sgs_uns["seed"] == 0
    assert sgs_uns["n_obs"] == 50
    assert sgs_uns["scaling"] == "standardize"
    assert list(sgs_uns["covariates"]) == ["tissue"]
    gtex_model.before.assert_unchanged(adata, new_uns=("wgan",))


def test_generate_default_n_obs_is_training_size(gtex_model):
    synth = sgs.tl.generate(gtex_model.model, seed=0)
    assert synth.n_obs == gtex_model.adata.n_obs


def test_generate_dict_covariates(gtex_model):
    categories = list(gtex_model.adata.obs["tissue"].cat.categories)
    synth = sgs.tl.generate(gtex_model.model, n_obs=7, covariates={"tissue": "Liver"}, seed=0)
    assert synth.n_obs == 7
    assert (synth.obs["tissue"] == "Liver").all()
    assert list(synth.obs["tissue"].cat.categories) == categories


def test_generate_dataframe_covariates_keep_row_order(gtex_model):
    wanted = ["Lung", "Liver", "Testis", "Lung", "Blood"]
    synth = sgs.tl.generate(gtex_model.model, covariates=pd.DataFrame({"tissue": wanted}))
    assert synth.obs["tissue"].tolist() == wanted
    assert synth.uns["sgs"]["n_obs"] == len(wanted)


def test_generate_resampling_keeps_class_proportions(gtex_model):
    training = gtex_model.adata.obs["tissue"].value_counts(normalize=True)
    synth = sgs.tl.generate(gtex_model.model, n_obs=5000, seed=0)
    shares = synth.obs["tissue"].value_counts(normalize=True)
    assert set(shares.index) == set(training.index)  # every tissue is drawn
    diff = (shares.reindex(training.index) - training).abs()
    assert diff.max() < 0.015, diff.sort_values().tail()


# -- augment ----------------------------------------------------------------------------------
def test_augment(gtex_model, gtex, snapshot):
    snap = snapshot(gtex)
    both = sgs.tl.augment(gtex, gtex_model.model, n_obs=100, seed=0)
    snap.assert_unchanged(gtex)

    assert both.shape == (gtex.n_obs + 100, gtex.n_vars)
    source = both.obs["sgs_source"]
    assert isinstance(source.dtype, pd.CategoricalDtype)
    assert list(source.cat.categories) == ["real", "synthetic"]
    assert source.value_counts().to_dict() == {"real": gtex.n_obs, "synthetic": 100}
    assert both.obs_names.is_unique
    pd.testing.assert_index_equal(both.var_names, gtex.var_names)

    real = both[source == "real"]
    np.testing.assert_array_equal(np.asarray(real.X), gtex.X)
    assert real.obs["tissue"].astype(str).tolist() == gtex.obs["tissue"].astype(str).tolist()
    synth = both[source == "synthetic"]
    assert synth.obs["tissue"].notna().all()
    assert np.isfinite(np.asarray(synth.X)).all()
    assert isinstance(both.obs["tissue"].dtype, pd.CategoricalDtype)


def test_generation_in_batches_needs_no_more_memory_than_the_output(gtex_model):
    import tracemalloc

    model = gtex_model.model
    tracemalloc.start()
    try:
        synth = model.generate(100_000, seed=0, batch_size=4096)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert synth.shape == (100_000, model.adata.n_vars)
    assert np.isfinite(synth.X).all()
    # numpy-side peak (the output plus obs/index bookkeeping): no concatenation of batches,
    # no second copy of the output
    assert peak < 1.3 * synth.X.nbytes, (peak, synth.X.nbytes)


def test_augment_needs_the_covariate_columns(gtex_model, snapshot):
    real = gtex_model.adata.copy()
    del real.obs["tissue"]
    snap = snapshot(real)
    with pytest.raises(KeyError, match=r"lacks the model's covariate column\(s\) \['tissue'\]"):
        sgs.tl.augment(real, gtex_model.model, n_obs=5)
    snap.assert_unchanged(real)


def test_augment_keeps_a_users_source_column(gtex_model, snapshot):
    adata = gtex_model.adata.copy()
    adata.obs["sgs_source"] = "biobank"
    snap = snapshot(adata)
    with pytest.raises(ValueError, match=r"already has a column 'sgs_source'.*key_added="):
        sgs.tl.augment(adata, gtex_model.model, 5, seed=0)
    both = sgs.tl.augment(adata, gtex_model.model, 5, seed=0, key_added="origin")
    assert both.obs["origin"].value_counts().to_dict() == {"real": adata.n_obs, "synthetic": 5}
    assert (both.obs["sgs_source"].iloc[: adata.n_obs] == "biobank").all()
    snap.assert_unchanged(adata)


def test_augment_takes_no_filename(gtex_model, tmp_path):
    with pytest.raises(TypeError, match=r"use sgs.tl.generate\(model, n_obs, filename=...\)"):
        sgs.tl.augment(gtex_model.adata, gtex_model.model, 5, filename=tmp_path / "s.h5ad")
    assert not list(tmp_path.iterdir())


def test_generate_keeps_the_module_training_mode(gtex_model):
    """Generation switches to eval mode for itself only: a later train() keeps dropout on."""
    model = gtex_model.model
    module = model.module
    was = module.training
    try:
        module.train()
        model.generate(5, seed=0)
        assert module.training
        assert all(m.training for m in module.modules())
        module.eval()
        model.generate(5, seed=0)
        assert not module.training
    finally:
        module.train(was)
