"""sgs.tl.train and the model registry."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pandas as pd
import pytest

import scgensynth as sgs


def test_registry_lists_every_generator_once():
    table = sgs.model.available()
    assert table.index.is_unique
    assert {"class", "description", "reference"} == set(table.columns)
    for name, row in table.iterrows():
        cls = sgs.model.get_model_class(name)
        assert cls.__name__ == row["class"]
        assert issubclass(cls, sgs.model.BaseGeneratorModel)


def test_train_by_name_equals_the_named_tool(gtex, fast):
    kw = {"categorical_covariate_keys": ["tissue"], "n_steps": 40, "selection": None, **fast}
    a = sgs.tl.train(gtex, "wgan", seed=3, **kw)
    b = sgs.tl.train_wgan(gtex.copy(), seed=3, **kw)
    assert set(gtex.uns) >= {"wgan"}  # default key: the model's name
    x, y = a.generate(50, seed=1).X, b.generate(50, seed=1).X
    np.testing.assert_array_equal(x, y)
    # model arguments are routed to the constructor, the rest to train()
    assert a.module.n_latent == 64
    c = sgs.tl.train(gtex, "wgan", seed=3, n_latent=8, key_added="small", **kw)
    assert c.module.n_latent == 8
    assert gtex.uns["small"]["params"]["n_latent"] == 8


def test_named_tools_for_every_adversarial_model(gtex, fast):
    kw = {"categorical_covariate_keys": ["tissue"], "n_steps": 20, "selection": None, **fast}
    assert isinstance(sgs.tl.train_gan(gtex, **kw), sgs.model.GAN)
    attgan = sgs.tl.train_attgan(gtex, top_k=3, **kw)
    assert isinstance(attgan, sgs.model.AttGAN)
    assert attgan.module.attention.n_edges == 460 * 3
    assert {"gan", "attgan"} <= set(gtex.uns)
    assert gtex.uns["attgan"]["params"]["top_k"] == 3


def test_load_model_finds_the_class(gtex, fast, tmp_path):
    kw = {"categorical_covariate_keys": ["tissue"], "n_steps": 20, "selection": None}
    small = sgs.model.CVAE.quick_kwargs
    model = sgs.tl.train(gtex, "cvae", enable_progress_bar=False, **kw, **small)
    model.save(str(tmp_path / "cvae"))
    back = sgs.model.load_model(str(tmp_path / "cvae"), adata=gtex)
    assert type(back) is sgs.model.CVAE
    np.testing.assert_array_equal(back.generate(5, seed=2).X, model.generate(5, seed=2).X)
    with pytest.raises(FileNotFoundError, match="no saved model"):
        sgs.model.load_model(str(tmp_path), adata=gtex)


def test_unknown_model_is_a_clear_error(gtex, snapshot):
    snap = snapshot(gtex)
    with pytest.raises(ValueError, match=r"Unknown model 'wgan-gp'.*available"):
        sgs.tl.train(gtex, "wgan-gp")
    with pytest.raises(ValueError, match="Unknown model"):
        sgs.model.get_model_class(None)
    snap.assert_unchanged(gtex)


# -- compare_generators ---------------------------------------------------------------------------
def test_compare_generators_on_gtex(gtex, snapshot, fast):
    snap = snapshot(gtex)
    table = sgs.tl.compare_generators(
        gtex, "tissue", models=["wgan"], n_steps=60, selection=None, metrics="fast",
        model_kwargs={"wgan": fast},
    )  # fmt: skip
    snap.assert_unchanged(gtex)
    assert list(table.columns[:3]) == ["model", "metric", "value"]
    assert set(table["model"]) == {"wgan"}
    wgan = table.set_index(["metric", "group"])["value"]
    assert wgan[("train_seconds", "all")] > 0
    # 467 genes, two hidden layers of 64 in generator and critic: tens of thousands
    assert wgan[("n_parameters", "all")] > 10_000
    assert {"correlation_score", "frechet_distance_pca", "nearest_centroid_agreement"} <= set(
        table["metric"]
    )
    # the held-out part is 30 %: per-label metrics see the 26 tissues
    pivot = table.query("group == 'all'").pivot_table(
        index="metric", columns="model", values="value"
    )
    assert pivot.shape[0] >= 10


def test_compare_every_registered_generator(gtex):
    """All models on one split, briefly: one table, the same metrics for each."""
    names = list(sgs.model.available().index)
    small = {
        name: {**sgs.model.get_model_class(name).quick_kwargs, "enable_progress_bar": False}
        for name in names
    }
    table = sgs.tl.compare_generators(
        gtex, "tissue", n_steps=20, selection=None, metrics="fast", model_kwargs=small
    )
    assert set(table["model"]) == set(names)
    per_model = table.groupby("model")["metric"].apply(frozenset)
    assert per_model.nunique() == 1  # every model got the same metrics
    params = table[table["metric"] == "n_parameters"].set_index("model")["value"]
    assert params["attgan"] > params["wgan"]  # the attention layer's per-gene weights
    for name in names:  # a generator without a training plan (the noise baseline) learns nothing
        if sgs.model.get_model_class(name)._training_plan_cls is None:
            assert params[name] == 0


def test_compare_generators_bad_input(gtex, snapshot):
    snap = snapshot(gtex)
    with pytest.raises(ValueError, match="Unknown model"):
        sgs.tl.compare_generators(gtex, "tissue", models=["wgan", "vae"])
    with pytest.raises(KeyError, match="not a column"):
        sgs.tl.compare_generators(gtex, "tisue", models=["wgan"])
    with pytest.raises(ValueError, match="not compared"):
        sgs.tl.compare_generators(gtex, "tissue", models=["wgan"], model_kwargs={"gan": {}})
    one = gtex[:21].copy()  # 20 samples of one tissue and 1 of the next
    with pytest.raises(ValueError, match="at least 2 samples"):
        sgs.tl.compare_generators(one, "tissue", models=["wgan"])
    snap.assert_unchanged(gtex)


# -- train_<name>: signature and Parameters section read from the model class -----------------
def _documented(func) -> list[str]:
    """Names in the Parameters section, read by Sphinx's numpy parser (not ours)."""
    from sphinx.ext.napoleon.docstring import NumpyDocstring

    text = str(NumpyDocstring(inspect.getdoc(func)))
    return [n.replace("\\*", "*") for n in re.findall(r"^:param ([^:]+):", text, re.M)]


