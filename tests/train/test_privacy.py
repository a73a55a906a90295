"""DP-SGD building blocks: budget validation, accounting against Opacus, clipping and noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from opacus.accountants import PRVAccountant, RDPAccountant

from scgensynth.train import (
    PoissonBatchSampler,
    PrivacyAccountant,
    PrivacySpec,
    PrivateWGANGPTrainingPlan,
    clip_rows,
    clipped_noisy_mean,
    per_sample_gradients,
    private_moments,
)
from scgensynth.train._privacy import RDP_ORDERS


def _critic(n_genes: int, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(n_genes, 16), torch.nn.LeakyReLU(0.2), torch.nn.Linear(16, 1)
    )


def _gtex_rows(gtex, n: int) -> torch.Tensor:
    x = np.log1p(np.asarray(gtex.X[:n], dtype=np.float32))
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    return torch.from_numpy(x)


def _critic_loss(call, real):
    """A WGAN-GP-like per-sample loss: score plus a gradient penalty (a double backward)."""

    def score(x):
        return call(x.unsqueeze(0)).sum()

    g = torch.func.grad(score)(real)
    return -score(real) + 10.0 * (g.norm() - 1.0) ** 2


# -- the budget ---------------------------------------------------------------------------------
def test_spec_resolves_delta_below_one_over_n():
    spec = PrivacySpec.from_user({"epsilon": 10}).resolve(518)
    assert spec.delta == pytest.approx(0.1 / 518)
    assert spec.delta < 1 / 518


@pytest.mark.parametrize(
    ("privacy", "match"),
    [
        ({"epsilon": 0}, "epsilon.*> 0"),
        ({"epsilon": -1}, "epsilon.*> 0"),
        ({"epsilon": float("inf")}, "privacy=None"),
        ({"delta": 1e-5}, "needs 'epsilon'"),
        ({"epsilon": 1, "max_grad_norm": 0}, "max_grad_norm"),
        ({"epsilon": 1, "accountant": "gdp"}, "accountant"),
        ({"epsilon": 1, "eps": 2}, "Unknown privacy key"),
    ],
)
def test_spec_rejects_bad_budgets(privacy, match):
    with pytest.raises(ValueError, match=match):
        PrivacySpec.from_user(privacy)


def test_spec_rejects_delta_not_below_one_over_n():
    spec = PrivacySpec.from_user({"epsilon": 3, "delta": 0.005})
    with pytest.raises(ValueError, match="not below 1/n"):
        spec.resolve(1000)
    assert spec.resolve(100).delta == 0.005


def test_spec_rejects_non_mappings():
    with pytest.raises(TypeError, match="privacy must be a dict"):
        PrivacySpec.from_user(10)


# -- the accountant -----------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "opacus_cls"), [("rdp", RDPAccountant), ("prv", PRVAccountant)])
def test_accountant_epsilon_matches_opacus(kind, opacus_cls):
    spec = PrivacySpec(epsilon=3.0, delta=1e-5, accountant=kind)
    accountant = PrivacyAccountant(spec, sample_rate=32 / 518, n_steps=2000)
    assert accountant.epsilon == 0.0
    accountant.step(2000)
    reference = opacus_cls()
    for _ in range(3):  # Opacus merges equal steps into one history entry
        reference.step(noise_multiplier=accountant.noise_multiplier, sample_rate=32 / 518)
    reference.history = [(accountant.noise_multiplier, 32 / 518, 2000)]
    orders = {"alphas": list(RDP_ORDERS)} if kind == "rdp" else {}
    expected = reference.get_epsilon(delta=1e-5, **orders)
    assert accountant.epsilon == pytest.approx(expected, rel=1e-9)
    # the planned noise spends (almost) the whole budget, and no more
    assert 0.9 * 3.0 <= accountant.epsilon <= 3.0 * 1.001


def test_accountant_spends_more_with_more_steps_and_less_noise():
    spec = PrivacySpec(epsilon=10.0, delta=1e-5)
    short = PrivacyAccountant(spec, sample_rate=0.05, n_steps=100)
    long = PrivacyAccountant(spec, sample_rate=0.05, n_steps=5000)
    assert long.noise_multiplier > short.noise_multiplier
    short.step(50)
    half = short.epsilon
    short.step(50)
    assert 0 < half < short.epsilon


def test_accountant_state_restores_exactly_and_refuses_another_plan():
    spec = PrivacySpec(epsilon=10.0, delta=1e-5)
    first = PrivacyAccountant(spec, sample_rate=0.05, n_steps=400)
    first.step(123)
    resumed = PrivacyAccountant(spec, sample_rate=0.05, n_steps=400)
    resumed.load_state_dict(first.state_dict())
    assert resumed.epsilon == first.epsilon
    resumed.step(277)
    first.step(277)
    assert resumed.spent() == first.spent()
    other = PrivacyAccountant(spec, sample_rate=0.1, n_steps=400)
    with pytest.raises(ValueError, match="another run"):
        other.load_state_dict(first.state_dict())


# -- Poisson sampling ---------------------------------------------------------------------------
def test_poisson_batches_have_the_expected_size_and_repeat_with_the_seed():
    sampler = PoissonBatchSampler(518, sample_rate=32 / 518, n_batches=200, seed=3)
    batches = list(sampler)
    sizes = np.array([len(b) for b in batches])
    assert len(batches) == 200
    assert abs(sizes.mean() - 32) < 2.0
    assert sizes.std() > 2  # sizes vary, as Poisson sampling must
    assert all(len(set(b)) == len(b) and all(0 <= i < 518 for i in b) for b in batches)
    again = PoissonBatchSampler(518, sample_rate=32 / 518, n_batches=200, seed=3)
    assert list(again) == batches
    assert list(sampler) != batches  # the next pass draws new batches


# -- per-sample gradients, clipping and noise ---------------------------------------------------
def test_per_sample_gradients_equal_one_backward_per_sample(gtex):
    x = _gtex_rows(gtex, 6)[:, :50]
    critic = _critic(50)
    grads = per_sample_gradients(critic, _critic_loss, x)
    for i in range(x.shape[0]):
        critic.zero_grad()
        _critic_loss(critic, x[i]).backward()
        for name, p in critic.named_parameters():
            torch.testing.assert_close(grads[name][i], p.grad, rtol=1e-4, atol=1e-5)


def test_one_samples_influence_on_an_update_is_bounded(gtex):
    x = _gtex_rows(gtex, 40)[:, :50]
    critic = _critic(50)
    outlier = x.clone()
    outlier[0] *= 1e4  # a sample that would dominate an unclipped update

    def update(batch):
        grads = per_sample_gradients(critic, _critic_loss, batch)
        out = clipped_noisy_mean(
            grads, max_grad_norm=1.0, noise_multiplier=0.0, expected_batch_size=40
        )
        return torch.cat([v.flatten() for v in out.values()])

    without = update(x[1:])
    for batch in (x, outlier):
        change = (update(batch) - without).norm() * 40  # undo the mean
        assert change <= 1.0 + 1e-4
    # unclipped, the outlier moves the update far more than C
    raw = per_sample_gradients(critic, _critic_loss, outlier[:1])
    assert torch.cat([v.flatten() for v in raw.values()]).norm() > 10


def test_noise_has_the_stated_scale():
    zeros = {"w": torch.zeros(5, 200, 100), "b": torch.zeros(5, 100)}
    gen = torch.Generator().manual_seed(0)
    out = clipped_noisy_mean(
        zeros, max_grad_norm=2.0, noise_multiplier=1.5, expected_batch_size=10, generator=gen
    )
    values = torch.cat([v.flatten() for v in out.values()])
    assert values.mean().abs() < 0.01
    assert values.std().item() == pytest.approx(1.5 * 2.0 / 10, rel=0.02)


def test_an_empty_poisson_batch_gives_noise_only():
    critic = _critic(7)
    grads = per_sample_gradients(critic, _critic_loss, torch.zeros(0, 7))
    assert {k: tuple(v.shape[1:]) for k, v in grads.items()} == {
        k: tuple(p.shape) for k, p in critic.named_parameters()
    }
    out = clipped_noisy_mean(grads, max_grad_norm=1.0, noise_multiplier=1.0, expected_batch_size=4)
    assert all(torch.isfinite(v).all() and v.abs().sum() > 0 for v in out.values())


# -- the private WGAN-GP plan -------------------------------------------------------------------
class _Rows(torch.utils.data.Dataset):
    """Mini-batches as scvi-tools' tensor dicts, any index list (empty too) at once."""

    def __init__(self, x: np.ndarray, codes: np.ndarray):
        self.x, self.codes = torch.from_numpy(x), torch.from_numpy(codes[:, None])

    def __len__(self) -> int:
        return len(self.x)

    def __getitems__(self, idx):
        idx = torch.as_tensor(idx, dtype=torch.long)
        return {"X": self.x[idx], "extra_categorical_covs": self.codes[idx]}


