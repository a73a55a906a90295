"""NoiseAugmenter on GTEx, bladderbatch and TCGA-ACC: real samples plus noise of known size."""

from __future__ import annotations

import logging
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scvi
import torch

import scgensynth as sgs
from scgensynth.model import NoiseAugmenter

BLADDER = Path("/work/shared/data/bladderbatch.h5ad")
if not BLADDER.exists():  # the package's copy of the shared data, if the layout differs
    BLADDER = Path(__file__).parents[3] / "shared" / "data" / "bladderbatch.h5ad"


def _fit(adata, cat_keys=(), cont_keys=(), seed=0, train_kwargs=None, **model_kwargs):
    """Register a private proxy of ``adata`` (left untouched) and store its samples."""
    scvi.settings.seed = seed
    proxy = NoiseAugmenter.setup_proxy(
        adata,
        categorical_covariate_keys=list(cat_keys) or None,
        continuous_covariate_keys=list(cont_keys) or None,
    )
    model = NoiseAugmenter(proxy, **model_kwargs)
    model.train(**(train_kwargs or {}))
    return model


def _scaled(model, X) -> torch.Tensor:
    return model.module.scaling(torch.as_tensor(np.asarray(X), dtype=torch.float32)).double()


def _noise_ratios(model, synth, real):
    """Per sample: squared distance to the nearest real sample / (variance x genes counted).

    Distances are in the model's standardised space, over the genes whose value in the
    nearest real sample is far (> 6 noise sd) above the clipping bound, so the clipping of
    non-negative data cannot shrink the noise; constant genes carry no noise and are skipped.
    Returns the ratios, the nearest real rows and the pooled ratio.
    """
    scaling = model.module.scaling
    Z, R = _scaled(model, synth.X), _scaled(model, real.X)
    nearest = torch.cdist(Z, R).argmin(dim=1)
    lower = scaling(torch.full((1, R.shape[1]), float(scaling.lower_bound.clamp_min(-1e30))))
    sd = model.module.noise_variance**0.5
    usable = (R[nearest] - lower.double() > 6 * sd) & ~scaling.constant[None, :]
    sq = ((Z - R[nearest]) ** 2 * usable).sum(dim=1)
    count = usable.sum(dim=1)
    ratios = (sq / (model.module.noise_variance * count)).numpy()
    pooled = float(sq.sum() / (model.module.noise_variance * count.sum()))
    return ratios, nearest.numpy(), pooled, count.numpy()


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gtex_noise(gtex_split):
    train, _ = gtex_split
    return _fit(train, ["tissue"])


@pytest.fixture(scope="module")
def bladder():
    return ad.read_h5ad(BLADDER)


@pytest.fixture(scope="module")
def bladder_noise(bladder):
    return _fit(bladder, ["cancer", "batch"])


# -- training ---------------------------------------------------------------------------------
def test_train_stores_scaled_samples_and_learns_nothing(gtex_split, sgs_logs):
    train, _ = gtex_split
    proxy = NoiseAugmenter.setup_proxy(train, categorical_covariate_keys=["tissue"])
    model = NoiseAugmenter(proxy)
    assert not model.is_trained_
    with pytest.raises(RuntimeError, match="train the model first"):
        model.generate(5, seed=0)
    # the other generators' training arguments are accepted (and ignored), so one call
    # trains every model; a misspelt one is refused
    with pytest.raises(TypeError, match=r"Unknown training argument\(s\) \['n_stepz'\]"):
        model.train(n_stepz=100)
    assert not model.is_trained_
    with sgs_logs() as logs:
        model.train(n_steps=500, batch_size=16, lr_critic=1e-4, enable_progress_bar=False)
    assert model.is_trained_
    messages = [r.getMessage() for r in logs if r.levelno == logging.INFO]
    stored = [m for m in messages if "nothing is learned" in m]
    assert stored, messages
    assert "Ignored training arguments: ['batch_size', 'enable_progress_bar'" in stored[0]
    # the module holds every training sample, scaled, with its tissue code; no parameters
    module = model.module
    assert sum(p.numel() for p in module.parameters()) == 0
    assert module.n_stored == train.n_obs
    np.testing.assert_array_equal(model.train_indices_, np.arange(train.n_obs))
    torch.testing.assert_close(module.data.double(), _scaled(model, train.X), rtol=0, atol=1e-5)
    codes = train.obs["tissue"].cat.codes.to_numpy()
    np.testing.assert_array_equal(module.data_cat[:, 0].numpy(), codes)


