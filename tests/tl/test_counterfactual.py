"""sgs.tl.counterfactual: the real tumour/normal signal, shared noise, layout, clear errors."""

from __future__ import annotations

from types import SimpleNamespace

import anndata as ad
import matplotlib
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import torch

import scgensynth as sgs
from scgensynth.model import WGANGP

matplotlib.use("Agg")

#: long enough for the WGAN-GP to learn the size of the tumour/normal difference: with these
#: settings five seeds gave top-50 overlaps 45-49 and bottom-50 overlaps 38-43 with the
#: Wilcoxon ranking, and slopes 0.94-1.13 of the counterfactual on the real mean differences
#: (3,000 steps still gave the overlap but slopes down to 0.25)
LUSC_TRAINING = {"n_steps": 4000, "selection": None, "enable_progress_bar": False}


def _train_lusc(adata):
    return sgs.tl.train_wgan(adata, categorical_covariate_keys=["cancer"], seed=0, **LUSC_TRAINING)


@pytest.fixture(scope="module")
def lusc():
    """WGAN-GP trained on the bundled TCGA LUSC set conditioned on cancer, and the real data."""
    adata = sgs.datasets.tcga_lusc()
    model = _train_lusc(adata)
    real = sgs.datasets.tcga_lusc()
    # scanpy's Wilcoxon runs numba in parallel, which resets torch's OpenMP threads to all
    # cores once torch has used them; keep the suite's one thread for the models trained next
    threads = torch.get_num_threads()
    with np.errstate(invalid="ignore"):  # scanpy's log2 fold change of z-scores
        sc.tl.rank_genes_groups(
            real, "cancer", groups=["tumour"], reference="normal", method="wilcoxon"
        )
    torch.set_num_threads(threads)
    wilcoxon = sc.get.rank_genes_groups_df(real, "tumour")["names"].tolist()
    return SimpleNamespace(model=model, adata=adata, real=real, wilcoxon=wilcoxon)


def _real_difference(real, labels=None) -> pd.Series:
    labels = np.asarray(real.obs["cancer"] if labels is None else labels)
    X = np.asarray(real.X, dtype=np.float64)
    diff = X[labels == "tumour"].mean(0) - X[labels == "normal"].mean(0)
    return pd.Series(diff, index=real.var_names)


def _slope(cf, real_diff: pd.Series) -> float:
    """Least-squares slope of the counterfactual's mean differences on the real ones."""
    df = sc.get.rank_genes_groups_df(cf, "tumour").set_index("names")
    got = df["logfoldchanges"][real_diff.index].to_numpy(dtype=np.float64)
    want = real_diff.to_numpy()
    return float(got @ want / (want @ want))


@pytest.mark.slow
def test_finds_the_real_tumour_signal(lusc):
    cf = sgs.tl.counterfactual(lusc.model, "cancer", "normal", "tumour", n_obs=1000, seed=0)
    ranked = sc.get.rank_genes_groups_df(cf, "tumour")["names"].tolist()
    top = len(set(ranked[:50]) & set(lusc.wilcoxon[:50]))
    bottom = len(set(ranked[-50:]) & set(lusc.wilcoxon[-50:]))
    assert top >= 25, top  # the criterion; by chance about 6
    assert bottom >= 25, bottom
    # The overlap alone does not show the model learned the labels: the tumour/normal
    # difference is the first principal component of this set, and a generator that moves
    # along it for any reason reaches the overlap. Its size must be the real one too.
    real_diff = _real_difference(lusc.real)
    slope = _slope(cf, real_diff)
    assert 0.7 < slope < 1.4, slope
    df = sc.get.rank_genes_groups_df(cf, "tumour").set_index("names")
    corr = np.corrcoef(df["logfoldchanges"][real_diff.index], real_diff)[0, 1]
    assert corr > 0.9, corr
    # the top genes go up in (nearly) every synthetic individual
    agreement = cf.uns["rank_genes_groups"]["sign_agreement"]["tumour"][:50]
    assert agreement.mean() > 0.9, agreement.mean()


