"""The generator contract, as a worked example: a new generator is three parts and one line.

A tiny generator is defined here (its torch module, its training plan and its model class,
the three files of a built-in generator) and registered with ``sgs.model.register``. With
no other edit anywhere, every tool takes it: ``sgs.tl.train`` and its ``train_<name>``
shortcut, ``generate``, save/load, ``compare_generators``, ``counterfactual`` and
``interpolate`` (it declares a noise input and a covariate embedding), the command line and
``sgs.pl.training_history`` (it declares its logged loss). docs/contributing.md walks
through the same code.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from scvi.module.base import LossOutput

import scgensynth as sgs
from scgensynth.cli import main
from scgensynth.model import BaseGeneratorModel
from scgensynth.module import ConditionalGeneratorModule, LatentGeneratorMixin
from scgensynth.nn import MLP, CovariateEmbedder
from scgensynth.train import EpochMeanPlan

matplotlib.use("Agg")

NAME = "tinymmd"
TISSUES = ["Liver", "Lung", "Brain"]


# -- 1. the torch module: the network, and what it declares for the tools --------------------
class TinyModule(LatentGeneratorMixin, ConditionalGeneratorModule):
    """``z ~ N(0, I)`` and the covariate embedding, through a small MLP (network space).

    ``LatentGeneratorMixin`` gives ``generate_scaled``, the noise input ``"z"`` of width
    ``n_latent`` and the covariate embedding ``generator_embedding``.
    """

    def __init__(self, n_input, n_cats_per_cov=(), n_continuous_cov=0, scaling="standardize",
                 n_latent=4):  # fmt: skip
        super().__init__(n_input, n_cats_per_cov, n_continuous_cov, scaling)
        self.n_latent = int(n_latent)
        self.generator_embedding = CovariateEmbedder(self.n_cats_per_cov, self.n_continuous_cov)
        self.generator = MLP(self.n_latent + self.generator_embedding.n_output, n_input, [32])

    def mmd(self, x_scaled, cat=None, cont=None) -> torch.Tensor:
        """Maximum mean discrepancy (Gaussian kernels) of generated to real samples."""
        fake = self.generate_scaled(x_scaled.shape[0], cat, cont)
        both = torch.cat([x_scaled, fake])
        d = torch.cdist(both, both) ** 2
        k = sum(torch.exp(-d / (2 * s * x_scaled.shape[1])) for s in (0.5, 1.0, 2.0))
        n = x_scaled.shape[0]
        return k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()

    def loss(self, tensors, inference_outputs, generative_outputs, **kwargs) -> LossOutput:
        real = inference_outputs["x_scaled"]
        mmd = self.mmd(real, inference_outputs["cat"], inference_outputs["cont"])
        return LossOutput(loss=mmd, n_obs_minibatch=real.shape[0])


# -- 2. the training plan: its loop, and the losses it logs ----------------------------------
class TinyPlan(EpochMeanPlan):
    """One Adam step on the MMD of each mini-batch."""

    logged_losses = ("mmd",)
    progress_losses = ("mmd",)

    def __init__(self, module: TinyModule, *, lr: float = 1e-2):
        super().__init__()
        self.module = module
        self.lr = float(lr)

    def configure_optimizers(self):
        return torch.optim.Adam(self.module.parameters(), lr=self.lr)

    def training_step(self, batch, batch_idx):
        x, cat, cont = self.module.parse_batch(batch)
        loss = self.module.mmd(self.module.scaling(x), cat, cont)
        self.accumulate("mmd", loss, x.shape[0])
        return loss


# -- 3. the model class: what users hold, and its registry entry -----------------------------
class TinyMMD(BaseGeneratorModel):
    """A tiny conditional generator trained by maximum mean discrepancy (a test example)."""

    description = "tiny MLP generator trained by maximum mean discrepancy (worked example)"
    reference = "docs/contributing.md"
    quick_kwargs = {"n_latent": 4}  # noqa: RUF012
    _module_cls = TinyModule
    _training_plan_cls = TinyPlan
    default_n_steps = 600

    def __init__(self, adata=None, n_latent: int = 4, scaling: str = "auto"):
        super().__init__(adata, scaling=scaling)
        self._build_module(f"latent {n_latent}", n_latent=n_latent)  # + data shape, scaling
        self.init_params_ = self._get_init_params(locals())


@pytest.fixture(scope="module")
def registered():
    """The one line: ``sgs.model.register(NAME, TinyMMD)`` (undone after these tests)."""
    sgs.model.register(NAME, TinyMMD)
    yield TinyMMD
    sgs.model.unregister(NAME)


@pytest.fixture(scope="module")
def data():
    adata = sgs.datasets.gtex_tissues()
    adata = adata[adata.obs["tissue"].isin(TISSUES).to_numpy(), :40].copy()
    adata.obs["tissue"] = adata.obs["tissue"].cat.remove_unused_categories()
    return adata


@pytest.fixture(scope="module")
def model(registered, data):
    train = getattr(sgs.tl, f"train_{NAME}")  # made from the registry, no code of its own
    return train(data, categorical_covariate_keys=["tissue"], selection=None, batch_size=30,
                 enable_progress_bar=False)  # fmt: skip


def _tissue_means(adata) -> pd.DataFrame:
    frame = pd.DataFrame(
        np.asarray(adata.X), index=adata.obs["tissue"].astype(str), columns=adata.var_names
    )
    return frame.groupby(level=0).mean()


def test_the_registry_lists_it(registered):
    table = sgs.model.available()
    assert table.loc[NAME, "class"] == "TinyMMD"
    assert table.loc[NAME, "description"] == TinyMMD.description
    assert sgs.model.get_model_class(NAME) is TinyMMD
    assert TinyMMD.plan_arguments() == ("lr",)  # read from the plan, not written twice
    with pytest.raises(ValueError, match=r"already names TinyMMD"):
        sgs.model.register(NAME, sgs.model.WGANGP)


def test_it_trains_and_generates_each_tissue(model, data):
    assert model.is_trained_
    assert model.history_["mmd"].iloc[-1, 0] < model.history_["mmd"].iloc[0, 0]
    synth = model.generate(600, seed=0)
    real, fake = _tissue_means(data), _tissue_means(synth)
    # each tissue's synthetic mean is nearest the same tissue's real mean
    d = ((fake.to_numpy()[:, None] - real.to_numpy()[None]) ** 2).sum(-1)
    assert list(real.index[d.argmin(1)]) == list(fake.index), d
    assert data.uns[NAME]["params"]["model"] == "TinyMMD"


def test_it_saves_and_loads(model, data, tmp_path):
    model.save(tmp_path / "tiny")
    back = sgs.model.load_model(tmp_path / "tiny", adata=data)
    assert type(back) is TinyMMD
    np.testing.assert_array_equal(back.generate(50, seed=3).X, model.generate(50, seed=3).X)


def test_the_tools_read_its_declarations(model, data):
    cf = sgs.tl.counterfactual(model, "tissue", "Lung", "Liver", n_obs=200)
    real = _tissue_means(data)
    moved = np.asarray(cf.uns["rank_genes_groups"]["logfoldchanges"]["Liver"], dtype=float)
    names = list(cf.uns["rank_genes_groups"]["names"]["Liver"])
    expected = (real.loc["Liver"] - real.loc["Lung"]).loc[names].to_numpy()
    assert np.corrcoef(moved, expected)[0, 1] > 0.5
    walk = sgs.tl.interpolate(model, "tissue", "Lung", "Liver", steps=3, n_per_step=20)
    assert walk.n_obs == 60
    ax = sgs.pl.training_history(model, show=False)
    assert [line.get_label() for line in ax.get_lines()] == ["mmd"]


def test_compare_generators_and_the_command_line_take_it(registered, data, tmp_path):
    table = sgs.tl.compare_generators(
        data, "tissue", models=[NAME], metrics="fast", n_steps=60, selection=None,
        enable_progress_bar=False,
    )  # fmt: skip
    assert set(table["model"]) == {NAME}
    data.write_h5ad(tmp_path / "d.h5ad")
    args = ["train", str(tmp_path / "d.h5ad"), "--model", NAME, "--categorical", "tissue"]
    assert main([*args, "--n-steps", "30", "--out", str(tmp_path / "m")]) == 0
    assert type(sgs.model.load_model(tmp_path / "m", adata=data)) is TinyMMD


def test_nothing_else_names_it():
    """No other file of the package or its tests knows the example (one line registers it)."""
    repo = Path(__file__).parents[2]
    names = ("TinyMMD", "tinymmd", "TinyModule", "TinyPlan")
    hits = [
        str(path.relative_to(repo))
        for folder in ("src", "tests")
        for path in (repo / folder).rglob("*.py")
        if path != Path(__file__) and any(n in path.read_text() for n in names)
    ]
    assert hits == []


@pytest.mark.parametrize("name", list(sgs.model.available().index))
def test_model_and_module_defaults_agree(name):
    """A model's signature repeats its module's hyperparameters (as scvi-tools' models do,
    so both document themselves); the defaults must not drift apart."""
    import inspect

    cls = sgs.model.get_model_class(name)
    model_params = inspect.signature(cls.__init__).parameters
    module_params = inspect.signature(cls._module_cls.__init__).parameters
    shared = (set(model_params) & set(module_params)) - {"self", "scaling"}
    differ = {
        p: (model_params[p].default, module_params[p].default)
        for p in shared
        if module_params[p].default is not inspect.Parameter.empty
        and model_params[p].default is not None  # None: derived by the model (documented)
        and model_params[p].default != module_params[p].default
    }
    assert differ == {}


def test_check_categories_names_what_is_wrong(data):
    proxy = sgs.model.WGANGP.setup_proxy(data, categorical_covariate_keys="tissue")
    model = sgs.model.WGANGP(proxy, **sgs.model.WGANGP.quick_kwargs)
    assert list(model.check_categories("tissue", [TISSUES[0]])) == [TISSUES[0]]
    with pytest.raises(ValueError, match="Unknown categories for 'tissue'"):
        model.check_categories("tissue", ["no such tissue"])
    with pytest.raises(KeyError, match="not a categorical covariate of this model"):
        model.check_categories("sex", ["female"])


def test_scvi_methods_a_generator_lacks_are_hidden_and_say_what_to_use():
    adata = sgs.datasets.gtex_tissues()[:, :40].copy()
    model = sgs.model.WGANGP(sgs.model.WGANGP.setup_proxy(adata, None, ["tissue"], None))
    names = dir(model)
    assert "generate" in names
    assert "get_normalized_expression" not in names
    assert "differential_abundance" not in names
    with pytest.raises(NotImplementedError, match="generate"):
        model.get_normalized_expression()
    with pytest.raises(NotImplementedError, match=r"sgs\.metrics\.evaluate"):
        model.differential_abundance()