def test_train_size_holds_samples_out_stratified(gtex_split):
    train, _ = gtex_split
    model = _fit(train, ["tissue"], train_kwargs={"train_size": 0.8})
    n_val = len(model.validation_indices_)
    assert 0.15 * train.n_obs < n_val < 0.25 * train.n_obs
    assert model.module.n_stored == train.n_obs - n_val
    assert not set(model.train_indices_) & set(model.validation_indices_)
    # every tissue keeps training samples, and generation never resamples held-out ones
    synth = model.generate(400, seed=0)
    _, nearest, _, _ = _noise_ratios(model, synth, train)
    assert set(nearest) <= set(model.train_indices_)
    assert set(synth.obs["tissue"]) == set(train.obs["tissue"])


def test_noise_variance_must_be_non_negative(gtex_split):
    train, _ = gtex_split
    with pytest.raises(ValueError, match="noise_variance must be a finite number >= 0"):
        _fit(train, ["tissue"], noise_variance=-0.1)


# -- generation on GTEx -----------------------------------------------------------------------
def test_gtex_samples_are_real_samples_of_the_tissue_plus_noise(gtex_noise, gtex_split):
    train, _ = gtex_split
    tissues = gtex_noise.categories["tissue"]
    covariates = pd.DataFrame({"tissue": np.repeat(tissues, 8)})
    synth = gtex_noise.generate(covariates=covariates, seed=0)
    assert synth.shape == (len(covariates), train.n_vars)
    assert (synth.var_names == train.var_names).all()
    assert np.isfinite(synth.X).all()
    assert (synth.obs["tissue"].to_numpy() == covariates["tissue"].to_numpy()).all()
    ratios, nearest, pooled, count = _noise_ratios(gtex_noise, synth, train)
    # each sample is a real sample of the requested tissue...
    assert (train.obs["tissue"].to_numpy()[nearest] == synth.obs["tissue"].to_numpy()).all()
    # ...moved by noise of variance 0.1 per standardised gene: |noise|^2 / 0.1 ~ chi2(genes)
    # (GTEx has many genes near 0, where clipping would shrink the noise: ~150 of 467 are
    # far enough above 0 to count, at least 60 in every sample)
    assert count.min() >= 60
    assert pooled == pytest.approx(1.0, abs=0.03)
    assert ratios.min() > 0.5
    assert ratios.max() < 1.6
    # on the input's scale: non-negative like the input, gene means those of the data
    assert synth.X.min() >= 0
    assert np.corrcoef(synth.X.mean(0), np.asarray(train.X).mean(0))[0, 1] > 0.99


def test_unconditional_generation_resamples_the_training_samples(gtex_noise, gtex_split):
    train, _ = gtex_split
    synth = gtex_noise.generate(2000, seed=1)
    _, nearest, pooled, _ = _noise_ratios(gtex_noise, synth, train)
    # the covariates are those of the resampled real sample
    assert (train.obs["tissue"].to_numpy()[nearest] == synth.obs["tissue"].to_numpy()).all()
    assert pooled == pytest.approx(1.0, abs=0.03)
    # uniform resampling: about 2000/364 = 5.5 draws per sample, none far off
    counts = np.bincount(nearest, minlength=train.n_obs)
    assert (counts > 0).mean() > 0.98
    assert counts.max() < 20


def test_logistic_regression_on_noise_samples_recognises_held_out_tissues(gtex_noise, gtex_split):
    train, test = gtex_split
    synth = gtex_noise.generate(train.n_obs, seed=2)
    rv = sgs.metrics.reverse_validation(
        test, synth, "tissue", reference=train, classifier="logistic"
    )
    assert rv["reference_accuracy"] > 0.9
    assert rv["accuracy"] >= 0.8 * rv["reference_accuracy"], rv


def test_same_seed_same_samples_and_save_load_round_trip(gtex_noise, gtex_split, tmp_path):
    train, _ = gtex_split
    a, b = gtex_noise.generate(300, seed=11), gtex_noise.generate(300, seed=11)
    np.testing.assert_array_equal(a.X, b.X)
    pd.testing.assert_frame_equal(a.obs, b.obs)
    assert not np.array_equal(a.X, gtex_noise.generate(300, seed=12).X)
    # the same covariate rows with another seed: other noise (and other real samples)
    liver = {"tissue": "Liver"}
    l1 = gtex_noise.generate(20, covariates=liver, seed=1)
    l2 = gtex_noise.generate(20, covariates=liver, seed=2)
    assert not np.array_equal(l1.X, l2.X)

    gtex_noise.save(str(tmp_path / "noise"), overwrite=True)
    before = train.copy()
    loaded = NoiseAugmenter.load(str(tmp_path / "noise"), adata=train)
    assert loaded.is_trained_
    assert loaded.module.n_stored == gtex_noise.module.n_stored
    assert loaded.module.noise_variance == gtex_noise.module.noise_variance
    np.testing.assert_array_equal(loaded.generate(300, seed=11).X, a.X)
    np.testing.assert_array_equal(loaded.generate(20, covariates=liver, seed=1).X, l1.X)
    # the stored samples travel with the model: loading with other samples of the same genes
    # resamples the training samples all the same
    other = NoiseAugmenter.load(str(tmp_path / "noise"), adata=train[:40].copy())
    np.testing.assert_array_equal(other.generate(300, seed=11).X, a.X)
    # the user's AnnData is untouched by loading
    assert set(train.uns) == set(before.uns)
    assert set(train.obsm) == set(before.obsm)
    pd.testing.assert_frame_equal(train.obs, before.obs)