@pytest.mark.parametrize("name", list(sgs.model.available().index))
def test_named_trainer_documents_every_argument_it_takes(name):
    trainer = getattr(sgs.tl, f"train_{name}")
    cls = sgs.model.get_model_class(name)
    params = inspect.signature(trainer).parameters
    assert next(iter(params)) == "adata"
    assert _documented(trainer) == [*list(params)[:-1], "**kwargs"]  # same names, same order
    assert params["kwargs"].kind is inspect.Parameter.VAR_KEYWORD
    # the model's own arguments, with the class's defaults
    init = inspect.signature(cls).parameters
    for arg, p in init.items():
        if arg not in ("adata", "seed"):  # AttGAN's graph seed is train's seed
            assert params[arg].default == p.default, arg
    for arg in cls.plan_arguments():
        plan_default = inspect.signature(cls._training_plan_cls).parameters[arg].default
        assert params[arg].default == plan_default, arg
    if cls._training_plan_cls is not None:
        assert {"n_steps", "batch_size", "selection", "checkpoint_dir"} <= set(params)
        assert f"{cls.default_n_steps:,}" in inspect.getdoc(trainer)
    else:  # trained in one pass: no steps to set
        assert "n_steps" not in params
    assert params["key_added"].default == name


@pytest.mark.parametrize("name", list(sgs.model.available().index))
def test_named_trainer_accepts_every_documented_argument(gtex, name):
    """Every argument the signature lists, given explicitly at its default, trains."""
    small = gtex[gtex.obs["tissue"].isin(["Liver", "Lung", "Testis"])].copy()
    trainer = getattr(sgs.tl, f"train_{name}")
    cls = sgs.model.get_model_class(name)
    given = {
        n: p.default
        for n, p in inspect.signature(trainer).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    given.update(cls.quick_kwargs)
    given.update(categorical_covariate_keys=["tissue"], key_added="k")
    if "n_steps" in given:
        given.update(n_steps=2, batch_size=16, selection=None)
    model = trainer(small, enable_progress_bar=False, **given)
    assert isinstance(model, cls)
    assert model.is_trained_
    assert small.uns["k"]["params"]["model"] == cls.__name__
    with pytest.raises(TypeError, match="n_stepz"):
        trainer(small, categorical_covariate_keys=["tissue"], n_stepz=5)


def test_named_trainer_routes_plan_arguments(gtex, fast):
    """A training-plan argument of the signature reaches the plan (and is recorded)."""
    kw = {"categorical_covariate_keys": ["tissue"], "n_steps": 10, "selection": None, **fast}
    default = sgs.tl.train_wgan(gtex, key_added="a", **kw)
    fewer = sgs.tl.train_wgan(gtex, n_critic=1, key_added="b", **kw)
    assert gtex.uns["b"]["params"]["n_critic"] == 1
    x, y = default.generate(20, seed=0).X, fewer.generate(20, seed=0).X
    assert not np.allclose(x, y)


# -- a saved generator loads without its training data ----------------------------------------
@pytest.mark.parametrize("name", list(sgs.model.available().index))
def test_a_saved_generator_loads_and_generates_without_its_data(gtex, name, tmp_path):
    """The model file holds what generating needs: the same samples as with the data."""
    small = gtex[gtex.obs["tissue"].isin(["Liver", "Lung", "Testis"])].copy()
    small.obs["age"] = np.linspace(20.0, 70.0, small.n_obs)
    cls = sgs.model.get_model_class(name)
    kw = dict(cls.quick_kwargs)
    if cls._training_plan_cls is not None:
        kw.update(n_steps=4, batch_size=16, selection=None, enable_progress_bar=False)
    model = sgs.tl.train(
        small, name, categorical_covariate_keys="tissue", continuous_covariate_keys="age", **kw
    )
    model.save(tmp_path / "m")
    alone = sgs.model.load_model(tmp_path / "m")  # no adata
    given = sgs.model.load_model(tmp_path / "m", adata=small)
    assert type(alone) is cls
    for args in ({"n_obs": 9}, {"n_obs": 4, "covariates": {"tissue": "Lung", "age": 30.0}}):
        a, b = alone.generate(seed=5, **args), given.generate(seed=5, **args)
        np.testing.assert_array_equal(a.X, b.X)
        pd.testing.assert_frame_equal(a.obs, b.obs)
        pd.testing.assert_frame_equal(a.var, small.var)  # annotations kept in the file
    with pytest.raises(ValueError, match="loaded without its training data"):
        alone.save(tmp_path / "again", save_anndata=True)
    assert not (tmp_path / "again").exists()
    alone.save(tmp_path / "again")  # saved again: loads with the data as before
    back = sgs.model.load_model(tmp_path / "again", adata=small)
    np.testing.assert_array_equal(back.generate(9, seed=5).X, given.generate(9, seed=5).X)


def test_a_damaged_annotation_table_is_a_model_file_error(gtex, tmp_path, safetensors_header):
    import json

    sgs.tl.train(gtex, "gaussian", categorical_covariate_keys="tissue").save(tmp_path / "m")
    header, data = safetensors_header.read(tmp_path / "m" / "model.safetensors")
    metadata = json.loads(header["__metadata__"]["sgs_metadata"])
    metadata["var"] = [1, 2]
    header["__metadata__"]["sgs_metadata"] = json.dumps(metadata)
    (tmp_path / "bad").mkdir()
    safetensors_header.write(tmp_path / "bad" / "model.safetensors", header, data)
    with pytest.raises(sgs.model.ModelFileError, match="'var' is damaged"):
        sgs.model.load_model(tmp_path / "bad")
    sgs.model.load_model(tmp_path / "bad", adata=gtex)  # with the data, its .var is used
