"""Conditional vanilla GAN: its losses, training history, generation, save/load, bladderbatch."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scvi
import torch
import torch.nn.functional as F

import scgensynth as sgs
from scgensynth.model import GAN
from scgensynth.module import GANModule
from scgensynth.train import GANTrainingPlan

BLADDER = Path("/work/shared/data/bladderbatch.h5ad")
if not BLADDER.exists():
    BLADDER = Path(__file__).parents[3] / "shared" / "data" / "bladderbatch.h5ad"

QUIET = {"enable_progress_bar": False}


def _fit(adata, cat_keys, *, seed=0, n_hidden=(64, 64), n_latent=16, **train_kwargs):
    """Train a GAN on a private proxy of ``adata`` (which stays untouched)."""
    scvi.settings.seed = seed
    proxy = GAN.setup_proxy(adata, categorical_covariate_keys=list(cat_keys))
    model = GAN(proxy, n_hidden=n_hidden, n_latent=n_latent)
    model.train(**QUIET, **train_kwargs)
    return model


@pytest.fixture(scope="module")
def gtex_gan(gtex_split):
    train, _ = gtex_split
    return _fit(train, ["tissue"], n_steps=300, selection_every=60)


CAT = torch.tensor([[0], [1], [2], [0], [1], [2]])


def _loss_and_probabilities(module, x, cat):
    """The module's discriminator loss, and D(x) and D(G(z)) recomputed with the same noise."""
    torch.manual_seed(1)
    out = module.discriminator_loss(x, cat)
    torch.manual_seed(1)
    fake = module.generate_scaled(x.shape[0], cat)
    d_real = torch.sigmoid(module.discriminator_logit(x, cat))
    d_fake = torch.sigmoid(module.discriminator_logit(fake, cat))
    return out, d_real, d_fake


# -- losses and plan --------------------------------------------------------------------------
def test_losses_are_binary_cross_entropy_with_non_saturating_generator():
    torch.manual_seed(0)
    module = GANModule(
        n_input=20, n_cats_per_cov=[3], n_latent=4, n_hidden_generator=(8,), instance_noise=0.0
    )
    x, cat = torch.randn(6, 20), CAT
    out, d_real, d_fake = _loss_and_probabilities(module, x, cat)
    expected = -torch.log(d_real).mean() - torch.log(1 - d_fake).mean()
    torch.testing.assert_close(out["loss"], expected)
    torch.testing.assert_close(out["d_real"], d_real.mean())
    torch.testing.assert_close(out["d_fake"], d_fake.mean())
    # the generator minimises -log D(G(z)) (not log(1 - D(G(z))), which saturates)
    torch.manual_seed(2)
    g_loss = module.generator_loss(6, cat)
    torch.manual_seed(2)
    fake = module.generate_scaled(6, cat)
    logit = module.discriminator_logit(fake, cat)
    torch.testing.assert_close(g_loss, -F.logsigmoid(logit).mean())
    # no gradient penalty: the discriminator loss is the cross-entropy alone
    assert module.gp_weight == 0.0
    assert set(out) == {"loss", "d_real", "d_fake"}


