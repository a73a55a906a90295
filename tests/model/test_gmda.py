"""GMDA: the probe loss by hand, persistence, widths, conditioning, and the model on real data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import scgensynth as sgs
import scgensynth.module._gmda as gmda_module
from scgensynth.model import GMDA
from scgensynth.module import GMDAModule
from scgensynth.module._gmda import (
    MIN_HALF_WIDTH,
    Probes,
    alignment_loss,
    distance_quantile,
    keep_hardest,
    run_distance_quantile,
    sort_runs,
)
from scgensynth.train import GMDATrainingPlan

QUIET = {"enable_progress_bar": False}


def _logistic():
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# -- the loss by hand -------------------------------------------------------------------------
def _probe(genes, centre, width, cat=None) -> Probes:
    genes = torch.tensor([genes])
    return Probes(
        genes=genes,
        active=torch.ones_like(genes, dtype=torch.bool),
        centre=torch.tensor([centre], dtype=torch.float32),
        half_width=torch.tensor([width], dtype=torch.float32),
        cat=None if cat is None else torch.tensor([cat]),
    )


def test_membership_and_probe_loss_by_hand():
    lam = 3.0
    module = GMDAModule(n_input=3, n_probe_genes=2, steepness=lam)
    probe = _probe([0, 2], [0.0, 0.0], [1.0, 2.0])
    x = torch.tensor(
        [
            [0.0, 9.0, 0.0],  # at the centre (gene 1 is not in the probe)
            [1.0, 0.0, 0.0],  # on the border of gene 0, centre of gene 2
            [0.5, 0.0, -1.0],  # half-way on both
            [5.0, 0.0, 0.0],  # far out on gene 0
        ]
    )
    got = module.membership(probe, x, None, None)[0]
    s = _sigmoid
    expected = [s(lam) ** 2, s(0) * s(lam), s(lam / 2) ** 2, s(-4 * lam) * s(lam)]
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)
    assert torch.allclose(module.mass(probe, x, None, None), got.sum()[None])
    # |Σ_real - Σ_gen| / (log(1 + max) + 1e-3)
    loss = alignment_loss(torch.tensor([3.0, 0.0, 2.0]), torch.tensor([1.0, 0.0, 2.0]))
    np.testing.assert_allclose(loss.numpy(), [2 / (math.log(4) + 1e-3), 0.0, 0.0], rtol=1e-6)
    # generated masses are rescaled to the real batch size
    real, fake = x[:2], torch.cat([x[:2], x[:2]])  # the same points, twice as many
    losses, m_real, m_fake = module.probe_losses(probe, real, fake, None, None, None, None)
    assert torch.allclose(m_real, m_fake)
    assert losses.item() == 0.0


def _constant_generator(module: GMDAModule, value: float) -> None:
    """Make the generator output ``value`` on every gene, whatever the noise."""
    with torch.no_grad():
        for p in module.generator.parameters():
            p.zero_()
        module.generator.net[-1].bias.fill_(value)


def test_gmda_and_dark_terms_when_generated_mass_is_elsewhere():
    # all real samples at 0, all generated at 10: every real probe holds the whole real
    # batch and no generated mass, every dark probe the reverse
    lam, n, m = 4.0, 6, 2
    module = GMDAModule(
        n_input=5, n_probe_genes=2, steepness=lam, n_probes=7, n_dark_probes=5,
        n_generated_per_real=m, dark_weight=0.5,
    )  # fmt: skip
    _constant_generator(module, 10.0)
    out = module.gmda_loss(torch.zeros(n, 5))
    inside = n * _sigmoid(lam) ** 2  # widths fall back to MIN_HALF_WIDTH (all distances 0)
    assert torch.allclose(out["probes"].half_width, torch.full((7, 2), MIN_HALF_WIDTH))
    one = inside / (math.log1p(inside) + 1e-3)
    assert out["gmda_loss"].item() == pytest.approx(one, rel=1e-5)
    assert out["dark_loss"].item() == pytest.approx(one, rel=1e-5)  # m·n fakes / m = n
    assert out["loss"].item() == pytest.approx(1.5 * one, rel=1e-5)
    # without dark probes, nothing tells the generator its mass is off the data
    module.n_dark_probes = 0
    assert module.gmda_loss(torch.zeros(n, 5))["dark_loss"].item() == 0.0


def test_loss_is_zero_when_generated_equals_real():
    module = GMDAModule(n_input=4, n_probe_genes=(2, 3), n_generated_per_real=1, n_probes=50)
    _constant_generator(module, 1.5)
    out = module.gmda_loss(torch.full((8, 4), 1.5))
    assert out["loss"].item() == 0.0


# -- the fast probe masses and widths against their definitions ----------------------------
def _conditioned(n_cats, n_cont, n=40, n_genes=30, seed=0):
    """A module, zero-inflated real samples (ties, values at probe centres) and covariates.

    The last category of the first categorical covariate is never drawn.
    """
    gen = torch.Generator().manual_seed(seed)
    module = GMDAModule(
        n_input=n_genes, n_cats_per_cov=n_cats, n_continuous_cov=n_cont, n_probe_genes=(1, 2, 3)
    )
    x = torch.randn(n, n_genes, generator=gen).clamp_min(0)  # half of the values are 0
    cat = None
    if n_cats:
        cat = torch.stack([torch.randint(c, (n,), generator=gen) for c in n_cats], 1)
        cat[:, 0] = cat[:, 0].clamp(max=n_cats[0] - 2)
    cont = torch.randn(n, n_cont, generator=gen) if n_cont else None
    return module, x, cat, cont


COVARIATES = [([], 0), ([3], 0), ([2, 3], 2), ([], 1)]


@pytest.mark.parametrize(("n_cats", "n_cont"), COVARIATES)
def test_mass_and_its_gradient_equal_the_dense_membership_sum(n_cats, n_cont):
    """The blocked, per-condition masses are ``membership(...).sum(-1)``, gradients included,
    also for generated values at a probe's centre (|x - c| not differentiable: gradient 0)."""
    torch.manual_seed(0)
    module, x, cat, cont = _conditioned(n_cats, n_cont)
    probes, _ = module.draw_probes(x, cat, cont, 300)
    if cat is not None:  # a kept probe whose condition is not in the batch holds nothing
        probes.cat[0, 0] = n_cats[0] - 1
    fake = torch.cat([x, torch.randn(80, x.shape[1]).clamp_min(0)]).requires_grad_()
    f_cat = None if cat is None else torch.cat([cat, cat.repeat(2, 1)])
    f_cont = None if cont is None else torch.cat([cont, cont.repeat(2, 1)])
    weight = torch.randn(len(probes))
    dense = module.membership(probes, fake, f_cat, f_cont).sum(-1)
    (grad_dense,) = torch.autograd.grad((dense * weight).sum(), fake)
    fast = module.mass(probes, fake, f_cat, f_cont)
    (grad_fast,) = torch.autograd.grad((fast * weight).sum(), fake)
    torch.testing.assert_close(fast, dense, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_fast, grad_dense, rtol=1e-5, atol=1e-5)
    assert (grad_dense != 0).any()
    if cat is not None:
        assert fast[0].item() == 0.0


