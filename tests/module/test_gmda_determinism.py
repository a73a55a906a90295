"""GMDA's probe masses: gradients summed in a fixed order on both accumulation paths."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from scgensynth.module import GMDAModule
from scgensynth.nn import _attention


@pytest.fixture(params=["index_add", "sorted"])
def accumulation(request, monkeypatch) -> str:
    """``index_add_`` (the CPU path) or the sorted ``index_put_`` accumulation of CUDA."""
    if request.param == "sorted":
        monkeypatch.setattr(_attention, "SORTED_ACCUMULATION_DEVICES", frozenset({"cpu"}))
    return request.param


class _OpNames(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(str(func))
        return func(*args, **(kwargs or {}))


def _setting(seed: int = 0):
    """A module with a categorical and a continuous covariate, real rows, probes, fakes."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    module = GMDAModule(
        n_input=12, n_cats_per_cov=[3], n_continuous_cov=1, n_probe_genes=(1, 2, 3)
    )
    n = 60
    x = torch.randn(n, 12, generator=gen).clamp_min(0)
    cat = torch.randint(3, (n, 1), generator=gen)
    cont = torch.randn(n, 1, generator=gen)
    probes, _ = module.draw_probes(x, cat, cont, 400)
    fake = torch.randn(3 * n, 12, generator=gen)
    return module, probes, fake, cat.repeat(3, 1), cont.repeat(3, 1)


def _mass_and_gradient(module, probes, fake, cat, cont, weight):
    fake = fake.clone().requires_grad_(True)
    mass = module.mass(probes, fake, cat, cont)
    (grad,) = torch.autograd.grad((mass * weight).sum(), fake)
    return mass.detach(), grad


def test_mass_gradient_equals_dense_and_repeats_exactly(accumulation):
    module, probes, fake, cat, cont = _setting()
    weight = torch.randn(len(probes), generator=torch.Generator().manual_seed(1))
    mass, grad = _mass_and_gradient(module, probes, fake, cat, cont, weight)
    dense_fake = fake.clone().requires_grad_(True)
    dense = module.membership(probes, dense_fake, cat, cont).sum(-1)
    (grad_dense,) = torch.autograd.grad((dense * weight).sum(), dense_fake)
    torch.testing.assert_close(mass, dense.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad, grad_dense, rtol=1e-5, atol=1e-5)
    assert (grad != 0).any()
    for _ in range(3):
        again = _mass_and_gradient(module, probes, fake, cat, cont, weight)
        assert torch.equal(again[0], mass)
        assert torch.equal(again[1], grad)


def test_sorted_path_sums_gradients_without_index_add(monkeypatch):
    """On CUDA the probe dimensions' gradients are summed with ``index_put_`` (sorted,
    sequential), not ``index_add_`` (atomic additions there); the CPU keeps ``index_add_``."""
    module, probes, fake, cat, cont = _setting(2)
    weight = torch.randn(len(probes))
    with _OpNames() as cpu:
        expected = _mass_and_gradient(module, probes, fake, cat, cont, weight)
    assert any("index_add" in name for name in cpu.names)
    monkeypatch.setattr(_attention, "SORTED_ACCUMULATION_DEVICES", frozenset({"cpu"}))
    with _OpNames() as sorted_:
        got = _mass_and_gradient(module, probes, fake, cat, cont, weight)
    assert not any("index_add" in name or "scatter_add" in name for name in sorted_.names)
    assert any(name.startswith("aten.index_put") for name in sorted_.names)
    assert torch.equal(got[0], expected[0])  # the forward pass is the same computation
    torch.testing.assert_close(got[1], expected[1], rtol=1e-6, atol=1e-6)