def test_unseen_category_is_a_clear_error_and_adata_is_unchanged(gtex, snapshot):
    snap = snapshot(gtex)
    model = _fit(gtex, ["tissue"])
    with pytest.raises(ValueError, match=r"Unknown categories for 'tissue': \['Kidney'\]"):
        model.generate(5, covariates={"tissue": "Kidney"}, seed=0)
    snap.assert_unchanged(gtex)


# -- bladderbatch: 57 x 22,283, cancer x batch ------------------------------------------------
def test_bladderbatch_generates_each_seen_combination(bladder_noise, bladder):
    combos = bladder.obs[["cancer", "batch"]].astype(str).drop_duplicates()
    covariates = combos.loc[combos.index.repeat(6)].reset_index(drop=True)
    synth = bladder_noise.generate(covariates=covariates, seed=0)
    assert synth.shape == (len(covariates), 22283)
    assert np.isfinite(synth.X).all()
    for key in ("cancer", "batch"):
        np.testing.assert_array_equal(synth.obs[key].astype(str), covariates[key])
    ratios, nearest, _pooled, count = _noise_ratios(bladder_noise, synth, bladder)
    # the nearest real sample has the requested cancer status and batch
    for key in ("cancer", "batch"):
        np.testing.assert_array_equal(
            bladder.obs[key].astype(str).to_numpy()[nearest], covariates[key].to_numpy()
        )
    # log2 microarray values never reach the clipping bound: all genes carry the noise,
    # |noise|^2 / 0.1 ~ chi2(22,283), i.e. ratio 1 +- 0.01 (one sd)
    assert count.min() > 22000
    assert np.abs(ratios - 1).max() < 0.05
    # RMA log2 scale, like the input (2.8 to 14.0)
    real = np.asarray(bladder.X)
    assert real.min() - 2 < synth.X.min()
    assert synth.X.max() < real.max() + 2
    assert np.corrcoef(synth.X.mean(0), real.mean(0))[0, 1] > 0.99


def test_bladderbatch_unseen_combination_is_a_clear_error(bladder, snapshot):
    adata = bladder.copy()
    snap = snapshot(adata)
    model = _fit(adata, ["cancer", "batch"])
    # both categories exist, but no 'Normal' sample was processed in batch 1
    assert not ((adata.obs["cancer"] == "Normal") & (adata.obs["batch"] == "1")).any()
    covariates = pd.DataFrame({"cancer": ["Normal", "Cancer"], "batch": ["1", "1"]})
    with pytest.raises(ValueError, match=r"no training sample.*'cancer': 'Normal'.*request one"):
        model.generate(covariates=covariates, seed=0)
    snap.assert_unchanged(adata)
    # the known combination alone is fine
    synth = model.generate(covariates=covariates.iloc[[1]], seed=3)
    assert synth.obs["cancer"].astype(str).tolist() == ["Cancer"]


def test_bladderbatch_save_load_round_trip(bladder_noise, bladder, tmp_path):
    before = bladder_noise.generate(50, seed=4)
    bladder_noise.save(str(tmp_path / "bladder"), overwrite=True)
    loaded = NoiseAugmenter.load(str(tmp_path / "bladder"), adata=bladder)
    np.testing.assert_array_equal(loaded.generate(50, seed=4).X, before.X)
    pd.testing.assert_frame_equal(loaded.generate(50, seed=4).obs, before.obs)


# -- continuous covariates: the nearest real samples ------------------------------------------
def test_continuous_covariate_resamples_the_nearest_real_samples(tcga_acc):
    model = _fit(tcga_acc, ["gender"], ["years_to_birth"])
    obs = tcga_acc.obs
    female = obs["gender"] == "female"
    ages = obs.loc[female, "years_to_birth"].to_numpy(dtype=float)
    target = 50.0
    best = np.abs(ages - target).min()
    expected = np.flatnonzero(female.to_numpy() & (np.abs(obs["years_to_birth"] - target) == best))
    synth = model.generate(40, covariates={"gender": "female", "years_to_birth": target}, seed=0)
    assert (synth.obs["years_to_birth"] == target).all()
    _, nearest, pooled, _ = _noise_ratios(model, synth, tcga_acc)
    assert set(nearest) == set(expected)  # all the ties get drawn, nothing else
    assert pooled == pytest.approx(1.0, abs=0.05)
