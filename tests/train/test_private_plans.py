"""DP-SGD plans of the CVAE and the DDPM on GTEx: per-sample gradients, bounded influence,
the budget, nothing private logged, resumable accounting, and learning at a huge epsilon."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from sklearn.model_selection import train_test_split
from tests.train.test_privacy import _Rows

from scgensynth.module import CVAEModule, DDPMModule
from scgensynth.train import (
    PoissonBatchSampler,
    PrivacyAccountant,
    PrivacySpec,
    PrivateCVAETrainingPlan,
    PrivateDDPMTrainingPlan,
    clipped_noisy_mean,
)

pytestmark = pytest.mark.filterwarnings("ignore:You defined a `validation_step`:UserWarning")

PLANS = {"cvae": PrivateCVAETrainingPlan, "ddpm": PrivateDDPMTrainingPlan}
LOSS = {"cvae": "elbo", "ddpm": "diffusion_loss"}


def _split(gtex):
    """Half training, a quarter public (scaling statistics), a quarter held out."""
    x = np.asarray(gtex.X, dtype=np.float32)
    y = gtex.obs["tissue"].cat.codes.to_numpy().astype(np.int64)
    train, rest = train_test_split(np.arange(len(y)), test_size=0.5, stratify=y, random_state=0)
    public, test = train_test_split(rest, test_size=0.5, stratify=y[rest], random_state=0)
    return x, y, train, public, test


def _module(kind: str, x_public: np.ndarray, **kw):
    torch.manual_seed(0)
    n_genes = x_public.shape[1]
    if kind == "cvae":
        args = {"n_latent": 16, "n_hidden": 128, "n_layers": 1, "dropout_rate": 0.0}
        module = CVAEModule(
            n_genes, [26], use_batch_norm=False, use_layer_norm=True, **{**args, **kw}
        )
    else:
        args = {"n_hidden": 64, "n_blocks": 1, "n_time_embedding": 32, "n_sampling_steps": 10}
        module = DDPMModule(n_genes, [26], **{**args, **kw})
    sd = x_public.std(0)
    module.scaling.set_statistics(x_public.mean(0), np.where(sd > 0, sd, 1.0), sd == 0)
    return module


def _accountant(n_train: int, n_steps: int, epsilon: float, batch: float = 32.0):
    spec = PrivacySpec.from_user({"epsilon": epsilon}).resolve(n_train)
    return PrivacyAccountant(spec, sample_rate=batch / n_train, n_steps=n_steps)


def _fit(plan, x, y, *, max_steps: int, empty_batch: bool = False, validation=None):
    """Train ``plan`` with Lightning on Poisson batches (one batch emptied if asked)."""
    n, q = len(x), plan.accountant.sample_rate
    batches = list(PoissonBatchSampler(n, sample_rate=q, n_batches=round(1 / q), seed=0))
    if empty_batch:
        batches[2] = []
    loader = torch.utils.data.DataLoader(
        _Rows(x, y), batch_sampler=batches, collate_fn=lambda b: b
    )
    torch.manual_seed(0)
    trainer = pl.Trainer(
        max_steps=max_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    val = None
    if validation is not None:
        val = torch.utils.data.DataLoader(
            _Rows(*validation), batch_size=64, collate_fn=lambda b: b
        )
    trainer.fit(plan, loader, val)
    return trainer


def _batch(kind: str, plan, x_scaled: torch.Tensor, cat: torch.Tensor, gen: torch.Generator):
    """A mini-batch with its randomness drawn once (to evaluate it several times)."""
    n = x_scaled.shape[0]
    if kind == "cvae":
        return (x_scaled, cat, None, torch.randn(n, plan.module.n_latent, generator=gen), 0.7)
    t = torch.randint(0, plan.module.diffusion.n_timesteps, (n,), generator=gen)
    noise = torch.randn(x_scaled.shape, generator=gen)
    drop = torch.arange(n) % 3 == 0  # both groups: dropped covariates and kept ones
    return (x_scaled, cat, None, t, noise, drop)


def _rows(batch: tuple, rows) -> tuple:
    return tuple(b[rows] if isinstance(b, torch.Tensor) else b for b in batch)


# -- (1) per-sample gradients are those of the module's own loss, sample by sample -------------
def _cvae_reference(module, x, cat, eps, kl_weight, monkeypatch):
    """One sample's loss through the module's scvi-tools path, its ``z`` noise fixed."""
    from torch.distributions import Normal

    with monkeypatch.context() as mp:
        mp.setattr(Normal, "rsample", lambda d, sample_shape=(): d.loc + d.scale * eps)
        inference = module.inference(x, cat)
    generative = module.generative(inference["z"], cat)
    return module.loss({}, inference, generative, kl_weight=kl_weight).loss


def _ddpm_reference(module, x_scaled, cat, t, noise, drop, monkeypatch):
    """One sample's ``diffusion_loss`` with its time step, noise and drop fixed."""
    with monkeypatch.context() as mp:
        mp.setattr(module.diffusion, "sample_timesteps", lambda n, device=None: t)
        mp.setattr(torch, "randn_like", lambda v: noise)
        mp.setattr(torch, "rand", lambda n, device=None: torch.where(drop, 0.0, 1.0))
        return module.diffusion_loss(x_scaled, cat).sum()


