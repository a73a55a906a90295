"""sgs.tl.interpolate: layout of the walk, the same individuals at every step, clear errors."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pytest
import torch

import scgensynth as sgs


def test_walk_layout(gtex_model, tmp_path):
    model = gtex_model.model
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. anndata's "Observation names are not unique"
        walk = sgs.tl.interpolate(model, "tissue", "Blood", "Liver", steps=4, n_per_step=7, seed=3)
    assert walk.shape == (28, model.adata.n_vars)
    assert walk.obs_names.is_unique
    assert walk.obs_names[[0, 27]].tolist() == ["synth_0", "synth_27"]
    assert walk.var_names.equals(model.adata.var_names)
    np.testing.assert_allclose(walk.obs["sgs_lambda"], np.repeat([0, 1 / 3, 2 / 3, 1], 7))
    np.testing.assert_array_equal(walk.obs["sgs_step"], np.repeat(np.arange(4), 7))
    np.testing.assert_array_equal(walk.obs["sgs_individual"], np.tile(np.arange(7), 4))
    tissue = walk.obs["tissue"]
    assert list(tissue.cat.categories) == model.categories["tissue"]
    assert (tissue[:7] == "Blood").all()
    assert (tissue[-7:] == "Liver").all()
    assert tissue[7:21].isna().all()
    assert walk.uns["sgs"]["interpolation"]["start"] == "Blood"
    walk.write_h5ad(tmp_path / "walk.h5ad")  # a plain AnnData, writable as is
    back = ad.read_h5ad(tmp_path / "walk.h5ad")
    assert back.obs["tissue"].isna().sum() == 14
    # λ = 0 is exactly a conditional draw of the start tissue with the same noise
    module = model.module
    z = torch.randn(7, module.n_latent, generator=torch.Generator().manual_seed(3))
    code = model.categories["tissue"].index("Blood")
    with torch.inference_mode():
        x = module.sample(cat=torch.full((7, 1), code), z=z)
    np.testing.assert_allclose(walk.X[:7], x.numpy(), rtol=1e-5, atol=1e-5)
    # same seed, same walk; another seed, other individuals
    again = sgs.tl.interpolate(model, "tissue", "Blood", "Liver", steps=4, n_per_step=7, seed=3)
    np.testing.assert_array_equal(walk.X, again.X)
    other = sgs.tl.interpolate(model, "tissue", "Blood", "Liver", steps=4, n_per_step=7, seed=4)
    assert not np.allclose(walk.X, other.X)


def test_intermediate_steps_lie_between_the_endpoints(gtex_model):
    walk = sgs.tl.interpolate(gtex_model.model, "tissue", "Blood", "Liver", steps=5, n_per_step=50)
    lam = walk.obs["sgs_lambda"].to_numpy()
    X = np.asarray(walk.X)
    start, end = X[lam == 0].mean(0), X[lam == 1].mean(0)
    position = [((X[lam == v] - start) @ (end - start)).mean() for v in np.unique(lam)]
    position = np.array(position) / ((end - start) @ (end - start))
    assert np.all(np.diff(position) > 0), position


def test_interpolate_errors(gtex_model):
    model = gtex_model.model
    with pytest.raises(ValueError, match="not a categorical covariate"):
        sgs.tl.interpolate(model, "sex", "male", "female")
    with pytest.raises(ValueError, match="Unicorn"):
        sgs.tl.interpolate(model, "tissue", "Blood", "Unicorn")
    with pytest.raises(ValueError, match="steps"):
        sgs.tl.interpolate(model, "tissue", "Blood", "Liver", steps=1)
    with pytest.raises(ValueError, match="n_per_step"):
        sgs.tl.interpolate(model, "tissue", "Blood", "Liver", n_per_step=0)
    for steps in (2.9, None, "5", True):  # never truncated or defaulted silently
        with pytest.raises(TypeError, match=r"steps must be a whole number >= 2"):
            sgs.tl.interpolate(model, "tissue", "Blood", "Liver", steps=steps)
    with pytest.raises(TypeError, match=r"n_per_step must be a whole number"):
        sgs.tl.interpolate(model, "tissue", "Blood", "Liver", n_per_step=10.5)
    with pytest.raises(TypeError, match="guidance_scale"):
        sgs.tl.interpolate(model, "tissue", "Blood", "Liver", guidance_scale=2.0)
    with pytest.raises(ValueError, match="interpolated"):
        sgs.tl.interpolate(model, "tissue", "Blood", "Liver", covariates={"tissue": "Lung"})


def test_models_without_embeddings_are_refused(gtex):
    for name in sgs.model.available().index:  # the noise baseline: real samples plus noise
        cls = sgs.model.get_model_class(name)
        model = cls(cls.setup_proxy(gtex, categorical_covariate_keys="tissue"), **cls.quick_kwargs)
        if model.module.covariate_embedder() is None:
            model.train(n_steps=2, selection=None, enable_progress_bar=False)
            with pytest.raises(TypeError, match="no learned covariate embeddings"):
                sgs.tl.interpolate(model, "tissue", "Blood", "Liver")