def test_mass_does_not_depend_on_the_block_size(monkeypatch):
    """Blocks split probes, never a probe's sum: the same masses and gradients with one probe
    per block (up to the last bit: vectorised and scalar sigmoids may differ there)."""
    torch.manual_seed(1)
    module, x, cat, _ = _conditioned([4], 0, n=60)
    probes, _ = module.draw_probes(x, cat, None, 200)
    fake = torch.randn(120, x.shape[1], requires_grad=True)
    f_cat = cat.repeat(2, 1)

    def mass_and_grad():
        mass = module.mass(probes, fake, f_cat, None)
        return mass, torch.autograd.grad(mass.square().sum(), fake)[0]

    big = mass_and_grad()
    monkeypatch.setattr(gmda_module, "BLOCK_ELEMENTS", 1)
    small = mass_and_grad()
    torch.testing.assert_close(big[0], small[0], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(big[1], small[1], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("n_cats", "n_cont"), COVARIATES)
def test_widths_are_the_distance_quantiles_of_their_definition(n_cats, n_cont):
    """w_batch and w_cond by torch.quantile, probe by probe, and the width in between."""
    torch.manual_seed(2)
    module, x, cat, cont = _conditioned(n_cats, n_cont, n=50)
    rows = torch.randint(50, (120,))
    genes, active = module.draw_genes(120)
    centre = x[rows[:, None], genes]
    probe_cat = None if cat is None else cat[rows]
    cont_centre = None if cont is None else cont[rows]
    scale = torch.rand(120)
    width, cont_width = module.probe_widths(
        x, centre, genes, active, cat, probe_cat, cont, cont_centre, scale=scale
    )
    values = x if cont is None else torch.cat([x, cont], 1)
    cont_dims = x.shape[1] + torch.arange(n_cont).expand(120, -1)
    dims = genes if cont is None else torch.cat([genes, cont_dims], 1)
    centres = centre if cont is None else torch.cat([centre, cont_centre], 1)
    expected = torch.empty_like(centres)
    for k in range(120):
        share = module.density ** (1 / (active[k].sum().item() + n_cont))
        dist = (values[:, dims[k]] - centres[k]).abs()
        w = torch.quantile(dist, share, dim=0)
        if cat is not None:
            same = (cat == cat[rows[k]]).all(1)
            within = torch.quantile(dist[same], share, dim=0)
            w = within + scale[k] * (w - within)
        expected[k] = w.clamp_min(MIN_HALF_WIDTH)
    got = width if cont is None else torch.cat([width, cont_width], 1)
    torch.testing.assert_close(got, expected)


def test_sort_runs_sorts_each_run_as_torch_sort():
    values = torch.randn(50, 33).round(decimals=1)  # with ties
    values[3, 5] = torch.nan
    expected = torch.cat([values[:, :10].sort(-1).values, values[:, 10:].sort(-1).values], 1)
    got = sort_runs(values.clone(), [10, 23])
    torch.testing.assert_close(got, expected, rtol=0, atol=0, equal_nan=True)


def test_run_distance_quantile_matches_torch_quantile():
    torch.manual_seed(3)
    lengths = [1, 7, 20, 13]
    columns = sort_runs(torch.randn(6, sum(lengths)).round(decimals=1), lengths)
    starts = torch.tensor([0, 1, 8, 28])
    run = torch.randint(4, (100,))
    start, count = starts[run], torch.tensor(lengths)[run]
    index, centre, q = torch.randint(6, (100, 3)), torch.randn(100, 3), torch.rand(100)
    got = run_distance_quantile(columns, index, start, count, centre, q)
    ref = torch.stack(
        [
            torch.quantile(
                (columns[index[k], start[k] : start[k] + count[k]] - centre[k, :, None]).abs(),
                q[k],
                dim=-1,
            )
            for k in range(100)
        ]
    )
    torch.testing.assert_close(got, ref)


# -- persistence ------------------------------------------------------------------------------
def test_persistence_keeps_exactly_the_highest_loss_probes():
    torch.manual_seed(0)
    module = GMDAModule(n_input=30, n_probes=40, n_dark_probes=10, persistence=0.3)
    x = torch.randn(64, 30)
    out = module.gmda_loss(x)
    losses = out["probe_losses"]
    kept = keep_hardest(out["probes"], losses, module.persistence)
    assert len(kept) == 12  # floor(0.3 * 40)
    top = torch.topk(losses, 12).indices
    assert torch.equal(kept.genes, out["probes"].genes[top])
    assert torch.equal(kept.centre, out["probes"].centre[top])
    assert torch.equal(kept.half_width, out["probes"].half_width[top])
    assert losses[top].min() >= losses[~torch.isin(torch.arange(40), top)].max()
    # the next step uses the kept probes first (same genes, centres and widths), then new ones
    nxt = module.gmda_loss(torch.randn(64, 30), kept=kept)
    assert len(nxt["probes"]) == 40
    assert torch.equal(nxt["probes"].genes[:12], kept.genes)
    assert torch.equal(nxt["probes"].half_width[:12], kept.half_width)
    assert keep_hardest(out["probes"], losses, 0.0) is None


def test_plan_keeps_probes_between_steps(gtex):
    proxy = GMDA.setup_proxy(gtex, categorical_covariate_keys=["tissue"])
    model = GMDA(proxy, n_probes=20, n_dark_probes=4, persistence=0.5)
    plan = GMDATrainingPlan(model.module)
    batch = {"X": torch.as_tensor(gtex.X[:64]), "extra_categorical_covs": torch.zeros(64, 1)}
    plan.training_step(batch, 0)
    first = plan.kept_probes
    assert len(first) == 10
    plan.training_step(batch, 1)
    assert len(plan.kept_probes) == 10


# -- widths and conditioning ------------------------------------------------------------------
def test_distance_quantile_matches_torch_quantile():
    torch.manual_seed(0)
    columns = torch.randn(7, 41).round(decimals=1).sort(-1).values  # with ties
    index = torch.randint(0, 7, (200, 3))
    centre = torch.randn(200, 3)
    q = torch.rand(200).round(decimals=2)
    got = distance_quantile(columns, index, centre, q)
    ref = torch.stack(
        [
            torch.quantile((columns[index[k]] - centre[k, :, None]).abs(), q[k], dim=-1)
            for k in range(200)
        ]
    )
    torch.testing.assert_close(got, ref)


@pytest.mark.parametrize("density", [0.05, 0.1, 0.3])
def test_widths_hold_about_density_of_the_real_samples(density):
    torch.manual_seed(0)
    module = GMDAModule(n_input=100, density=density, n_probe_genes=(2, 3))
    x = torch.randn(1000, 100)  # independent genes
    probes, _ = module.draw_probes(x, None, None, 2000)
    assert set(probes.n_genes.tolist()) == {2, 3}
    inside = (x.T[probes.genes] - probes.centre[:, :, None]).abs() <= probes.half_width[..., None]
    inside = (inside | ~probes.active[:, :, None]).all(1).float().mean(1)  # share per probe
    assert inside.mean().item() == pytest.approx(density, rel=0.15)


def test_widths_span_condition_to_batch_scale():
    """scale 0: δ of the probe's condition inside; scale 1: δ of the whole batch."""
    torch.manual_seed(1)
    module = GMDAModule(n_input=40, n_cats_per_cov=[3], density=0.1, n_probe_genes=2)
    cat = (torch.arange(3000) % 3)[:, None]
    x = torch.randn(3000, 40) * (1 + cat)  # independent genes, a spread per condition
    rows = torch.nonzero(cat[:, 0] == 0).ravel()[torch.randint(1000, (1000,))]
    genes, active = module.draw_genes(1000)
    centre = x[rows[:, None], genes]

    def widths(scale):
        scale = torch.full((1000,), scale)
        return module.probe_widths(x, centre, genes, active, cat, cat[rows], scale=scale)[0]

    def share_inside(width, among):
        inside = ((x.T[genes] - centre[..., None]).abs() <= width[..., None]).all(1)
        return inside[:, among].float().mean().item()

    narrow, wide = widths(0.0), widths(1.0)
    assert share_inside(narrow, cat[:, 0] == 0) == pytest.approx(0.1, rel=0.15)
    assert share_inside(wide, torch.ones(3000, dtype=torch.bool)) == pytest.approx(0.1, rel=0.15)
    assert (wide > narrow).float().mean() > 0.9  # the tight condition gets tighter boxes
    between = widths(0.5)
    torch.testing.assert_close(between, (narrow + wide) / 2)


def test_conditional_probes_ignore_other_categories():
    module = GMDAModule(n_input=3, n_cats_per_cov=[2, 3], n_probe_genes=2, steepness=5.0)
    probe = _probe([0, 1], [0.0, 0.0], [1.0, 1.0], cat=[1, 2])
    x = torch.zeros(4, 3)  # all at the centre
    cat = torch.tensor([[1, 2], [1, 0], [0, 2], [1, 2]])  # only rows 0 and 3 match both
    member = module.membership(probe, x, cat, None)[0]
    np.testing.assert_allclose(member.numpy(), [_sigmoid(5.0) ** 2, 0, 0, _sigmoid(5.0) ** 2])
    assert module.mass(probe, x, cat, None).item() == pytest.approx(member.sum().item())
    # generated samples of the wrong categories in the box do not count
    real, fake = x[:1], x
    wrong = torch.tensor([[1, 0], [0, 2], [0, 0], [1, 1]])
    loss, _, m_fake = module.probe_losses(probe, real, fake, cat[:1], None, wrong, None)
    assert m_fake.item() == 0.0
    assert loss.item() > 1
    # ... and a probe of another condition ignores the real samples of this one
    other = _probe([0, 1], [0.0, 0.0], [1.0, 1.0], cat=[0, 0])
    assert module.mass(other, x, cat, None).item() == 0.0


def test_probe_genes_skip_constant_genes():
    module = GMDAModule(n_input=6, n_probe_genes=3)
    module.scaling.constant[[0, 2]] = True
    genes, active = module.draw_genes(500)
    assert active.all()
    assert not torch.isin(genes, torch.tensor([0, 2])).any()
    assert (genes.sort(-1).values.diff(dim=-1) > 0).all()  # distinct genes per probe


# -- bad arguments ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"density": 0.0}, r"density must be in \(0, 1\).*density=0\.1"),
        ({"density": 1.5}, r"density must be in \(0, 1\)"),
        ({"steepness": 0}, r"steepness must be > 0"),
        ({"persistence": 1.0}, r"persistence must be in \[0, 1\)"),
        ({"persistence": -0.1}, r"persistence must be in \[0, 1\)"),
        ({"n_probes": 0}, r"n_probes must be an integer >= 1"),
        ({"n_probe_genes": 0}, r"n_probe_genes must be a positive integer"),
        ({"n_probe_genes": (2, "3")}, r"n_probe_genes must be a positive integer"),
        ({"n_probe_genes": (2, 500)}, r"500 genes but the data have 467.*at most 467"),
        ({"n_dark_probes": -1}, r"n_dark_probes must be an integer >= 0"),
        ({"dark_weight": -1.0}, r"dark_weight must be >= 0"),
        ({"n_generated_per_real": 0}, r"n_generated_per_real must be an integer >= 1"),
    ],
)
def test_bad_arguments_are_refused_with_a_fix(gtex, kwargs, match):
    proxy = GMDA.setup_proxy(gtex, categorical_covariate_keys=["tissue"])
    with pytest.raises(ValueError, match=match):
        GMDA(proxy, **kwargs)