@pytest.mark.parametrize("kind", ["cvae", "ddpm"])
def test_per_sample_gradients_equal_one_backward_per_sample(gtex, kind, monkeypatch):
    x, y, train, public, _ = _split(gtex)
    module = _module(kind, x[public], **({"p_uncond": 0.5} if kind == "ddpm" else {}))
    plan = PLANS[kind](module, _accountant(len(train), 10, 10.0), expected_batch_size=32)
    raw, cat = torch.from_numpy(x[train[:6]]), torch.from_numpy(y[train[:6], None])
    batch = _batch(kind, plan, module.scaling(raw), cat, torch.Generator().manual_seed(0))
    grads = plan.per_sample_gradients(*batch)
    if kind == "ddpm":  # the plan draws covariate drops at the module's rate
        assert plan.draw_randomness(4000)[2].float().mean() == pytest.approx(0.5, abs=0.03)
    params = dict(module.named_parameters())
    assert set(grads) == {k for k in params if kind == "cvae" or k.startswith("denoiser.")}
    for i in range(6):
        module.zero_grad()
        if kind == "cvae":
            _, _, _, eps, kl_weight = batch
            loss = _cvae_reference(module, raw[i : i + 1], cat[i : i + 1], eps[i], kl_weight,
                                   monkeypatch)  # fmt: skip
        else:
            one = _rows(batch, slice(i, i + 1))
            loss = _ddpm_reference(module, one[0], one[1], *one[3:], monkeypatch)
        loss.backward()
        for name, g in grads.items():
            expected = params[name].grad
            expected = torch.zeros_like(g[i]) if expected is None else expected
            torch.testing.assert_close(g[i], expected, rtol=1e-4, atol=1e-5, msg=name)


# -- (2) one sample's influence on an update is at most C --------------------------------------
@pytest.mark.parametrize("kind", ["cvae", "ddpm"])
def test_one_samples_influence_on_an_update_is_bounded(gtex, kind):
    x, y, train, public, _ = _split(gtex)
    module = _module(kind, x[public])
    plan = PLANS[kind](module, _accountant(len(train), 10, 10.0), expected_batch_size=40)
    x_scaled = module.scaling(torch.from_numpy(x[train[:40]]))
    cat = torch.from_numpy(y[train[:40], None])
    batch = _batch(kind, plan, x_scaled, cat, torch.Generator().manual_seed(0))
    outlier = (x_scaled * torch.where(torch.arange(40) == 0, 1e4, 1.0)[:, None], *batch[1:])

    def update(b):
        grads = plan.per_sample_gradients(*b)
        out = clipped_noisy_mean(
            grads, max_grad_norm=1.0, noise_multiplier=0.0, expected_batch_size=40
        )
        return torch.cat([v.flatten() for v in out.values()])

    without = update(_rows(batch, slice(1, None)))
    for b in (batch, outlier):
        change = (update(b) - without).norm() * 40  # undo the mean
        assert change <= 1.0 + 1e-4
    raw = plan.per_sample_gradients(*_rows(outlier, slice(0, 1)))
    assert torch.cat([v.flatten() for v in raw.values()]).norm() > 10  # unclipped: far more


