"""sgs.pl.perturbation_heatmap: TSPG's Fig. 2 for one perturbed sample."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import scgensynth as sgs

matplotlib.use("Agg")

TINY = {
    "n_hidden_classifier": (64,),
    "n_hidden_generator": (64, 32),
    "n_residual": 1,
    "n_hidden_discriminator": (32,),
    "classifier_steps": 40,
    "n_steps": 40,
    "enable_progress_bar": False,
}


@pytest.fixture(scope="module")
def perturbed():
    adata = sgs.datasets.gtex_tissues()
    model = sgs.tl.train_tspg(adata, "tissue", seed=0, **TINY)
    return sgs.tl.perturb(adata, model, source=["Lung", "Brain"], target="Liver"), adata


def _image_values(ax) -> np.ndarray:
    """The four columns drawn: expression image with the perturbation image filled in."""
    expr, pert = ax.get_images()
    values = np.ma.getdata(expr.get_array()).copy()
    values[:, 1] = np.ma.getdata(pert.get_array())[:, 1]
    return values


def test_default_genes_and_labels(perturbed):
    out, _ = perturbed
    ax = sgs.pl.perturbation_heatmap(out, sample=3, n_genes=12, show=False)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["sample", "perturbation", "perturbed", "target mean"]
    genes = [t.get_text() for t in ax.get_yticklabels()]
    # the 12 largest mean perturbations (up or down) of the sample's source class
    source = str(out.obs["source"].iloc[3])
    mean_p = pd.Series(out[out.obs["source"] == source].layers["perturbation"].mean(0),
                       index=out.var_names)  # fmt: skip
    assert set(genes) == set(mean_p.abs().nlargest(12).index)
    assert ax.get_title() == f"{out.obs_names[3]}: {source} → Liver"
    values = _image_values(ax)
    cols = out.var_names.get_indexer(genes)
    np.testing.assert_allclose(values[:, 0], out.layers["original"][3, cols], rtol=1e-6)
    np.testing.assert_allclose(values[:, 1], out.layers["perturbation"][3, cols], rtol=1e-6)
    np.testing.assert_allclose(values[:, 2], out.X[3, cols], rtol=1e-6)
    np.testing.assert_allclose(values[:, 3], out.var["target_mean"].iloc[cols], rtol=1e-6)
    plt.close("all")


def test_chosen_genes_sample_by_name_and_reference(perturbed):
    out, adata = perturbed
    genes = list(out.var_names[[5, 0, 9]])
    name = out.obs_names[-1]
    fig, ax = plt.subplots()
    returned = sgs.pl.perturbation_heatmap(
        out, genes, sample=name, reference=adata, ax=ax, show=False
    )
    assert returned is ax
    assert [t.get_text() for t in ax.get_yticklabels()] == genes
    liver = np.asarray(adata[adata.obs["tissue"] == "Liver", genes].X).mean(0)
    values = _image_values(ax)
    np.testing.assert_allclose(values[:, 3], liver, rtol=1e-5)
    np.testing.assert_allclose(values[:, 2], out[name, genes].X.ravel(), rtol=1e-6)
    # an explicit target mean, as a Series by gene
    given = pd.Series(np.arange(out.n_vars, dtype=float), index=out.var_names)
    ax = sgs.pl.perturbation_heatmap(out, genes, target_mean=given, show=False)
    np.testing.assert_allclose(_image_values(ax)[:, 3], [5.0, 0.0, 9.0])
    fig = sgs.pl.perturbation_heatmap(out, genes, return_fig=True)
    assert isinstance(fig, Figure)
    plt.close("all")


def test_bad_input(perturbed):
    out, adata = perturbed
    with pytest.raises(IndexError, match="out of range for 40"):
        sgs.pl.perturbation_heatmap(out, sample=40, show=False)
    with pytest.raises(KeyError, match="not an obs name"):
        sgs.pl.perturbation_heatmap(out, sample="nope", show=False)
    with pytest.raises(ValueError, match=r"1 gene\(s\) are not in the perturbed AnnData"):
        sgs.pl.perturbation_heatmap(out, [out.var_names[0], "NOT_A_GENE"], show=False)
    with pytest.raises(ValueError, match=r"no layers\['perturbation'\]"):
        sgs.pl.perturbation_heatmap(adata, show=False)
    with pytest.raises(ValueError, match="one value per gene"):
        sgs.pl.perturbation_heatmap(out, target_mean=[1.0, 2.0], show=False)
    plt.close("all")