@pytest.mark.slow
def test_shuffled_labels_do_not_reproduce_the_signal():
    """A model trained on shuffled cancer labels gives no tumour/normal difference of note.

    (Its top-50 overlap can still be high by chance, see above; the size of the difference
    is what separates it: slopes 0.05, -0.01, 0.03 for seeds 0-2.)
    """
    adata = sgs.datasets.tcga_lusc()
    real_diff = _real_difference(adata)
    shuffled = np.random.default_rng(0).permutation(adata.obs["cancer"].to_numpy())
    adata.obs["cancer"] = pd.Categorical(shuffled)
    model = _train_lusc(adata)
    cf = sgs.tl.counterfactual(model, "cancer", "normal", "tumour", n_obs=1000, seed=0)
    slope = _slope(cf, real_diff)
    assert abs(slope) < 0.3, slope
    # what the shuffled model should find: the (small) difference of its own labels
    own = _real_difference(adata, shuffled)
    assert np.linalg.norm(own) < 0.3 * np.linalg.norm(real_diff)


def test_layout_pairing_and_scanpy_readers(lusc, tmp_path, snapshot):
    model, adata = lusc.model, lusc.adata
    snap = snapshot(adata)
    weights = {k: v.clone() for k, v in model.module.state_dict().items()}
    covariates = model.covariates_.copy()
    cf = sgs.tl.counterfactual(model, "cancer", "normal", "tumour", n_obs=40, seed=3)
    assert cf.shape == (80, adata.n_vars)
    assert cf.var_names.equals(adata.var_names)
    assert cf.obs_names.is_unique
    cancer = cf.obs["cancer"]
    assert list(cancer.cat.categories) == model.categories["cancer"]
    assert (cancer[:40] == "normal").all()
    assert (cancer[40:] == "tumour").all()
    np.testing.assert_array_equal(cf.obs["sgs_individual"], np.tile(np.arange(40), 2))
    # the reference arm is exactly a conditional draw of "normal" with the counterfactual's
    # noise (drawn first from the seed), the target arm the same noise under "tumour"
    z = torch.from_numpy(
        np.random.default_rng(3).standard_normal((40, model.module.n_latent), dtype=np.float32)
    )
    codes = {c: model.categories["cancer"].index(c) for c in ("normal", "tumour")}
    with torch.inference_mode():
        normal = model.module.sample(cat=torch.full((40, 1), codes["normal"]), z=z)
        tumour = model.module.sample(cat=torch.full((40, 1), codes["tumour"]), z=z)
    np.testing.assert_allclose(cf.X[:40], normal.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cf.X[40:], tumour.numpy(), rtol=1e-5, atol=1e-5)
    # the ranking: mean paired differences, sorted, no p-values, scanpy reads it
    df = sc.get.rank_genes_groups_df(cf, "tumour")
    assert len(df) == adata.n_vars
    assert (np.diff(df["scores"].to_numpy()) <= 0).all()
    means = pd.Series((cf.X[40:] - cf.X[:40]).mean(0), index=cf.var_names)
    np.testing.assert_allclose(df["logfoldchanges"], means[df["names"]], rtol=1e-4, atol=1e-5)
    assert df["pvals"].isna().all()
    assert df["pvals_adj"].isna().all()
    params = cf.uns["rank_genes_groups"]["params"]
    assert params["groupby"] == "cancer"
    assert params["reference"] == "normal"
    assert params["method"] == "counterfactual"
    assert params["n_obs"] == 40
    call = cf.uns["sgs"]["counterfactual"]
    assert (call["covariate"], call["reference"], call["target"]) == ("cancer", "normal", "tumour")
    sc.pl.rank_genes_groups(cf, n_genes=5, show=False)
    sc.pl.rank_genes_groups_heatmap(cf, n_genes=5, groupby="cancer", dendrogram=False, show=False)
    cf.write_h5ad(tmp_path / "cf.h5ad")
    back = ad.read_h5ad(tmp_path / "cf.h5ad")
    pd.testing.assert_frame_equal(sc.get.rank_genes_groups_df(back, "tumour"), df)
    np.testing.assert_array_equal(back.X, cf.X)
    # the same seed gives the same individuals, another seed others
    again = sgs.tl.counterfactual(model, "cancer", "normal", "tumour", n_obs=40, seed=3)
    np.testing.assert_array_equal(again.X, cf.X)
    other = sgs.tl.counterfactual(model, "cancer", "normal", "tumour", n_obs=40, seed=4)
    assert not np.allclose(other.X, cf.X)
    # nothing of the model or the user's AnnData changed
    snap.assert_unchanged(adata)
    pd.testing.assert_frame_equal(model.covariates_, covariates)
    for k, v in model.module.state_dict().items():
        torch.testing.assert_close(v, weights[k], rtol=0, atol=0)