def test_stabilisers_label_smoothing_and_instance_noise():
    torch.manual_seed(0)
    kw = {"n_input": 20, "n_cats_per_cov": [3], "n_latent": 4, "n_hidden_generator": (8,)}
    module = GANModule(**kw, label_smoothing=0.1, instance_noise=0.5)
    x, cat = torch.randn(6, 20), CAT
    # one-sided label smoothing: real targets 0.9, fake targets 0
    module.eval()  # no instance noise outside training
    out, d_real, d_fake = _loss_and_probabilities(module, x, cat)
    bce_real = -(0.9 * torch.log(d_real) + 0.1 * torch.log(1 - d_real)).mean()
    torch.testing.assert_close(out["loss"], bce_real - torch.log(1 - d_fake).mean())
    # instance noise: the discriminator sees noisy inputs only in training mode,
    # scaled by noise_scale (which the training plan anneals)
    clean = module.critic_score(x, cat)
    torch.testing.assert_close(module.discriminator_logit(x, cat), clean)
    module.train()
    torch.manual_seed(3)
    noisy = module.discriminator_logit(x, cat)
    torch.manual_seed(3)
    expected = module.critic_score(x + 0.5 * torch.randn_like(x), cat)
    torch.testing.assert_close(noisy, expected)
    module.noise_scale = 0.0
    torch.testing.assert_close(module.discriminator_logit(x, cat), module.critic_score(x, cat))
    for bad in ({"label_smoothing": 0.5}, {"instance_noise": -1.0}, {"dropout": 1.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            GANModule(**kw, **bad)


def test_instance_noise_is_annealed_to_zero(gtex_split, monkeypatch):
    train, _ = gtex_split
    scales = []
    original = GANModule.discriminator_loss

    def spy(self, *args, **kwargs):
        scales.append(self.noise_scale)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GANModule, "discriminator_loss", spy)
    model = _fit(train, ["tissue"], n_hidden=(16,), n_steps=120, selection=None)
    assert model.module.instance_noise > 0  # on by default
    assert scales[0] == 1.0
    assert 0 < scales[-1] < 0.2
    assert all(a >= b for a, b in itertools.pairwise(scales))


def test_plan_defaults_and_arguments():
    plan = GANTrainingPlan(GANModule(n_input=10))
    opt_d, opt_g = plan.configure_optimizers()
    for opt in (opt_d, opt_g):
        assert isinstance(opt, torch.optim.Adam)
        assert opt.defaults["betas"] == (0.5, 0.999)
    assert (opt_d.defaults["lr"], opt_g.defaults["lr"]) == (2e-4, 1e-3)
    assert plan.n_critic == 1
    assert plan.anneal_instance_noise
    # the discriminator optimiser owns the discriminator and its embeddings, nothing else
    module = plan.module
    d_params = {id(p) for g in opt_d.param_groups for p in g["params"]}
    assert d_params == {id(p) for p in module.critic.parameters()} | {
        id(p) for p in module.critic_embedding.parameters()
    }
    rms = GANTrainingPlan(GANModule(n_input=10), optimizer="rmsprop", lr_critic=1e-3)
    assert isinstance(rms.configure_optimizers()[0], torch.optim.RMSprop)
    assert rms.configure_optimizers()[0].defaults["lr"] == 1e-3
    with pytest.raises(ValueError, match="n_critic must be >= 1"):
        GANTrainingPlan(GANModule(n_input=10), n_critic=0)


# -- GTEx -------------------------------------------------------------------------------------
def test_history_records_losses_and_the_discriminator_learns(gtex_gan):
    hist = gtex_gan.history
    keys = ("discriminator_loss", "generator_loss", "d_real", "d_fake")
    for key in (*keys, "discriminator_loss_validation", "d_real_validation"):
        assert key in hist, sorted(hist)
        assert np.isfinite(hist[key].to_numpy()).all()
    n_epochs = len(hist["discriminator_loss"])
    assert n_epochs >= 10
    d_real = hist["d_real"].iloc[:, 0].to_numpy()
    d_fake = hist["d_fake"].iloc[:, 0].to_numpy()
    d_loss = hist["discriminator_loss"].iloc[:, 0].to_numpy()
    # an untrained discriminator says 0.5 to everything (loss 2 ln 2); within ten epochs (120
    # steps) it tells real from generated samples, held-out real ones included, through the
    # instance noise (which slows it down on purpose)
    assert d_loss[0] == pytest.approx(2 * math.log(2), abs=0.15)
    late = slice(8, 13)
    assert d_real[late].mean() - d_fake[late].mean() > 0.05
    assert d_loss[late].mean() < d_loss[0] - 0.1
    val_real = hist["d_real_validation"].iloc[:, 0].to_numpy()
    val_fake = hist["d_fake_validation"].iloc[:, 0].to_numpy()
    assert val_real[late].mean() - val_fake[late].mean() > 0.05
    # model selection and the plotting work unchanged
    sel = gtex_gan.selection_
    assert {"epoch", "score", "correlation", "conditional", "fidelity"} <= set(sel.columns)
    assert gtex_gan.best_epoch_ == int(sel.loc[sel["score"].idxmax(), "epoch"])
    ax = sgs.pl.training_history(gtex_gan, keys=list(keys), show=False)
    assert {line.get_label() for line in ax.get_lines()} >= set(keys)


def test_gtex_generates_requested_tissues_on_the_input_scale(gtex_gan, gtex_split):
    train, _ = gtex_split
    tissues = gtex_gan.categories["tissue"]
    covariates = pd.DataFrame({"tissue": np.repeat(tissues, 10)})
    synth = gtex_gan.generate(covariates=covariates, seed=0)
    assert synth.shape == (len(covariates), train.n_vars)
    assert (synth.var_names == train.var_names).all()
    assert np.isfinite(synth.X).all()
    assert (synth.obs["tissue"].to_numpy() == covariates["tissue"].to_numpy()).all()
    # the scaling is inverted: non-negative like the input, gene means near the data's
    assert synth.X.min() >= 0
    real = np.asarray(train.X)
    assert np.corrcoef(synth.X.mean(0), real.mean(0))[0, 1] > 0.9
    # the requested tissue reaches the generator: the same noise gives other samples
    liver = gtex_gan.generate(5, covariates={"tissue": "Liver"}, seed=3)
    brain = gtex_gan.generate(5, covariates={"tissue": "Brain"}, seed=3)
    np.testing.assert_array_equal(
        liver.X, gtex_gan.generate(5, covariates={"tissue": "Liver"}, seed=3).X
    )
    assert np.abs(liver.X - brain.X).mean() > 1e-3


def test_training_arguments_reach_the_plan(gtex_split, monkeypatch):
    train, _ = gtex_split
    calls = {"discriminator": 0, "generator": 0}
    for name, method in (
        ("discriminator", "discriminator_loss"),
        ("generator", "generator_loss"),
    ):
        original = getattr(GANModule, method)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            if self.training:
                calls[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(GANModule, method, counted)
    model = _fit(
        train, ["tissue"], n_hidden=(16,), n_steps=24, selection=None, n_critic=3, lr_critic=1e-3
    )
    plan = model.trainer.lightning_module
    assert isinstance(plan, GANTrainingPlan)
    assert plan.n_critic == 3
    assert plan.configure_optimizers()[0].defaults["lr"] == 1e-3
    # three discriminator steps per generator step
    assert calls["discriminator"] >= 24
    assert calls["generator"] == calls["discriminator"] // 3
    with pytest.raises(TypeError, match=r"Unknown training argument\(s\) \['gp_weight'\]"):
        _fit(train, ["tissue"], n_steps=5, gp_weight=10.0)


def test_same_seed_gives_identical_model_and_samples(gtex_split):
    train, _ = gtex_split
    kw = {"n_hidden": (16, 16), "n_steps": 40, "selection": None}
    a, b = _fit(train, ["tissue"], **kw), _fit(train, ["tissue"], **kw)
    for key, value in a.module.state_dict().items():
        torch.testing.assert_close(value, b.module.state_dict()[key], rtol=0, atol=0)
    np.testing.assert_array_equal(a.generate(50, seed=0).X, b.generate(50, seed=0).X)
    c = _fit(train, ["tissue"], seed=1, **kw)
    assert not np.array_equal(a.generate(50, seed=0).X, c.generate(50, seed=0).X)


def test_save_load_round_trip_gives_identical_samples(gtex_gan, gtex_split, tmp_path):
    train, _ = gtex_split
    before = gtex_gan.generate(200, seed=11)
    gtex_gan.save(str(tmp_path / "gan"), overwrite=True)
    snapshot = train.copy()
    loaded = GAN.load(str(tmp_path / "gan"), adata=train)
    after = loaded.generate(200, seed=11)
    np.testing.assert_array_equal(before.X, after.X)
    pd.testing.assert_frame_equal(before.obs, after.obs)
    assert loaded.categories == gtex_gan.categories
    assert isinstance(loaded.module, GANModule)
    assert set(train.uns) == set(snapshot.uns)
    assert set(train.obsm) == set(snapshot.obsm)
    pd.testing.assert_frame_equal(train.obs, snapshot.obs)


def test_unknown_category_is_a_clear_error_and_adata_is_unchanged(gtex_gan, gtex, snapshot):
    snap = snapshot(gtex)
    with pytest.raises(ValueError, match=r"Unknown categories for 'tissue': \['Kidney'\]"):
        gtex_gan.generate(5, covariates={"tissue": "Kidney"}, seed=0)
    model = _fit(gtex, ["tissue"], n_hidden=(8,), n_steps=5, selection=None)
    with pytest.raises(KeyError, match=r"covariates lacks column\(s\) \['tissue'\]"):
        model.generate(covariates=pd.DataFrame({"organ": ["Liver"]}))
    snap.assert_unchanged(gtex)


# -- bladderbatch: 57 x 22,283, cancer x batch ------------------------------------------------
def test_bladderbatch_trains_and_generates_each_combination(snapshot, tmp_path):
    bladder = ad.read_h5ad(BLADDER)
    snap = snapshot(bladder)
    model = _fit(bladder, ["cancer", "batch"], n_hidden=(32, 32), n_steps=40, batch_size=16)
    snap.assert_unchanged(bladder)
    assert np.isfinite(model.history["discriminator_loss"].to_numpy()).all()
    combos = bladder.obs[["cancer", "batch"]].astype(str).drop_duplicates()
    covariates = combos.loc[combos.index.repeat(4)].reset_index(drop=True)
    synth = model.generate(covariates=covariates, seed=0)
    assert synth.shape == (len(covariates), 22283)
    assert np.isfinite(synth.X).all()
    for key in ("cancer", "batch"):
        np.testing.assert_array_equal(synth.obs[key].astype(str), covariates[key])
    # RMA log2 values (2.8 to 14.0), not standardised ones
    real = np.asarray(bladder.X)
    assert np.corrcoef(synth.X.mean(0), real.mean(0))[0, 1] > 0.9
    assert np.abs(synth.X.mean(0) - real.mean(0)).mean() < 1.0
    assert synth.X.min() > real.min() - 5
    assert synth.X.max() < real.max() + 5
    model.save(str(tmp_path / "bladder"), overwrite=True)
    loaded = GAN.load(str(tmp_path / "bladder"), adata=bladder)
    np.testing.assert_array_equal(loaded.generate(covariates=covariates, seed=0).X, synth.X)
    snap.assert_unchanged(bladder)