def _private_run(gtex, n_critic_steps: int, epsilon: float = 10.0):
    import lightning.pytorch as pl

    from scgensynth.module import WGANGPModule

    x = np.asarray(gtex.X, dtype=np.float32)
    codes = gtex.obs["tissue"].cat.codes.to_numpy().astype(np.int64)
    train, public = np.arange(0, len(x), 2), np.arange(1, len(x), 2)
    module = WGANGPModule(
        n_input=x.shape[1],
        n_cats_per_cov=[len(gtex.obs["tissue"].cat.categories)],
        n_hidden_generator=(64,),
        n_hidden_critic=(32,),
    )
    sd = x[public].std(0)
    module.scaling.set_statistics(x[public].mean(0), np.where(sd > 0, sd, 1.0), sd == 0)
    n, q = len(train), 32 / len(train)
    spec = PrivacySpec.from_user({"epsilon": epsilon}).resolve(n)
    accountant = PrivacyAccountant(spec, sample_rate=q, n_steps=n_critic_steps)
    plan = PrivateWGANGPTrainingPlan(module, accountant, expected_batch_size=q * n, n_critic=2)
    batches = PoissonBatchSampler(n, sample_rate=q, n_batches=round(1 / q), seed=0)
    loader = torch.utils.data.DataLoader(
        _Rows(x[train], codes[train]), batch_sampler=batches, collate_fn=lambda b: b
    )
    torch.manual_seed(0)
    trainer = pl.Trainer(
        max_steps=n_critic_steps + n_critic_steps // 2,  # Lightning counts both optimisers
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(plan, loader)
    return plan, trainer


def test_private_wgan_spends_the_planned_budget_and_logs_nothing_private(gtex):
    plan, trainer = _private_run(gtex, n_critic_steps=40)
    spent = plan.accountant.spent()
    assert spent["steps"] == 40
    assert 0.9 * 10 <= spent["epsilon"] <= 10 * 1.001
    assert set(trainer.logged_metrics) <= {"generator_loss"}
    cat = torch.arange(26)[:, None]
    with torch.no_grad():
        samples = plan.module.generate_scaled(26, cat)
    assert torch.isfinite(samples).all()
    # a restart continues the accounting exactly
    checkpoint: dict = {}
    plan.on_save_checkpoint(checkpoint)
    again = PrivacyAccountant(plan.accountant.spec, sample_rate=spent["sample_rate"], n_steps=40)
    resumed = PrivateWGANGPTrainingPlan(plan.module, again, expected_batch_size=32)
    resumed.on_load_checkpoint(checkpoint)
    assert resumed.accountant.spent() == spent
    assert resumed._critic_steps == plan._critic_steps


def test_private_wgan_refuses_a_subspace_fitted_on_private_data():
    from scgensynth.module import WGANGPModule

    spec = PrivacySpec(epsilon=1.0, delta=1e-4)
    accountant = PrivacyAccountant(spec, sample_rate=0.1, n_steps=10)
    with pytest.raises(ValueError, match="n_components"):
        PrivateWGANGPTrainingPlan(
            WGANGPModule(n_input=50, n_components=8), accountant, expected_batch_size=10
        )


# -- the Gaussian mechanism on moments ----------------------------------------------------------
def test_private_moments_without_noise_are_the_clipped_moments(gtex):
    z = _gtex_rows(gtex, 60)[:, :8].double()
    codes = torch.arange(60) % 3
    sums, second = private_moments(z, codes, 3, max_norm=2.0, noise_multiplier=0.0)
    clipped = clip_rows(z, 2.0)
    assert clipped.norm(dim=1).max() <= 2.0 + 1e-9
    for c in range(3):
        torch.testing.assert_close(sums[c], clipped[codes == c].sum(0))
    torch.testing.assert_close(second, clipped.T @ clipped)


def test_one_sample_moves_the_released_moments_by_at_most_the_sensitivity(gtex):
    z = _gtex_rows(gtex, 60)[:, :8].double()
    codes = torch.arange(60) % 3
    outlier = z.clone()
    outlier[0] *= 1e4
    kw = {"max_norm": 2.0, "noise_multiplier": 0.0}
    without = private_moments(z[1:], codes[1:], 3, **kw)
    for data in (z, outlier):
        sums, second = private_moments(data, codes, 3, **kw)
        assert (sums - without[0]).norm() <= 2.0 + 1e-9
        assert (second - without[1]).triu().norm() <= 2.0**2 + 1e-9


def test_private_moments_noise_has_the_stated_scale_and_covers_empty_classes():
    z = torch.zeros(10, 300, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    sums, second = private_moments(
        z, torch.zeros(10, dtype=torch.long), 4, max_norm=3.0, noise_multiplier=0.5, generator=gen
    )
    assert sums.std().item() == pytest.approx(1.5, rel=0.05)
    assert (sums[1:] != 0).all()  # classes without rows get noise too
    upper = second[torch.triu_indices(300, 300).unbind()]
    assert upper.std().item() == pytest.approx(4.5, rel=0.05)
    torch.testing.assert_close(second, second.T)
    with pytest.raises(ValueError, match="codes"):
        private_moments(z, torch.full((10,), 4), 4, max_norm=1.0, noise_multiplier=1.0)


def test_a_gaussian_from_private_moments_learns_gtex_tissues_at_epsilon_10(gtex):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    x = np.asarray(gtex.X, dtype=np.float64)
    y = gtex.obs["tissue"].cat.codes.to_numpy()
    train, rest = train_test_split(np.arange(len(y)), test_size=0.5, stratify=y, random_state=0)
    public, test = train_test_split(rest, test_size=0.5, stratify=y[rest], random_state=0)
    mu, sd = x[public].mean(0), x[public].std(0) + 1e-6
    _, _, vt = np.linalg.svd((x[public] - mu) / sd, full_matrices=False)
    basis = vt[:32].T  # a subspace from public samples only
    z = torch.from_numpy((x[train] - mu) / sd @ basis)
    c = float(np.quantile(np.linalg.norm((x[public] - mu) / sd @ basis, axis=1), 0.9))
    spec = PrivacySpec.from_user({"epsilon": 10}).resolve(len(train))
    sigma = PrivacyAccountant(spec, sample_rate=1.0, n_steps=2).noise_multiplier
    gen = torch.Generator().manual_seed(0)
    k = len(gtex.obs["tissue"].cat.categories)
    codes = torch.from_numpy(y[train]).long()
    sums, second = private_moments(z, codes, k, max_norm=c, noise_multiplier=sigma, generator=gen)
    counts = np.bincount(y[train], minlength=k)  # public covariate frequencies
    means = sums.numpy() / counts[:, None]
    pooled = (second.numpy() - (means.T * counts) @ means) / len(train)
    w, v = np.linalg.eigh(pooled)
    cov = (v * np.clip(w, 1e-3, None)) @ v.T
    rng = np.random.default_rng(0)
    synth = np.vstack([rng.multivariate_normal(m, cov, size=40) for m in means])
    labels = np.repeat(np.arange(k), 40)
    real_test = (x[test] - mu) / sd @ basis
    accuracy = LogisticRegression(max_iter=3000).fit(synth, labels).score(real_test, y[test])
    assert accuracy > 0.5  # 26 tissues: chance is 0.04 (measured 0.74)


def test_per_sample_gradients_say_when_no_parameter_matches():
    with pytest.raises(ValueError, match=r"No trainable parameter.*among parameters"):
        per_sample_gradients(
            torch.nn.Linear(3, 1), lambda call, x: call(x).sum(), torch.ones(4, 3),
            parameters=["critic.weight"],
        )  # fmt: skip
