"""The conditional VAE baseline: trains, generates by covariate, round-trips, stays honest."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import scgensynth as sgs

QUIET = {"enable_progress_bar": False}


def _logistic():
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


@pytest.fixture(scope="module")
def split():
    gtex = sgs.datasets.gtex_tissues()
    a, b = train_test_split(
        np.arange(gtex.n_obs), test_size=0.3, stratify=gtex.obs["tissue"], random_state=0
    )
    return gtex[a].copy(), gtex[b].copy()


@pytest.fixture(scope="module")
def trained(split):
    train, _ = split
    return sgs.tl.train(
        train, "cvae", categorical_covariate_keys=["tissue"], n_steps=1500, seed=0, **QUIET
    )


def test_samples_carry_their_tissue(trained, split):
    """A classifier trained on CVAE samples recognises held-out real tissues (>= 0.8 x real)."""
    train, test = split
    synth = trained.generate(train.n_obs, seed=1)
    assert synth.shape == (train.n_obs, train.n_vars)
    assert np.isfinite(synth.X).all()
    y_test = test.obs["tissue"].astype(str)
    real_acc = _logistic().fit(train.X, train.obs["tissue"].astype(str)).predict(test.X) == y_test
    synth_acc = _logistic().fit(synth.X, synth.obs["tissue"].astype(str)).predict(test.X) == y_test
    assert real_acc.mean() > 0.9
    assert synth_acc.mean() >= 0.8 * real_acc.mean()


def test_history_and_requested_covariates(trained):
    assert {"elbo_train", "reconstruction_loss_train", "kl_local_train"} <= set(trained.history)
    elbo = trained.history["elbo_train"].to_numpy().ravel()
    assert elbo[-1] < elbo[0]  # it learns
    liver = trained.generate(20, covariates={"tissue": "Liver"}, seed=0)
    assert (liver.obs["tissue"] == "Liver").all()


def test_save_load_round_trip(trained, split, tmp_path):
    path = tmp_path / "cvae"
    trained.save(str(path))
    back = sgs.model.CVAE.load(str(path), adata=split[0])
    np.testing.assert_array_equal(trained.generate(30, seed=5).X, back.generate(30, seed=5).X)


def test_wide_data_with_two_covariates(bladderbatch, snapshot):
    snap = snapshot(bladderbatch)
    model = sgs.tl.train(
        bladderbatch, "cvae", categorical_covariate_keys=["cancer", "batch"], n_steps=30,
        batch_size=16, n_hidden=64, selection=None, seed=0, **QUIET,
    )  # fmt: skip
    snap.assert_unchanged(bladderbatch, new_uns=("cvae",))
    synth = model.generate(4, covariates={"cancer": "Normal", "batch": "2"}, seed=0)
    assert synth.shape == (4, 22_283)
    assert np.isfinite(synth.X).all()
    with pytest.raises(ValueError, match="Unicorn"):
        model.generate(2, covariates={"cancer": "Unicorn", "batch": "2"})


# -- get_latent_representation ----------------------------------------------------------------
def test_latent_representation_separates_held_out_tissues(trained, split, snapshot):
    """scvi-tools' get_latent_representation: posterior means that carry the tissue."""
    from sklearn.neighbors import KNeighborsClassifier

    train, test = split
    assert "get_latent_representation" in dir(trained)
    snap = snapshot(test)
    z_train = trained.get_latent_representation()  # the training data
    z_test = trained.get_latent_representation(test)  # another AnnData, same genes
    snap.assert_unchanged(test)
    assert z_train.shape == (train.n_obs, 32)
    assert z_test.shape == (test.n_obs, 32)
    assert z_test.dtype == np.float32
    knn = KNeighborsClassifier(5).fit(z_train, train.obs["tissue"])
    accuracy = (knn.predict(z_test) == test.obs["tissue"]).mean()
    chance = test.obs["tissue"].value_counts(normalize=True).max()  # 1/26
    assert accuracy > 0.7 > 10 * chance  # measured 0.83 (1,500 steps, seed 0)
    # the mean is deterministic and does not depend on the batching or the route to the rows
    np.testing.assert_array_equal(trained.get_latent_representation(test), z_test)
    np.testing.assert_allclose(
        trained.get_latent_representation(test, batch_size=7), z_test, atol=1e-5
    )
    rows = trained.get_latent_representation(train, indices=[5, 2, 9])
    np.testing.assert_allclose(rows, z_train[[5, 2, 9]], atol=1e-5)


def test_latent_draws_and_distribution(trained, split):
    test = split[1]
    mean, variance = trained.get_latent_representation(test, return_dist=True)
    np.testing.assert_array_equal(mean, trained.get_latent_representation(test))
    assert (variance > 0).all()
    draw = trained.get_latent_representation(test, give_mean=False, seed=3)
    again = trained.get_latent_representation(test, give_mean=False, seed=3, batch_size=10)
    np.testing.assert_allclose(draw, again, atol=1e-5)  # same seed, same draw
    other = trained.get_latent_representation(test, give_mean=False, seed=4)
    assert not np.allclose(draw, other)
    # draws from q(z | x, c): standardized squared deviations average 1
    assert 0.9 < float(np.mean((draw - mean) ** 2 / variance)) < 1.1


def test_latent_representation_bad_input(trained, split, gtex):
    test = split[1]
    with pytest.raises(ValueError, match="genes differ"):
        trained.get_latent_representation(test[:, :-1].copy())
    no_tissue = test.copy()
    del no_tissue.obs["tissue"]
    with pytest.raises(KeyError, match=r"\['tissue'\] are not in adata.obs"):
        trained.get_latent_representation(no_tissue)
    unseen = test.copy()
    unseen.obs["tissue"] = unseen.obs["tissue"].cat.rename_categories({"Liver": "Kidney"})
    with pytest.raises(ValueError, match=r"Unknown categories.*Kidney"):
        trained.get_latent_representation(unseen)
    holed = test.copy()
    holed.X[3, 7] = np.nan
    with pytest.raises(ValueError, match=r"1 sample\(s\) of adata hold NaN.*\[3\]"):
        trained.get_latent_representation(holed)
    with pytest.raises(IndexError, match="outside the 156 samples"):
        trained.get_latent_representation(test, indices=[0, 156])
    with pytest.raises(TypeError, match="flatnonzero"):
        trained.get_latent_representation(test, indices=np.ones(test.n_obs, bool))
    with pytest.raises(TypeError, match="must be an AnnData"):
        trained.get_latent_representation(test.X)
    untrained = sgs.model.CVAE(
        sgs.model.CVAE.setup_proxy(gtex, categorical_covariate_keys="tissue"), n_latent=4
    )
    with pytest.raises(RuntimeError, match="train"):
        untrained.get_latent_representation()


def test_latent_representation_of_a_model_loaded_without_its_data(trained, split, tmp_path):
    test = split[1]
    trained.save(tmp_path / "cvae")
    alone = sgs.model.CVAE.load(tmp_path / "cvae")  # the file alone
    with pytest.raises(ValueError, match=r"loaded without its training data.*adata="):
        alone.get_latent_representation()
    np.testing.assert_allclose(
        alone.get_latent_representation(test), trained.get_latent_representation(test), atol=1e-6
    )