def test_train_gmda_forwards_and_checks_model_arguments(gtex):
    with pytest.raises(ValueError, match=r"density must be in \(0, 1\)"):
        sgs.tl.train_gmda(gtex, categorical_covariate_keys=["tissue"], n_steps=1, density=1.5)


def test_bad_learning_rate_is_refused(gtex):
    proxy = GMDA.setup_proxy(gtex, categorical_covariate_keys=["tissue"])
    model = GMDA(proxy)
    with pytest.raises(ValueError, match=r"lr must be > 0"):
        model.train(n_steps=2, lr=0.0, selection=None, **QUIET)
    with pytest.raises(TypeError, match=r"Unknown training argument"):
        model.train(n_steps=2, densty=0.1, **QUIET)


# -- the model on real data -------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(gtex_split):
    """GMDA through the public API with its defaults, training length included (3,000 steps)."""
    train, _ = gtex_split
    return sgs.tl.train_gmda(train, categorical_covariate_keys=["tissue"], seed=0, **QUIET)


@pytest.mark.slow
def test_samples_carry_their_tissue(trained, gtex_split, real_classifier):
    """Samples look like their tissue, and a classifier trained on them recognises held-out
    real tissues (>= 0.8 x the real-trained accuracy)."""
    train, test = gtex_split
    tissues = trained.categories["tissue"]
    asked = trained.generate(covariates=pd.DataFrame({"tissue": np.repeat(tissues, 8)}), seed=3)
    hit = (real_classifier.predict(asked.X) == asked.obs["tissue"].astype(str)).mean()
    assert hit >= 0.8, hit  # chance: 1/26
    synth = trained.generate(train.n_obs, seed=1)
    assert synth.shape == (train.n_obs, train.n_vars)
    assert np.isfinite(synth.X).all()
    y_test = test.obs["tissue"].astype(str)
    real_acc = _logistic().fit(train.X, train.obs["tissue"].astype(str)).predict(test.X) == y_test
    synth_acc = _logistic().fit(synth.X, synth.obs["tissue"].astype(str)).predict(test.X) == y_test
    assert real_acc.mean() > 0.9
    assert synth_acc.mean() >= 0.8 * real_acc.mean(), (synth_acc.mean(), real_acc.mean())


