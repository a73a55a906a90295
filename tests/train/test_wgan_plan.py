"""WGAN-GP training plans in mixed precision: the gradient penalty stays float32 and finite."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import scgensynth as sgs
from scgensynth.module import WGANGPModule
from scgensynth.train._wgan_plan import _one_critic_loss

N_GENES = 20


@pytest.mark.parametrize("name", ["wgan", "attgan"])
def test_bf16_mixed_training_has_a_float32_penalty_and_finite_losses(gtex, name, monkeypatch):
    """Lightning's ``precision="bf16-mixed"`` on the CPU: autocast is on in the critic step,
    the penalty comes out in float32, every logged loss and the samples are finite."""
    calls: list[tuple[bool, torch.dtype]] = []
    penalty = WGANGPModule.gradient_penalty

    def spy(self, *args, **kwargs):
        out = penalty(self, *args, **kwargs)
        calls.append((torch.is_autocast_enabled("cpu"), out.dtype))
        return out

    monkeypatch.setattr(WGANGPModule, "gradient_penalty", spy)
    model = sgs.tl.train(
        gtex, name, categorical_covariate_keys=["tissue"], n_steps=10, seed=0,
        n_hidden=(32, 32), selection=None, enable_progress_bar=False, precision="bf16-mixed",
    )  # fmt: skip
    assert calls
    assert all(calls_autocast for calls_autocast, _ in calls)
    assert all(dtype == torch.float32 for _, dtype in calls)
    history = model.history_
    for key in ("critic_loss", "wasserstein", "gradient_penalty", "generator_loss"):
        values = np.asarray(history[key], dtype=float)
        assert values.size, key
        assert np.isfinite(values).all(), key
    assert np.isfinite(model.generate(20, seed=0).X).all()


def _private_setting():
    torch.manual_seed(0)
    module = WGANGPModule(N_GENES, n_cats_per_cov=[3], n_latent=4,
                          n_hidden_generator=(16,), n_hidden_critic=(16,))  # fmt: skip
    gen = torch.Generator().manual_seed(1)
    real = torch.randn(N_GENES, generator=gen)
    fake = torch.randn(N_GENES, generator=gen)
    eps = torch.rand(1, generator=gen)
    cat = torch.tensor([2])
    return module, real, fake, eps, cat


def test_private_per_sample_penalty_runs_in_float32_under_autocast():
    module, real, fake, eps, cat = _private_setting()
    seen: list[torch.dtype] = []
    last = [m for m in module.critic.modules() if isinstance(m, torch.nn.Linear)][-1]
    handle = last.register_forward_hook(lambda mod, args, out: seen.append(out.dtype))
    loss = _one_critic_loss(10.0, has_cat=True, has_cont=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(module.critic_score, real, fake.bfloat16(), eps, cat)
    handle.remove()
    # penalty first (float32, inside torch.func.grad), then the two Wasserstein scores
    assert seen == [torch.float32, torch.bfloat16, torch.bfloat16]
    assert torch.isfinite(value)


def test_private_per_sample_loss_is_unchanged_in_float32():
    module, real, fake, eps, cat = _private_setting()

    def score(x):
        return module.critic_score(x[None], cat[None], None).sum()

    interp = eps * real + (1 - eps) * fake
    grad = torch.func.grad(score)(interp)
    expected = score(fake) - score(real) + 10.0 * (grad.norm() - 1) ** 2
    got = _one_critic_loss(10.0, has_cat=True, has_cont=False)(
        module.critic_score, real, fake, eps, cat
    )
    assert torch.equal(got, expected)
