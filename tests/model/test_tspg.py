"""TSPG: losses by hand, scaling, target Gaussians, gene sets, save/load, and the model on GTEx.

One model is trained at the default length on the GTEx training part (module scope); the other
tests use tiny models trained for a few hundred steps.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import scgensynth as sgs
from scgensynth.model import TSPG
from scgensynth.model._tspg import resolve_gene_set
from scgensynth.module import TSPGModule
from scgensynth.module._tspg import (
    TargetDistribution,
    cw_margin_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    perturbation_norm,
    shrunk_covariance,
    target_distance,
)

GMT = Path(__file__).parents[1] / "data" / "tspg_gene_sets.gmt"

#: a model trained in seconds (quality is tested on the default-length model)
TINY = {
    "n_hidden_classifier": (64,),
    "n_hidden_generator": (64, 32),
    "n_residual": 1,
    "n_hidden_discriminator": (32,),
    "classifier_steps": 60,
    "n_steps": 60,
    "enable_progress_bar": False,
}


def _small_module(**kwargs) -> TSPGModule:
    sizes = {"n_hidden_classifier": (8,), "n_hidden_generator": (8, 4), "n_residual": 1}
    return TSPGModule(**{"n_hidden_discriminator": (8,), **sizes, **kwargs})


# -- docstring examples -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["scgensynth.module._tspg", "scgensynth.nn._hourglass", "scgensynth.train._tspg_plan"]
)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), extraglobs={"torch": torch})
    assert result.attempted > 0
    assert result.failed == 0


def test_resolve_gene_set_docstring():
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner()
    for test in finder.find(resolve_gene_set, globs={"resolve_gene_set": resolve_gene_set}):
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


# -- losses by hand ---------------------------------------------------------------------------
def test_cw_margin_by_hand():
    logits = torch.tensor([[5.0, 1.0, 2.0], [0.0, 3.0, 1.0], [2.0, 2.0, 0.0]])
    target = torch.tensor([0, 0, 2])
    # margins of the target over the best other class: 3, -3, -2
    np.testing.assert_allclose(cw_margin_loss(logits, target, 0.0), [0.0, 3.0, 2.0])
    np.testing.assert_allclose(cw_margin_loss(logits, target, 1.0), [0.0, 4.0, 3.0])
    # confidence: a margin of 3 still costs 0.5 when kappa is 3.5
    np.testing.assert_allclose(cw_margin_loss(logits, target, 3.5), [0.5, 6.5, 5.5])
    # the gradient raises the target's logit and lowers the best other one only
    z = logits.clone().requires_grad_(True)
    cw_margin_loss(z, target, 0.0).sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), [[0, 0, 0], [-1, 1, 0], [1, 0, -1]])


def test_lsgan_and_norms_by_hand():
    real, fake = torch.tensor([1.0, 0.5, 2.0]), torch.tensor([0.0, 1.0])
    # (0 + 0.25 + 1) / 3 + (0 + 1) / 2
    assert lsgan_discriminator_loss(real, fake).item() == pytest.approx(1.25 / 3 + 0.5)
    assert lsgan_generator_loss(fake).item() == pytest.approx(0.5)
    p = torch.tensor([[3.0, 4.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    np.testing.assert_allclose(perturbation_norm(p), [2.5, 1.0])
    draws = torch.tensor([[0.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    np.testing.assert_allclose(target_distance(p, draws), [(3 + 4 + 0 + 1) / 4, 0.0])


def test_generator_loss_is_the_weighted_sum():
    torch.manual_seed(0)
    weights = {"gan_weight": 0.5, "adv_weight": 2.0, "norm_weight": 3.0, "target_weight": 7.0}
    module = _small_module(n_input=6, n_classes=3, kappa=0.7, **weights)
    module.set_scaling(torch.zeros(6), torch.ones(6))
    with torch.no_grad():  # a generator that perturbs (it starts at p = 0)
        module.generator.net[-2].weight.normal_()
    module.eval()
    x, target, draws = torch.rand(5, 6), torch.tensor([0, 1, 2, 0, 1]), torch.rand(5, 6)
    out = module.generator_loss(x, target, draws)
    x_adv, p = module.perturb_scaled(x, target)
    terms = {
        "gan": lsgan_generator_loss(module.discriminate(x_adv, target)),
        "adv": cw_margin_loss(module.classify(x_adv), target, 0.7).mean(),
        "norm": perturbation_norm(p).mean(),
        "target": target_distance(x_adv, draws).mean(),
    }
    for key, value in terms.items():
        assert out[key].item() == pytest.approx(value.item(), rel=1e-5)
    total = 0.5 * terms["gan"] + 2 * terms["adv"] + 3 * terms["norm"] + 7 * terms["target"]
    assert out["loss"].item() == pytest.approx(total.item(), rel=1e-5)
    assert p.abs().sum() > 0


def test_scvi_interface_forward():
    """``module(tensors)``: inference, generative (random targets) and the generator loss."""
    torch.manual_seed(0)
    module = _small_module(n_input=5, n_classes=3)
    module.set_scaling(torch.zeros(5), torch.ones(5))
    x, labels = torch.rand(12, 5), torch.arange(12) % 3
    module.target_distribution.fit(x, labels)
    tensors = {"X": x, "labels": labels[:, None].float()}
    inference, generative, losses = module(tensors)
    torch.testing.assert_close(inference["x_scaled"], x)
    assert (generative["target"] != labels).all()
    assert generative["x_adv"].shape == (12, 5)
    assert set(losses.extra_metrics) == {"gan", "adv", "norm", "target", "success"}
    assert torch.isfinite(losses.loss)
    torch.testing.assert_close(module.sample(x, generative["target"]), x)  # p = 0 at first


# -- scaling and targets ----------------------------------------------------------------------
def test_minmax_scaling_and_clip_round_trip():
    torch.manual_seed(0)
    module = _small_module(n_input=4, n_classes=2)
    x = torch.tensor([[1.0, -2.0, 5.0, 0.5], [3.0, 2.0, 5.0, 1.5], [2.0, 0.0, 5.0, 1.0]])
    module.set_scaling(x.min(0).values, x.max(0).values)  # gene 2 is constant
    s = module.scale(x)
    np.testing.assert_allclose(s[:, [0, 1, 3]], [[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5]])
    assert (s[:, 2] == 0).all()  # no division by zero
    torch.testing.assert_close(module.unscale(s), x)
    with torch.no_grad():  # a generator with large outputs: the clip must hold them
        module.generator.net[-2].bias.fill_(5.0)
    module.eval()
    x_adv, p = module.perturb_scaled(s, torch.tensor([1, 1, 0]))
    assert (p[:, 2] == 0).all()  # constant genes are never perturbed
    assert x_adv.min() >= 0
    assert x_adv.max() <= 1
    back = module.unscale(x_adv)
    assert (x.min(0).values - 1e-6 <= back).all()
    assert (back <= x.max(0).values + 1e-6).all()
    assert (back[:, 2] == 5.0).all()


def test_draw_targets_are_never_the_own_class():
    module = _small_module(n_input=3, n_classes=4)
    labels = torch.arange(4).repeat(2000)
    gen = torch.Generator().manual_seed(0)
    targets, keep = module.draw_targets(labels, generator=gen)
    assert keep.all()
    assert (targets != labels).all()
    # uniform among the three other classes
    counts = torch.bincount(targets[labels == 0], minlength=4).numpy() / 2000
    np.testing.assert_allclose(counts, [0, 1 / 3, 1 / 3, 1 / 3], atol=0.04)
    # one learnt target: its own samples have none and are dropped
    module = _small_module(n_input=3, n_classes=4, targets=[2])
    targets, keep = module.draw_targets(labels, generator=gen)
    assert (keep == (labels != 2)).all()
    assert (targets[keep] == 2).all()


def test_full_and_diagonal_target_gaussians():
    rng = np.random.default_rng(0)
    n = 4000
    cov = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, -0.3], [0.0, -0.3, 1.0]]) * 0.05**2
    x = rng.multivariate_normal([0.3, 0.5, 0.7], cov, size=n)
    x = np.vstack([x, rng.uniform(0.4, 0.6, size=(50, 3))])  # a second class
    labels = torch.as_tensor(np.r_[np.zeros(n), np.ones(50)]).long()
    stats = {}
    for kind in ("full", "diag"):
        dist = TargetDistribution(3, 2, covariance=kind)
        dist.fit(torch.as_tensor(x, dtype=torch.float32), labels)
        torch.manual_seed(1)
        draws = dist.sample(torch.zeros(20000, dtype=torch.long)).double().numpy()
        np.testing.assert_allclose(draws.mean(0), [0.3, 0.5, 0.7], atol=3e-3)
        np.testing.assert_allclose(draws.std(0), [0.05] * 3, rtol=0.05)
        stats[kind] = np.corrcoef(draws.T)
    # the full covariance keeps the correlations (little shrinkage on 4,000 samples)
    np.testing.assert_allclose(stats["full"][0, 1], 0.8, atol=0.03)
    np.testing.assert_allclose(stats["full"][1, 2], -0.3, atol=0.03)
    # the diagonal one has none
    assert np.abs(stats["diag"][np.triu_indices(3, 1)]).max() < 0.03
    # draws stay in [0, 1]
    assert draws.min() >= 0
    assert draws.max() <= 1


def test_shrunk_covariance_on_few_samples():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 30)) * np.linspace(0.1, 2, 30)
    x[:, 5] = 1.0  # a constant gene
    cov = shrunk_covariance(x)
    assert np.linalg.eigvalsh(cov).min() > 0  # 6 samples, 30 genes: still positive definite
    np.testing.assert_allclose(np.diag(cov), x.var(0) + 1e-6, rtol=1e-6)  # variances kept
    sample = np.cov(x, rowvar=False, bias=True)
    off = ~np.eye(30, dtype=bool)
    assert np.abs(cov[off]).sum() < np.abs(sample[off]).sum()  # correlations shrink
    # one sample: a point mass (plus jitter), no failure
    np.testing.assert_allclose(shrunk_covariance(x[:1]), np.eye(30) * 1e-6)


# -- the model class --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_model():
    adata = sgs.datasets.gtex_tissues()
    return sgs.tl.train_tspg(adata, "tissue", seed=0, **TINY), adata


def test_tiny_model_summary_and_history(tiny_model):
    model, adata = tiny_model
    assert model.is_trained_
    assert model.labels_key == "tissue"
    assert model.categories == list(adata.obs["tissue"].cat.categories)
    assert model.targets == model.categories
    assert model.var_names == list(adata.var_names)
    logged = ["classifier_loss", "classifier_accuracy_validation", "generator_loss"]
    logged += ["discriminator_loss", "adv_loss", "gan_loss", "norm_loss", "target_loss"]
    for key in logged:
        assert key in model.history_, key
    assert 0 <= model.classifier_accuracy_ <= 1
    assert "TSPG" in repr(model)


def test_save_load_gives_identical_perturbations(tiny_model, tmp_path, snapshot):
    model, adata = tiny_model
    model.save(str(tmp_path / "tspg"))
    fresh = sgs.datasets.gtex_tissues()
    snap = snapshot(fresh)
    loaded = TSPG.load(str(tmp_path / "tspg"), adata=fresh)
    snap.assert_unchanged(fresh)
    a = sgs.tl.perturb(adata, model, source="Lung", target="Liver")
    b = sgs.tl.perturb(fresh, loaded, source="Lung", target="Liver")
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.obs["target_probability"], b.obs["target_probability"])
    assert loaded.targets == model.targets
    with pytest.raises(ValueError, match=r"genes differ from the model's.*1 missing"):
        TSPG.load(str(tmp_path / "tspg"), adata=fresh[:, 1:].copy())
    with pytest.raises(ValueError, match="Pass the AnnData"):
        TSPG.load(str(tmp_path / "tspg"))


def test_gene_set_from_gmt(snapshot):
    adata = sgs.datasets.gtex_tissues()
    snap = snapshot(adata)
    model = sgs.tl.train_tspg(adata, "tissue", gene_set="GTEX_FIRST_40", gene_sets=GMT, **TINY)
    snap.assert_unchanged(adata)
    genes = sgs.read_gmt(GMT)["GTEX_FIRST_40"]
    assert model.var_names == genes
    assert model.module.n_input == 40
    assert model.module.classifier.net[0].in_features == 40
    out = sgs.tl.perturb(adata, model, source="Lung", target="Liver")
    assert list(out.var_names) == genes  # only the set's genes
    # genes outside the set are not needed to perturb
    out2 = sgs.tl.perturb(adata[:, genes[::-1]].copy(), model, source="Lung", target="Liver")
    np.testing.assert_allclose(out2[:, genes].X, out.X, rtol=1e-6)


def test_gene_set_errors():
    adata = sgs.datasets.gtex_tissues()
    with pytest.raises(ValueError, match=r"2 of the 12 genes of gene set 'GTEX_WITH_2_MISSING'"):
        sgs.tl.train_tspg(adata, "tissue", gene_set="GTEX_WITH_2_MISSING", gene_sets=GMT)
    with pytest.raises(ValueError, match=r"\['entrez_0', 'NOT_A_GENE'\].*missing_genes='ignore'"):
        sgs.tl.train_tspg(adata, "tissue", gene_set="GTEX_WITH_2_MISSING", gene_sets=GMT)
    with pytest.raises(ValueError, match="Only 1 gene"):
        sgs.tl.train_tspg(
            adata, "tissue", gene_set="ONE_GTEX_GENE", gene_sets=GMT, missing_genes="ignore"
        )
    with pytest.raises(ValueError, match="is not in gene_sets"):
        sgs.tl.train_tspg(adata, "tissue", gene_set="NOPE", gene_sets=GMT)
    with pytest.raises(ValueError, match="no gene_sets were given"):
        sgs.tl.train_tspg(adata, "tissue", gene_set="GTEX_FIRST_40")
    with pytest.raises(ValueError, match="gene_sets is given but not gene_set"):
        sgs.tl.train_tspg(adata, "tissue", gene_sets=GMT)
    # the intersection, when asked for
    genes = resolve_gene_set("GTEX_WITH_2_MISSING", GMT, adata.var_names, missing_genes="ignore")
    assert genes == list(adata.var_names[40:50])


class _Frozen(nn.Module):
    """A fixed linear classifier over min-max-scaled genes."""

    def __init__(self, n_genes: int, n_classes: int):
        super().__init__()
        self.linear = nn.Linear(n_genes, n_classes)

    def forward(self, x):
        return self.linear(x)


def test_user_classifier(tmp_path):
    adata = sgs.datasets.gtex_tissues()
    torch.manual_seed(0)
    clf = _Frozen(adata.n_vars, 26)
    before = {k: v.clone() for k, v in clf.state_dict().items()}
    model = sgs.tl.train_tspg(adata, "tissue", classifier=clf, **TINY)
    assert model.module.classifier is clf
    assert "classifier_loss" not in model.history_  # no classifier phase
    for key, value in clf.state_dict().items():
        torch.testing.assert_close(value, before[key])  # frozen
    out = sgs.tl.perturb(adata, model, source="Lung", target="Liver")
    x = torch.as_tensor(model.module.scale(torch.as_tensor(out.X)))
    probs = torch.softmax(clf(x), 1)[:, model.categories.index("Liver")].detach().numpy()
    np.testing.assert_allclose(out.obs["target_probability"], probs, rtol=1e-4, atol=1e-6)
    model.save(str(tmp_path / "user"))
    # the file holds the classifier's weights but not its code: load() asks for an instance
    with pytest.raises(ValueError, match=r"your own classifier \(.*_Frozen\).*classifier="):
        TSPG.load(str(tmp_path / "user"), adata=adata)
    fresh = _Frozen(adata.n_vars, 26)  # new random weights, replaced by the saved ones
    loaded = TSPG.load(str(tmp_path / "user"), adata=adata, classifier=fresh)
    again = sgs.tl.perturb(adata, loaded, source="Lung", target="Liver")
    np.testing.assert_array_equal(again.X, out.X)
    for key, value in clf.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value, rtol=0, atol=0)
    # wrong output width, wrong input width, not a module
    with pytest.raises(ValueError, match=r"logits of shape \(n_samples, 26\).*\(2, 5\)"):
        sgs.tl.train_tspg(adata, "tissue", classifier=_Frozen(adata.n_vars, 5), **TINY)
    with pytest.raises(ValueError, match="failed on a batch of 2 samples x 467 genes"):
        sgs.tl.train_tspg(adata, "tissue", classifier=_Frozen(10, 26), **TINY)
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        sgs.tl.train_tspg(adata, "tissue", classifier=lambda x: x, **TINY)


def test_bad_model_input(sgs_logs):
    adata = sgs.datasets.gtex_tissues()
    with pytest.raises(KeyError, match=r"\['tisue'\] are not in adata.obs"):
        sgs.tl.train_tspg(adata, "tisue", **TINY)
    one = adata[adata.obs["tissue"] == "Liver"].copy()
    one.obs["tissue"] = one.obs["tissue"].cat.remove_unused_categories()
    with pytest.raises(ValueError, match="needs at least 2"):
        sgs.tl.train_tspg(one, "tissue", **TINY)
    with pytest.raises(ValueError, match=r"targets: 'Liverr' is not a class of 'tissue'"):
        sgs.tl.train_tspg(adata, "tissue", targets=["Liverr"], **TINY)
    with pytest.raises(TypeError, match="Unknown training argument"):
        sgs.tl.train_tspg(adata, "tissue", n_stpes=10)
    counts = adata.copy()
    counts.X = np.round(np.expm1(counts.X) * 10)
    with sgs_logs() as logs, pytest.raises(TypeError):
        sgs.tl.train_tspg(counts, "tissue", n_stpes=10)
    assert any("raw counts" in r.getMessage() and "log1p" in r.getMessage() for r in logs)


# -- the model on GTEx, at the default length -------------------------------------------------
@pytest.fixture(scope="module")
def gtex_tspg(gtex_split):
    train, _ = gtex_split
    before = train.copy()
    model = sgs.tl.train_tspg(train, "tissue", seed=0, enable_progress_bar=False)
    return model, before


def _residual_cosines(perturbed) -> tuple[np.ndarray, np.ndarray]:
    """Per sample: cosine between its deviation from its source class's perturbed mean and its
    original's deviation from the class's original mean; and the same with another sample of
    the class as partner (a control: about -1 / (n - 1) for n samples of a class, -0.2 here)."""
    own, partner = [], []
    source = perturbed.obs["source"].astype(str).to_numpy()
    for s in np.unique(source):
        rows = source == s
        a = perturbed.X[rows] - perturbed.X[rows].mean(0)
        o = perturbed.layers["original"][rows] - perturbed.layers["original"][rows].mean(0)
        a /= np.linalg.norm(a, axis=1, keepdims=True)
        o /= np.linalg.norm(o, axis=1, keepdims=True)
        own.append((a * o).sum(1))
        partner.append((a * np.roll(o, 1, axis=0)).sum(1))
    return np.concatenate(own), np.concatenate(partner)


@pytest.mark.slow
def test_classifier_is_accurate(gtex_tspg, gtex_split):
    model, _ = gtex_tspg
    _, test = gtex_split
    assert model.classifier_accuracy_ >= 0.85  # 33 held-out training samples
    assert model.history_["classifier_accuracy_validation"].iloc[-1, 0] >= 0.85
    predicted = model.predict(test[:, model.var_names].X)
    assert (predicted == test.obs["tissue"].astype(str)).mean() >= 0.9


@pytest.mark.slow
@pytest.mark.parametrize("target", ["Liver", "Lung"])
def test_perturbed_samples_become_the_target(
    gtex_tspg, gtex_split, real_classifier, target, snapshot
):
    """f and an independent logistic regression label the perturbed held-out samples as the
    target, and each perturbed sample keeps its individuality."""
    model, before = gtex_tspg
    train, test = gtex_split
    snapshot(before).assert_unchanged(train)  # training left the user's AnnData alone
    snap = snapshot(test)
    out = sgs.tl.perturb(test, model, target=target)
    snap.assert_unchanged(test)
    sources = set(test.obs["tissue"].astype(str)) - {target}
    assert set(out.obs["source"].astype(str)) == sources  # every other tissue
    assert out.n_obs == (test.obs["tissue"] != target).sum()
    f_rate = (out.obs["predicted"] == target).mean()
    lr_rate = (real_classifier.predict(out.X) == target).mean()
    assert f_rate >= 0.95, f_rate
    assert lr_rate >= 0.8, lr_rate
    # before the perturbation, neither labels them as the target
    assert (real_classifier.predict(out.layers["original"]) == target).mean() < 0.05
    # not a jump to one target profile: each sample keeps its own deviation from its class
    own, partner = _residual_cosines(out)
    assert own.mean() >= 0.5, own.mean()
    assert partner.mean() < 0.0, partner.mean()
    # values stay inside each gene's training range
    X = np.asarray(train.X)
    assert (X.min(0) - 1e-4 <= out.X).all()
    assert (X.max(0) + 1e-4 >= out.X).all()


def test_one_target_model_refuses_others(gtex_split):
    train, test = gtex_split
    model = sgs.tl.train_tspg(train, "tissue", targets="Liver", **TINY)
    assert model.targets == ["Liver"]
    out = sgs.tl.perturb(test, model, target="Liver")
    assert out.n_obs == (test.obs["tissue"] != "Liver").sum()
    with pytest.raises(ValueError, match=r"not trained to perturb to 'Lung'.*\['Liver'\]"):
        sgs.tl.perturb(test, model, target="Lung")


def test_parameter_counts():
    module = TSPGModule(n_input=467, n_classes=26)
    counts = {
        k: sum(p.numel() for p in getattr(module, k).parameters())
        for k in ("classifier", "generator", "discriminator")
    }
    # 1024-512-128 classifier; 512-256-128 + 3 residual blocks + 256-512 generator;
    # 512-256-128 discriminator (inputs: 467 genes + 26 one-hot target classes)
    linear = lambda i, o: i * o + o  # noqa: E731
    assert counts["classifier"] == (
        linear(467, 1024) + linear(1024, 512) + linear(512, 128) + linear(128, 26)
    )
    assert counts["discriminator"] == (
        linear(493, 512) + linear(512, 256) + linear(256, 128) + linear(128, 1)
        + 2 * (512 + 256 + 128)
    )  # fmt: skip
    layers = [(493, 512), (512, 256), (256, 128), *[(128, 128)] * 6, (128, 256), (256, 512)]
    norms = 2 * (512 + 256 + 128 + 6 * 128 + 256 + 512)
    assert counts["generator"] == sum(linear(i, o) for i, o in layers) + linear(512, 467) + norms
    print(counts)


def test_settings_survive_construction():
    adata = sgs.datasets.gtex_tissues()
    proxy = TSPG.setup_proxy(adata, "tissue")
    model = TSPG(proxy, target_covariance="full", kappa=2.5, targets=("Liver", "Lung"))
    assert model.module.target_distribution.covariance == "full"
    assert model.module.kappa == 2.5
    assert model.targets == ["Liver", "Lung"]
    assert model.init_params_["non_kwargs"]["targets"] == ["Liver", "Lung"]
    assert isinstance(model.module.class_mean, torch.Tensor)
    means = pd.DataFrame(np.asarray(adata.X)).groupby(adata.obs["tissue"].to_numpy()).mean()
    np.testing.assert_allclose(
        model.target_mean("Liver"), means.loc["Liver"], rtol=1e-4, atol=1e-4
    )
    with pytest.raises(ValueError, match="target_covariance must be one of"):
        TSPG(proxy, target_covariance="dense")
    norms = {type(m) for m in model.module.generator.modules()}
    assert nn.LayerNorm in norms
    assert nn.BatchNorm1d not in norms
    original = TSPG(proxy, generator_norm="batch")  # TSPG's own generator
    assert nn.BatchNorm1d in {type(m) for m in original.module.generator.modules()}
    # 2 classes x 24,000^2 genes in float32: 4.3 GiB of covariances, refused before training
    wide = ad.AnnData(np.zeros((6, 24000), dtype=np.float32))
    wide.obs["c"] = pd.Categorical(list("aaabbb"))
    TSPG.setup_anndata(wide, labels_key="c")
    with pytest.raises(ValueError, match=r"need 4 GiB; use target_covariance='diag'"):
        TSPG(wide, target_covariance="full")