def test_switching_the_other_way_swaps_the_arms(lusc):
    """Only the covariate switches: normal -> tumour and tumour -> normal are mirror images."""
    forward = sgs.tl.counterfactual(lusc.model, "cancer", "normal", "tumour", n_obs=30, seed=1)
    backward = sgs.tl.counterfactual(lusc.model, "cancer", "tumour", "normal", n_obs=30, seed=1)
    np.testing.assert_array_equal(forward.X[:30], backward.X[30:])
    np.testing.assert_array_equal(forward.X[30:], backward.X[:30])
    up = sc.get.rank_genes_groups_df(forward, "tumour").set_index("names")
    down = sc.get.rank_genes_groups_df(backward, "normal").set_index("names")
    np.testing.assert_allclose(up["logfoldchanges"], -down["logfoldchanges"][up.index])
    assert up.index[0] == down.index[-1]


@pytest.mark.parametrize("rank_by", ["effect", "sign"])
def test_rank_by(lusc, rank_by):
    cf = sgs.tl.counterfactual(
        lusc.model, "cancer", "normal", "tumour", n=50, seed=0, rank_by=rank_by
    )
    rec = cf.uns["rank_genes_groups"]
    scores = np.asarray(rec["scores"]["tumour"])
    assert (np.diff(scores) <= 0).all()
    field = {"effect": "effect", "sign": "sign_agreement"}[rank_by]
    expected = np.asarray(rec[field]["tumour"])
    if rank_by == "sign":
        expected = np.sign(rec["mean_difference"]["tumour"]) * expected
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    assert rec["params"]["rank_by"] == rank_by


@pytest.fixture(scope="module")
def acc_model():
    """A small WGAN-GP on TCGA ACC with two categorical and one continuous covariate."""
    adata = sgs.datasets.tcga_acc()
    return sgs.tl.train_wgan(
        adata,
        categorical_covariate_keys=["vital_status", "gender"],
        continuous_covariate_keys=["years_to_birth"],
        n_steps=60,
        batch_size=16,
        seed=0,
        selection=None,
        n_hidden=(32, 32),
        enable_progress_bar=False,
    )


def test_other_covariates_are_held_or_fixed(acc_model):
    model = acc_model
    cf = sgs.tl.counterfactual(model, "vital_status", "0", "1", n_obs=60, seed=2)
    obs = cf.obs
    # each individual keeps its gender and age in both arms ...
    for key in ("gender", "years_to_birth"):
        np.testing.assert_array_equal(obs[key][:60].to_numpy(), obs[key][60:].to_numpy())
    # ... drawn from training samples of the reference ("0": alive)
    train = model.covariates_
    alive = train[train["vital_status"] == "0"]
    pairs = set(zip(alive["gender"].astype(str), alive["years_to_birth"], strict=True))
    drawn = set(zip(obs["gender"][:60].astype(str), obs["years_to_birth"][:60], strict=True))
    assert drawn <= pairs
    assert len(drawn) > 10
    assert obs["gender"].dtype == "category"
    # fixed values hold for every individual; the unset age is still resampled
    fixed = sgs.tl.counterfactual(
        model, "vital_status", 0, 1, n=60, seed=2, fixed={"gender": "female"}
    )
    assert (fixed.obs["gender"] == "female").all()
    assert fixed.obs["years_to_birth"].nunique() > 5
    assert fixed.uns["rank_genes_groups"]["params"]["fixed"] == {"gender": "female"}
    aged = sgs.tl.counterfactual(
        model, "vital_status", "0", "1", n=20, fixed={"years_to_birth": 50, "gender": "male"}
    )
    assert (aged.obs["years_to_birth"] == 50).all()
    assert (aged.obs["gender"] == "male").all()
    # the obs of the h5ad round trip (categories given as 0/1 are the model's "0"/"1")
    assert list(fixed.obs["vital_status"].cat.categories) == model.categories["vital_status"]
    assert fixed.uns["sgs"]["counterfactual"]["reference"] == "0"