def test_model_is_an_order_of_magnitude_smaller_than_wgan(trained):
    from scgensynth.module import WGANGPModule

    wgan = WGANGPModule(n_input=467, n_cats_per_cov=[26])
    n_gmda = sum(p.numel() for p in trained.module.parameters())
    n_wgan = sum(p.numel() for p in wgan.parameters())
    assert n_gmda * 10 <= n_wgan


def test_history_and_requested_covariates(trained):
    hist = trained.history
    for key in ("gmda_loss", "dark_loss", "total_loss"):
        assert key in hist, key
        values = hist[key].to_numpy().ravel()
        assert np.isfinite(values).all()
    loss = hist["gmda_loss"].to_numpy().ravel()
    assert loss[-10:].mean() < 0.7 * loss[:10].mean()  # it learns
    liver = trained.generate(20, covariates={"tissue": "Liver"}, seed=0)
    assert (liver.obs["tissue"] == "Liver").all()
    assert liver.shape == (20, 467)


def test_save_load_round_trip(trained, gtex_split, tmp_path):
    train, _ = gtex_split
    path = tmp_path / "gmda"
    trained.save(str(path))
    back = sgs.model.load_model(str(path), adata=train)
    assert type(back) is GMDA
    np.testing.assert_array_equal(trained.generate(30, seed=5).X, back.generate(30, seed=5).X)
    assert back.module.n_probes == trained.module.n_probes
    assert back.module.density == trained.module.density


@pytest.mark.slow
def test_interpolation_endpoints(trained, gtex_split, real_classifier, check_walk):
    walk = sgs.tl.interpolate(trained, "tissue", "Blood", "Blood Vessel", steps=5, n_per_step=60)
    check_walk(walk, real_classifier, gtex_split[0], "Blood", "Blood Vessel")


def test_wide_data_with_two_covariates(bladderbatch, snapshot):
    snap = snapshot(bladderbatch)
    model = sgs.tl.train_gmda(
        bladderbatch, categorical_covariate_keys=["cancer", "batch"], n_steps=6, batch_size=16,
        selection=None, n_probes=200, n_dark_probes=100, seed=0, **QUIET,
    )  # fmt: skip
    snap.assert_unchanged(bladderbatch, new_uns=("gmda",))
    synth = model.generate(4, covariates={"cancer": "Normal", "batch": "2"}, seed=0)
    assert synth.shape == (4, 22_283)
    assert np.isfinite(synth.X).all()
    assert set(model.history) >= {"gmda_loss", "dark_loss"}
    with pytest.raises(ValueError, match="Unicorn"):
        model.generate(2, covariates={"cancer": "Unicorn", "batch": "2"})
