"""WGAN-GP's gradient penalty: float32 under autocast, and unchanged in float32."""

from __future__ import annotations

import pytest
import torch

from scgensynth.module import AttGANModule, WGANGPModule

N_GENES = 30


def _module(kind: str = "wgan", **kwargs) -> WGANGPModule:
    torch.manual_seed(0)
    common = {"n_cats_per_cov": [3], "n_continuous_cov": 1, "n_latent": 4,
              "n_hidden_generator": (16,), "n_hidden_critic": (16,), **kwargs}  # fmt: skip
    if kind == "attgan":
        src, dst = torch.arange(1, N_GENES), torch.arange(N_GENES - 1)
        return AttGANModule(N_GENES, graph=(src, dst), **common)
    return WGANGPModule(N_GENES, **common)


def _batch(n: int = 8, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, N_GENES, generator=gen)
    cat = torch.randint(3, (n, 1), generator=gen)
    cont = 20 + 50 * torch.rand(n, 1, generator=gen)
    return x, cat, cont


def _critic_output_dtypes(module) -> tuple[list[torch.dtype], list]:
    """Dtypes of the critic's last layer output, one per critic call (a forward hook)."""
    seen: list[torch.dtype] = []
    last = [m for m in module.critic.modules() if isinstance(m, torch.nn.Linear)][-1]
    handle = last.register_forward_hook(lambda mod, args, out: seen.append(out.dtype))
    return seen, handle


@pytest.mark.parametrize(("kind", "n_components"), [("wgan", None), ("wgan", 8), ("attgan", None)])
def test_penalty_runs_in_float32_under_bf16_autocast(kind, n_components, monkeypatch):
    """Under autocast the Wasserstein term runs in bfloat16, the penalty's critic call and
    gradient in float32 (the 16-mixed case on a GPU: float16 there)."""
    module = _module(kind, n_components=n_components)
    if module.subspace is not None:
        module.subspace.fit(torch.randn(40, N_GENES))
    x, cat, cont = _batch()
    grads: list[torch.Tensor] = []
    autograd_grad = torch.autograd.grad

    def spy(outputs, inputs, *args, **kwargs):
        out = autograd_grad(outputs, inputs, *args, **kwargs)
        grads.extend(out)
        return out

    monkeypatch.setattr(torch.autograd, "grad", spy)
    dtypes, handle = _critic_output_dtypes(module)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = module.critic_loss(x, cat, cont)
    handle.remove()
    assert dtypes == [torch.bfloat16, torch.bfloat16, torch.float32]  # real, fake, penalty
    assert [g.dtype for g in grads] == [torch.float32]
    assert out["penalty"].dtype == torch.float32
    assert all(torch.isfinite(v) for v in out.values())
    # the penalty's gradient reaches the critic's (float32) weights
    out["loss"].backward()
    assert all(
        p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()
        for p in module.critic.parameters()
    )


def test_penalty_under_autocast_is_the_float32_penalty():
    module = _module()
    x, cat, cont = _batch()
    fake = module.generate_scaled(8, cat, cont).detach().to(torch.bfloat16)
    eps = torch.rand(8, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = module.gradient_penalty(x, fake, eps, cat, cont)
    plain = module.gradient_penalty(x, fake.float(), eps, cat, cont)
    assert torch.equal(mixed, plain)
    # what the critic gives in bfloat16 differs: the block above is what makes them equal
    with torch.autocast("cpu", dtype=torch.bfloat16):
        interp = (eps * x + (1 - eps) * fake.float()).requires_grad_(True)
        score = module.critic_score(interp, cat, cont)
    assert score.dtype == torch.bfloat16


def test_float32_penalty_is_unchanged():
    """In float32 the penalty is, bit for bit, the formula computed inline (as before)."""
    module = _module()
    x, cat, cont = _batch()
    with torch.no_grad():
        fake = module.generate_scaled(8, cat, cont)
    eps = torch.rand(8, 1)
    interp = (eps * x + (1 - eps) * fake).requires_grad_(True)
    score = module._critic(interp, cat, cont)
    (grad,) = torch.autograd.grad(score.sum(), interp, create_graph=True)
    expected = ((grad.norm(2, dim=1) - 1) ** 2).mean()
    got = module.gradient_penalty(x, fake, eps, cat, cont)
    assert torch.equal(got, expected)
    # and so is its gradient with respect to the critic's weights (the last bias gets none)
    weights = list(module.critic.parameters())
    ours = torch.autograd.grad(got, weights, allow_unused=True)
    before = torch.autograd.grad(expected, weights, allow_unused=True)
    assert sum(g is not None for g in ours) >= len(weights) - 1
    for a, b in zip(ours, before, strict=True):
        assert (a is None and b is None) or torch.equal(a, b)