def test_reference_without_samples(acc_model, monkeypatch):
    """A category the model had no training sample of is never generated from (untrained)."""
    model = acc_model
    covs = model.covariates_
    monkeypatch.setattr(model, "covariates_", covs[covs["vital_status"] == "1"].reset_index())
    fixed = {"gender": "male", "years_to_birth": 40}
    for reference, target in (("0", "1"), ("1", "0")):
        with pytest.raises(ValueError, match=r"\['0'\] of 'vital_status' had no training"):
            sgs.tl.counterfactual(model, "vital_status", reference, target, n_obs=10, fixed=fixed)


def test_bad_input(lusc, acc_model):
    model = lusc.model
    cases = [
        ({"covariate": "tissue"}, ValueError, "not a categorical covariate"),
        ({"reference": "healthy"}, ValueError, "healthy"),
        ({"target": "metastasis"}, ValueError, "metastasis"),
        ({"target": "normal"}, ValueError, "two different categories"),
        ({"n_obs": 0}, ValueError, "n_obs "),
        ({"n_obs": 2.7}, TypeError, r"n_obs \(the number of synthetic individuals\) must be"),
        ({"n_obs": None}, TypeError, r"must be a whole number >= 1, not None"),
        ({"seed": -1}, ValueError, r"seed must be between 0 and 2\*\*32 - 1"),
        ({"rank_by": "pvalue"}, ValueError, "rank_by"),
        ({"fixed": {"cancer": "tumour"}}, ValueError, "being switched"),
        ({"fixed": {"tissue": "Lung"}}, ValueError, "does not know"),
        ({"guidance_scale": 2.0}, TypeError, r"guidance_scale.*WGANGP\.generate"),
    ]
    for change, error, match in cases:
        args = {"covariate": "cancer", "reference": "normal", "target": "tumour", "n_obs": 10}
        args.update(change)
        with pytest.raises(error, match=match):
            sgs.tl.counterfactual(model, **args)
    with pytest.raises(ValueError, match="Unknown categories for 'gender'"):
        sgs.tl.counterfactual(acc_model, "vital_status", "0", "1", fixed={"gender": "other"})
    with pytest.raises(TypeError, match="generator"):
        sgs.tl.counterfactual(lusc.adata, "cancer", "normal", "tumour")


def _noise_input(name: str) -> str | None:
    """The input a registered generator decodes a sample from (None: none to hold fixed)."""
    return sgs.model.get_model_class(name)._module_cls.noise_input


def _small(adata, name: str):
    """A small ``name`` trained for one pass over ``adata``, conditioned on "cancer"."""
    return sgs.tl.train(
        adata,
        name,
        categorical_covariate_keys=["cancer"],
        max_epochs=1,  # enough to pair the arms (GMDA's steps are slow)
        selection=None,
        enable_progress_bar=False,
        **sgs.model.get_model_class(name).quick_kwargs,
    )


def test_untrained_and_unsupported_models(tcga_lusc):
    adata = tcga_lusc.copy()
    WGANGP.setup_anndata(adata, categorical_covariate_keys=["cancer"])
    untrained = WGANGP(adata, **WGANGP.quick_kwargs)
    with pytest.raises(RuntimeError, match="not trained"):
        sgs.tl.counterfactual(untrained, "cancer", "normal", "tumour")
    for name in sgs.model.available().index:  # the noise baseline: real samples plus noise
        if _noise_input(name) is None:
            model = _small(tcga_lusc, name)
            with pytest.raises(TypeError, match="noise input that can be held fixed"):
                sgs.tl.counterfactual(model, "cancer", "normal", "tumour")


