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
