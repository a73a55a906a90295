"""DDPM: the diffusion process and samplers are exact, the model learns GTEx tissues."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import scgensynth as sgs
from scgensynth.module import DDPMModule, GaussianDiffusion, beta_schedule
from scgensynth.nn import ConditionalDenoiser, sinusoidal_embedding

QUIET = {"enable_progress_bar": False}
STEPS = 3000


def _logistic():
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


# -- the process ------------------------------------------------------------------------------
def test_beta_schedules():
    lin = beta_schedule("linear", 1000)
    quad = beta_schedule("quadratic", 1000)
    assert lin[0] == pytest.approx(1e-4)
    assert lin[-1] == pytest.approx(0.02)
    assert quad[0] == pytest.approx(1e-4)
    assert quad[-1] == pytest.approx(0.02)
    assert np.all(np.diff(lin) > 0)
    assert np.all(np.diff(quad) > 0)
    assert np.all(quad[1:-1] < lin[1:-1])  # the quadratic schedule adds noise more slowly
    with pytest.raises(ValueError, match="linear"):
        beta_schedule("cosine", 1000)
    with pytest.raises(ValueError, match="beta_start"):
        beta_schedule("linear", 1000, beta_start=0.1, beta_end=0.01)


def test_forward_process_has_the_closed_form_moments():
    d = GaussianDiffusion(1000)
    x0 = torch.full((20000, 2), 3.0)
    t = torch.full((20000,), 400)
    xt = d.q_sample(x0, t, torch.randn_like(x0))
    a = float(d.alphas_cumprod[400])
    assert float(xt.mean()) == pytest.approx(3.0 * a**0.5, abs=0.02)
    assert float(xt.std()) == pytest.approx((1 - a) ** 0.5, abs=0.02)
    assert float(d.alphas_cumprod[-1]) < 1e-3  # x_T is (almost) pure noise


def _gaussian_oracle(d: GaussianDiffusion, mu: float, s: float):
    """The exact E[ε | x_t] when x_0 ~ N(mu, s² I)."""

    def eps_fn(x, t):
        a = d.alphas_cumprod[t][:, None]
        return (1 - a).sqrt() * (x - a.sqrt() * mu) / (a * s**2 + 1 - a)

    return eps_fn


@pytest.mark.parametrize(
    ("sampler", "kwargs", "rel"),
    [
        ("ddpm", {}, 0.02),
        ("ddim", {"n_steps": 1000, "eta": 0.0}, 0.02),
        ("ddim", {"n_steps": 1000, "eta": 1.0}, 0.02),
        # few steps shrink the spread a little (x̂_0 is a posterior mean): 0.471 at 50 steps
        ("ddim", {"n_steps": 50, "eta": 0.0}, 0.08),
    ],
)
def test_samplers_recover_a_gaussian_with_the_exact_noise_predictor(sampler, kwargs, rel):
    d = GaussianDiffusion(1000, "linear")
    mu, s = 2.0, 0.5
    gen = torch.Generator().manual_seed(0)
    x_T = torch.randn(4000, 3, generator=gen)
    eps_fn = _gaussian_oracle(d, mu, s)
    if sampler == "ddpm":
        x = d.sample_ddpm(eps_fn, x_T, generator=gen)
    else:
        x = d.sample_ddim(eps_fn, x_T, generator=gen, **kwargs)
    assert float(x.mean()) == pytest.approx(mu, abs=0.03)
    assert float(x.std()) == pytest.approx(s, rel=rel)
    # a wrong predictor (data variance 1 instead of 0.25) is caught
    wrong = d.sample_ddim(_gaussian_oracle(d, mu, 1.0), x_T, n_steps=1000)
    assert float(wrong.std()) > 0.9


def test_ddim_with_all_steps_and_eta_one_is_ancestral_ddpm():
    """σ(η=1) equals the posterior std, so both samplers take identical steps."""
    d = GaussianDiffusion(100, "quadratic", beta_end=0.05)

    def eps_fn(x, t):
        return 0.3 * x + torch.sin(t.float())[:, None] / 10

    x_T = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    a = d.sample_ddpm(eps_fn, x_T, generator=torch.Generator().manual_seed(2))
    b = d.sample_ddim(
        eps_fn, x_T, n_steps=100, eta=1.0, generator=torch.Generator().manual_seed(2)
    )
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_ddim_timesteps():
    d = GaussianDiffusion(1000)
    steps = d.ddim_timesteps(50)
    assert len(steps) == 50
    assert steps[0] == 999
    assert steps[-1] == 0
    assert np.all(np.diff(steps) < 0)
    with pytest.raises(ValueError, match="n_sampling_steps"):
        d.ddim_timesteps(0)
    with pytest.raises(ValueError, match="n_sampling_steps"):
        d.ddim_timesteps(1001)


def test_time_embedding_and_denoiser_shapes():
    emb = sinusoidal_embedding(torch.tensor([0, 1, 500]), 9)
    assert emb.shape == (3, 9)
    torch.testing.assert_close(emb[0, :4], torch.ones(4))  # cos(0)
    assert not torch.allclose(emb[1], emb[2])
    net = ConditionalDenoiser(30, n_cats_per_cov=[4, 2], n_continuous=1, n_hidden=16, n_blocks=2)
    assert net.embedding.n_output == 3 + 2 + 1  # sqrt-sized embeddings + the continuous one
    x, t = torch.randn(5, 30), torch.tensor([0, 10, 100, 500, 999])
    cat, cont = torch.tensor([[0, 1], [1, 0], [2, 1], [3, 0], [0, 0]]), torch.randn(5, 1)
    drop = torch.tensor([True, False, False, False, True])
    out = net(x, t, cat, cont, drop_condition=drop)
    assert out.shape == (5, 30)
    # a dropped row does not depend on its covariates
    cat2 = cat.clone()
    cat2[0] = torch.tensor([3, 1])
    torch.testing.assert_close(net(x, t, cat2, cont, drop_condition=drop)[0], out[0])
    assert not torch.allclose(net(x, t, cat2, cont)[0], net(x, t, cat, cont)[0])


def test_weight_average_update():
    module = DDPMModule(n_input=6, n_hidden=8, n_blocks=1, ema_decay=0.99)
    with torch.no_grad():
        for p in module.denoiser.parameters():
            p.add_(1.0)
    before = [p.clone() for p in module.ema_denoiser.parameters()]
    module.update_ema()  # first update: decay min(0.99, 1/10) = 0.1
    for b, e, p in zip(before, module.ema_denoiser.parameters(), module.denoiser.parameters()):
        torch.testing.assert_close(e, 0.1 * b + 0.9 * p)
    assert int(module.ema_updates) == 1
    assert not any(p.requires_grad for p in module.ema_denoiser.parameters())


def test_bad_sampling_settings():
    module = DDPMModule(n_input=6, n_cats_per_cov=[2], n_hidden=8, n_blocks=1)
    cat = torch.tensor([[0]])
    with pytest.raises(ValueError, match="sampler"):
        module.generate_scaled(1, cat, sampler="euler")
    with pytest.raises(ValueError, match="eta"):
        module.generate_scaled(1, cat, eta=-1)
    with pytest.raises(ValueError, match="guidance_scale"):
        module.generate_scaled(1, cat, guidance_scale=-2)
    no_dropout = DDPMModule(n_input=6, n_cats_per_cov=[2], n_hidden=8, n_blocks=1, p_uncond=0)
    with pytest.raises(ValueError, match="p_uncond"):
        no_dropout.generate_scaled(1, cat, guidance_scale=2.0)
    with pytest.raises(ValueError, match="p_uncond"):
        DDPMModule(n_input=6, p_uncond=1.0)
    with pytest.raises(ValueError, match="ema_decay"):
        DDPMModule(n_input=6, ema_decay=1.0)


# -- the model on GTEx ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(gtex_split):
    train, _ = gtex_split
    return sgs.tl.train_ddpm(
        train, categorical_covariate_keys=["tissue"], n_steps=STEPS, lr=2e-3, selection=None,
        seed=0,
        **QUIET,
    )  # fmt: skip


@pytest.mark.slow
def test_ddim_samples_train_a_classifier_of_real_tissues(trained, gtex_split):
    """TSTR with DDIM-50 samples reaches >= 0.85 of the real-trained accuracy."""
    train, test = gtex_split
    synth = trained.generate(train.n_obs, seed=1)
    assert synth.uns["sgs"]["sampler"] == "ddim"
    assert synth.uns["sgs"]["n_sampling_steps"] == 50
    y = test.obs["tissue"].astype(str)
    real = (_logistic().fit(train.X, train.obs["tissue"].astype(str)).predict(test.X) == y).mean()
    tstr = (_logistic().fit(synth.X, synth.obs["tissue"].astype(str)).predict(test.X) == y).mean()
    assert tstr >= 0.85 * real, (tstr, real)


@pytest.mark.slow
def test_every_sampler_generates_the_requested_tissues(trained, real_classifier):
    tissues = trained.categories["tissue"]
    covariates = pd.DataFrame({"tissue": np.repeat(tissues, 8)})
    for kwargs in ({"sampler": "ddpm"}, {"eta": 1.0, "n_sampling_steps": 100}, {}):
        synth = trained.generate(covariates=covariates, seed=2, **kwargs)
        hit = (real_classifier.predict(synth.X) == synth.obs["tissue"].astype(str)).mean()
        assert hit >= 0.6, (kwargs, hit)  # chance: 1/26; measured 0.73-0.84
        if kwargs.get("sampler") == "ddpm":
            assert synth.uns["sgs"]["n_sampling_steps"] == 1000


@pytest.mark.slow
def test_classifier_free_guidance(trained, real_classifier):
    """w = 0 ignores the tissue (the null condition was learned), w = 2 sharpens it."""
    tissues = trained.categories["tissue"]
    covariates = pd.DataFrame({"tissue": np.repeat(tissues, 8)})

    def hit(w):
        synth = trained.generate(covariates=covariates, seed=3, guidance_scale=w)
        assert np.isfinite(synth.X).all()
        return (real_classifier.predict(synth.X) == synth.obs["tissue"].astype(str)).mean()

    unconditional, conditional, guided = hit(0.0), hit(1.0), hit(2.0)
    # measured: 0.04 (chance is 1/26), 0.78, 0.92
    assert unconditional < 0.2, unconditional
    assert conditional >= 0.6, conditional
    assert guided >= conditional + 0.05, (conditional, guided)


def test_history_records_the_diffusion_loss(trained):
    loss = trained.history["diffusion_loss"].to_numpy().ravel()
    assert loss[-1] < 0.5 * loss[0], loss
    assert "diffusion_loss_validation" in trained.history


def test_deterministic_ddim_and_seeds(trained):
    a = trained.generate(10, seed=4)
    np.testing.assert_array_equal(a.X, trained.generate(10, seed=4).X)
    assert not np.allclose(a.X, trained.generate(10, seed=5).X)


def test_save_load_round_trip(trained, gtex_split, tmp_path):
    path = tmp_path / "ddpm"
    trained.save(str(path))
    back = sgs.model.load_model(str(path), adata=gtex_split[0])
    assert type(back) is sgs.model.DDPM
    np.testing.assert_array_equal(trained.generate(20, seed=6).X, back.generate(20, seed=6).X)
    np.testing.assert_array_equal(
        trained.generate(5, seed=6, eta=1.0, n_sampling_steps=10).X,
        back.generate(5, seed=6, eta=1.0, n_sampling_steps=10).X,
    )


@pytest.mark.slow
def test_interpolation_walks_from_one_tissue_to_the_other(
    trained, real_classifier, gtex_split, check_walk
):
    """With guidance 2 (as the short-trained model needs for >= 80% endpoint fidelity)."""
    train, _ = gtex_split
    kw = {"steps": 5, "n_per_step": 60, "guidance_scale": 2.0}
    walk = sgs.tl.interpolate(trained, "tissue", "Blood", "Blood Vessel", **kw)
    assert walk.uns["sgs"]["guidance_scale"] == 2.0
    check_walk(walk, real_classifier, train, "Blood", "Blood Vessel")
    # DDIM with eta=0 is deterministic given x_T: each path is one individual
    again = sgs.tl.interpolate(trained, "tissue", "Blood", "Blood Vessel", **kw)
    np.testing.assert_array_equal(walk.X, again.X)


def test_wide_data_with_two_covariates(bladderbatch, snapshot):
    snap = snapshot(bladderbatch)
    model = sgs.tl.train_ddpm(
        bladderbatch, categorical_covariate_keys=["cancer", "batch"], n_steps=20,
        batch_size=16, n_hidden=32, n_blocks=1, selection=None, seed=0, **QUIET,
    )  # fmt: skip
    snap.assert_unchanged(bladderbatch, new_uns=("ddpm",))
    synth = model.generate(4, covariates={"cancer": "Normal", "batch": "2"}, seed=0)
    assert synth.shape == (4, 22_283)
    assert np.isfinite(synth.X).all()
    guided = model.generate(4, covariates={"cancer": "Normal", "batch": "2"}, guidance_scale=3)
    assert np.isfinite(guided.X).all()
    with pytest.raises(ValueError, match="embedding_dims"):
        sgs.tl.train_ddpm(
            bladderbatch, categorical_covariate_keys=["cancer", "batch"], embedding_dims=[2],
            n_steps=1, **QUIET,
        )  # fmt: skip