def test_cvae_shares_its_latent_and_noise(tcga_lusc):
    """The CVAE decodes a latent too; with sample_noise its per-gene noise is shared as well."""
    model = sgs.tl.train(
        tcga_lusc,
        "cvae",
        categorical_covariate_keys=["cancer"],
        sample_noise=True,
        n_steps=60,
        selection=None,
        enable_progress_bar=False,
        **sgs.model.CVAE.quick_kwargs,
    )
    forward = sgs.tl.counterfactual(model, "cancer", "normal", "tumour", n_obs=50, seed=0)
    backward = sgs.tl.counterfactual(model, "cancer", "tumour", "normal", n_obs=50, seed=0)
    np.testing.assert_array_equal(forward.X[:50], backward.X[50:])
    # the noise is the same in both arms: paired differences are those of the decoder means
    with torch.inference_mode():
        z = torch.from_numpy(
            np.random.default_rng(0).standard_normal((50, model.module.n_latent), dtype=np.float32)
        )
        codes = [model.categories["cancer"].index(c) for c in ("normal", "tumour")]
        means = [model.module.decode(z, torch.full((50, 1), c)) for c in codes]
        scale = model.module.scaling
        expected = (scale.inverse(means[1]) - scale.inverse(means[0])).numpy()
    np.testing.assert_allclose(forward.X[50:] - forward.X[:50], expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "name", [n for n in sgs.model.available().index if _noise_input(n) is not None]
)
def test_every_generator_with_a_noise_input(tcga_lusc, name):
    """Every generator with a noise input (a latent z, DDPM's x_T) gets the same in both arms."""
    model = _small(tcga_lusc, name)
    forward = sgs.tl.counterfactual(model, "cancer", "normal", "tumour", n_obs=20, seed=0)
    backward = sgs.tl.counterfactual(model, "cancer", "tumour", "normal", n_obs=20, seed=0)
    np.testing.assert_array_equal(forward.X[:20], backward.X[20:])
    np.testing.assert_array_equal(forward.X[20:], backward.X[:20])
    assert not np.allclose(forward.X[:20], forward.X[20:])  # the covariate acts
    assert forward.uns["rank_genes_groups"]["params"]["model"] == type(model).__name__


@pytest.fixture(scope="module")
def ddpm():
    adata = sgs.datasets.tcga_lusc()
    return sgs.tl.train_ddpm(
        adata,
        categorical_covariate_keys=["cancer"],
        n_steps=150,
        n_hidden=64,
        n_blocks=1,
        selection=None,
        seed=0,
        enable_progress_bar=False,
    )


def test_ddpm_arms_share_the_starting_noise(ddpm):
    kw = {"n_obs": 100, "seed": 0, "n_sampling_steps": 10}
    cf = sgs.tl.counterfactual(ddpm, "cancer", "normal", "tumour", **kw)
    again = sgs.tl.counterfactual(ddpm, "cancer", "normal", "tumour", **kw)
    np.testing.assert_array_equal(cf.X, again.X)  # deterministic given the seed
    backward = sgs.tl.counterfactual(ddpm, "cancer", "tumour", "normal", **kw)
    np.testing.assert_array_equal(cf.X[:100], backward.X[100:])
    # an individual's two arms are far closer than two different individuals
    X = np.asarray(cf.X, dtype=np.float64)
    paired = ((X[100:] - X[:100]) ** 2).sum(1).mean()
    unpaired = ((X[100:] - np.roll(X[:100], 1, axis=0)) ** 2).sum(1).mean()
    assert paired < 0.5 * unpaired, (paired, unpaired)
    assert cf.uns["rank_genes_groups"]["params"]["n_sampling_steps"] == 10
    assert cf.uns["sgs"]["counterfactual"]["eta"] == 0.0


def test_ddpm_refuses_stochastic_sampling(ddpm):
    args = ("cancer", "normal", "tumour")
    with pytest.raises(ValueError, match="eta=0"):
        sgs.tl.counterfactual(ddpm, *args, n_obs=5, eta=0.5)
    with pytest.raises(ValueError, match="sampler='ddim'"):
        sgs.tl.counterfactual(ddpm, *args, n_obs=5, sampler="ddpm")
    with pytest.raises(TypeError, match="temperature"):
        sgs.tl.counterfactual(ddpm, *args, n_obs=5, temperature=0.5)
    # a model whose default sampler is stochastic is sampled deterministically anyway
    defaults = dict(ddpm.module.sampling_defaults)
    try:
        ddpm.module.sampling_defaults.update(sampler="ddpm")
        one = sgs.tl.counterfactual(ddpm, *args, n_obs=10, seed=1, n_sampling_steps=5)
        two = sgs.tl.counterfactual(ddpm, *args, n_obs=10, seed=1, n_sampling_steps=5)
    finally:
        ddpm.module.sampling_defaults.update(defaults)
    np.testing.assert_array_equal(one.X, two.X)


def test_n_is_the_old_name_of_n_obs(lusc):
    with pytest.warns(FutureWarning, match=r"argument n was renamed n_obs"):
        old = sgs.tl.counterfactual(lusc.model, "cancer", "normal", "tumour", n=20, seed=5)
    new = sgs.tl.counterfactual(lusc.model, "cancer", "normal", "tumour", n_obs=20, seed=5)
    np.testing.assert_array_equal(old.X, new.X)