# -- (3) a Lightning run spends the planned budget, logs nothing, resumes exactly --------------
@pytest.mark.parametrize("kind", ["cvae", "ddpm"])
def test_private_run_spends_the_planned_budget_and_logs_nothing_private(gtex, kind):
    x, y, train, public, _ = _split(gtex)
    module = _module(kind, x[public])
    accountant = _accountant(len(train), 20, 10.0)
    kw = {"lr_warmup_steps": 5} if kind == "ddpm" else {"n_steps_kl_warmup": 10}
    kw |= {"n_epochs_kl_warmup": None} if kind == "cvae" else {}
    plan = PLANS[kind](module, accountant, expected_batch_size=32, seed=3, **kw)
    before = [p.detach().clone() for p in module.parameters() if p.requires_grad]
    # more Lightning steps than planned: the plan stops when the budget is spent
    validation = (x[public], y[public])  # held-out samples: the caller's responsibility
    trainer = _fit(plan, x[train], y[train], max_steps=30, empty_batch=True, validation=validation)
    spent = accountant.spent()
    assert spent["steps"] == 20  # the empty batch counted: it was a step of noise only
    assert trainer.global_step == 20  # one Lightning step per private step
    assert 0.9 * 10 <= spent["epsilon"] <= 10 * 1.001
    assert set(trainer.logged_metrics) == {f"{LOSS[kind]}_validation"}  # nothing from training
    assert np.isfinite(float(trainer.logged_metrics[f"{LOSS[kind]}_validation"]))
    after = [p.detach() for p in module.parameters() if p.requires_grad]
    assert all(torch.isfinite(p).all() for p in after)
    assert all(not torch.equal(a, b) for a, b in zip(after, before))
    if kind == "ddpm":
        assert int(module.ema_updates) >= 20
    with torch.no_grad():
        samples = module.generate_scaled(26, torch.arange(26)[:, None])
    assert samples.shape == (26, x.shape[1])
    assert torch.isfinite(samples).all()
    # a restart continues the accounting exactly, and its noise from there
    checkpoint: dict = {}
    plan.on_save_checkpoint(checkpoint)
    again = _accountant(len(train), 20, 10.0)
    resumed = PLANS[kind](module, again, expected_batch_size=32, seed=3)
    resumed.on_load_checkpoint(checkpoint)
    assert resumed.accountant.spent() == spent
    assert resumed._noise_generator("cpu").initial_seed() == (3 * 1_000_003 + 20) * 65_537
    other = PLANS[kind](module, _accountant(len(train), 40, 10.0), expected_batch_size=32)
    with pytest.raises(ValueError, match="another run"):
        other.on_load_checkpoint(checkpoint)


# -- (4) what cannot be trained privately is refused -------------------------------------------
def test_private_cvae_refuses_batch_norm_saying_what_to_pass():
    accountant = _accountant(260, 10, 1.0)
    with pytest.raises(ValueError, match=r"batch norm.*use_batch_norm=False"):
        PrivateCVAETrainingPlan(CVAEModule(50, [3]), accountant, expected_batch_size=32)
    module = CVAEModule(50, [3], use_batch_norm=False, use_layer_norm=True)
    assert PrivateCVAETrainingPlan(module, accountant, expected_batch_size=32).module is module


def test_private_ddpm_refuses_a_global_gradient_clip():
    module = DDPMModule(20, n_hidden=16, n_blocks=1)
    with pytest.raises(ValueError, match="grad_clip must be None"):
        PrivateDDPMTrainingPlan(module, _accountant(260, 10, 1.0), expected_batch_size=32,
                                grad_clip=1.0)  # fmt: skip


# -- (5) with (almost) no noise, the plans learn GTEx -------------------------------------------
@pytest.mark.filterwarnings("ignore:Optimal order is the smallest alpha")
def test_private_cvae_learns_gtex_tissues_at_a_huge_epsilon(gtex):
    from sklearn.linear_model import LogisticRegression

    x, y, train, public, test = _split(gtex)
    module = _module("cvae", x[public])
    kw = {"lr": 3e-3, "n_epochs_kl_warmup": None, "n_steps_kl_warmup": 100}
    plan = PrivateCVAETrainingPlan(
        module, _accountant(len(train), 300, 1e6), expected_batch_size=32, **kw
    )
    _fit(plan, x[train], y[train], max_steps=300)
    module.eval()
    labels = torch.arange(26).repeat_interleave(40)[:, None]
    with torch.no_grad():
        synth = module.generate_scaled(
            len(labels), labels, generator=torch.Generator().manual_seed(0)
        )
        real = module.scaling(torch.from_numpy(x[test]))
    clf = LogisticRegression(max_iter=2000).fit(synth.numpy(), labels[:, 0].numpy())
    assert clf.score(real.numpy(), y[test]) > 0.4  # 26 tissues, chance 0.04 (measured 0.72)


@pytest.mark.filterwarnings("ignore:Optimal order is the smallest alpha")
def test_private_ddpm_lowers_the_held_out_denoising_loss_at_a_huge_epsilon(gtex):
    x, y, train, public, test = _split(gtex)
    module = _module("ddpm", x[public])
    x0 = module.scaling(torch.from_numpy(x[test]))
    cat = torch.from_numpy(y[test, None])
    gen = torch.Generator().manual_seed(1)
    t = torch.randint(0, module.diffusion.n_timesteps, (len(x0),), generator=gen)
    noise = torch.randn(x0.shape, generator=gen)

    def held_out_loss() -> float:
        with torch.no_grad():
            eps = module.denoiser(module.diffusion.q_sample(x0, t, noise), t, cat)
        return float(((eps - noise) ** 2).mean())

    initial = held_out_loss()
    plan = PrivateDDPMTrainingPlan(
        module, _accountant(len(train), 150, 1e6), expected_batch_size=32, lr=3e-3,
        lr_warmup_steps=20,
    )  # fmt: skip
    _fit(plan, x[train], y[train], max_steps=150)
    module.eval()
    assert held_out_loss() < 0.5 * initial  # measured 1.13 -> 0.27
