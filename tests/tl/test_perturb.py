"""sgs.tl.perturb: the perturbed AnnData, its scanpy-shaped ranking, and refused input.

A tiny TSPG model is trained once for the module; the quality of a default-length model is
tested in tests/model/test_tspg.py.
"""

from __future__ import annotations

import anndata as ad
import matplotlib
import numpy as np
import pandas as pd
import pytest
import scanpy as sc

import scgensynth as sgs

matplotlib.use("Agg")

TINY = {
    "n_hidden_classifier": (64,),
    "n_hidden_generator": (64, 32),
    "n_residual": 1,
    "n_hidden_discriminator": (32,),
    "classifier_steps": 60,
    "n_steps": 80,
    "enable_progress_bar": False,
}


@pytest.fixture(scope="module")
def model():
    return sgs.tl.train_tspg(sgs.datasets.gtex_tissues(), "tissue", seed=0, **TINY)


def test_perturbed_anndata(model, gtex, snapshot):
    snap = snapshot(gtex)
    out = sgs.tl.perturb(gtex, model, source=["Lung", "Brain"], target="Liver")
    snap.assert_unchanged(gtex)  # nothing written to the input
    rows = gtex.obs["tissue"].isin(["Lung", "Brain"]).to_numpy()
    assert out.n_obs == rows.sum() == 40
    assert list(out.obs_names) == list(gtex.obs_names[rows])
    assert list(out.var_names) == list(gtex.var_names)
    np.testing.assert_array_equal(out.layers["original"], gtex.X[rows])
    np.testing.assert_allclose(
        out.X, out.layers["original"] + out.layers["perturbation"], atol=1e-5
    )
    assert np.abs(out.layers["perturbation"]).max() > 0
    # within each gene's training range
    X = np.asarray(gtex.X)
    assert (X.min(0) - 1e-5 <= out.X).all()
    assert (X.max(0) + 1e-5 >= out.X).all()
    # obs: the samples' own columns plus source, target, f's view of the perturbed sample
    assert list(out.obs.columns) == ["tissue", "source", "target", "target_probability",
                                     "predicted"]  # fmt: skip
    assert list(out.obs["source"].cat.categories) == ["Lung", "Brain"]
    assert (out.obs["source"].astype(str) == gtex.obs["tissue"][rows].astype(str)).all()
    assert (out.obs["target"] == "Liver").all()
    probs = model.predict(out.X, probabilities=True)
    np.testing.assert_allclose(
        out.obs["target_probability"], probs[:, model.categories.index("Liver")], rtol=1e-5
    )
    assert (out.obs["predicted"].astype(str) == model.predict(out.X)).all()
    liver = X[gtex.obs["tissue"] == "Liver"].mean(0)
    np.testing.assert_allclose(out.var["target_mean"], liver, rtol=1e-4, atol=1e-4)
    assert out.uns["tspg"]["target"] == "Liver"
    assert out.uns["tspg"]["sources"] == ["Lung", "Brain"]


def test_default_sources_are_every_other_class(model, gtex):
    out = sgs.tl.perturb(gtex, model, target="Liver")
    assert out.n_obs == (gtex.obs["tissue"] != "Liver").sum()
    assert set(out.obs["source"].cat.categories) == set(model.categories) - {"Liver"}
    one = sgs.tl.perturb(gtex, model, source="Lung", target="Liver")
    assert list(one.obs["source"].cat.categories) == ["Lung"]
    np.testing.assert_allclose(one.X, out[out.obs["source"] == "Lung"].X, rtol=1e-6)


@pytest.mark.filterwarnings("ignore:Attempting to set identical low and high ylims")
@pytest.mark.parametrize("rank_by", ["mean", "effect", "sign"])
def test_ranking_reads_back_through_scanpy(model, gtex, rank_by, tmp_path):
    out = sgs.tl.perturb(
        gtex,
        model,
        source=["Lung", "Brain"],
        target="Liver",
        rank_by=rank_by,
        key_added="tspg_rank",
    )
    ranking = out.uns["tspg_rank"]
    assert ranking["params"]["method"] == "tspg"
    assert ranking["params"]["groupby"] == "source"
    assert ranking["params"]["reference"] == "Liver"
    assert ranking["params"]["layer"] == "perturbation"
    df = sc.get.rank_genes_groups_df(out, "Lung", key="tspg_rank")
    assert len(df) == out.n_vars
    assert (np.diff(df["scores"].to_numpy()) <= 1e-6).all()  # sorted, most increased first
    # logfoldchanges: the mean perturbation of the gene over the Lung samples
    lung = out[out.obs["source"] == "Lung"]
    mean_p = pd.Series(lung.layers["perturbation"].mean(0), index=out.var_names)
    np.testing.assert_allclose(df["logfoldchanges"], mean_p[df["names"]], rtol=1e-4, atol=1e-6)
    if rank_by == "mean":
        assert df["names"].iloc[0] == mean_p.idxmax()
        assert df["names"].iloc[-1] == mean_p.idxmin()
    sc.pl.rank_genes_groups(out, key="tspg_rank", n_genes=5, show=False)
    out.write_h5ad(tmp_path / "perturbed.h5ad")  # no model objects in uns
    back = ad.read_h5ad(tmp_path / "perturbed.h5ad")
    pd.testing.assert_frame_equal(sc.get.rank_genes_groups_df(back, "Lung", key="tspg_rank"), df)


def test_other_labels_key_and_layer(model, gtex):
    other = gtex.copy()
    other.obs["organ"] = other.obs["tissue"].astype(str)
    other.obs = other.obs.drop(columns="tissue")
    out = sgs.tl.perturb(other, model, source="Lung", target="Liver", labels_key="organ")
    assert out.n_obs == 20
    with pytest.raises(KeyError, match=r"no column 'tissue'.*labels_key="):
        sgs.tl.perturb(other, model, source="Lung", target="Liver")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"target": "Liverr"}, ValueError, r"target='Liverr' is not a class of 'tissue'"),
        ({"target": None}, ValueError, r"Pass the class to perturb to, e\.g\. target="),
        ({"source": "Liver", "target": "Liver"}, ValueError, r"source and target are both"),
        ({"source": ["Lung", "Liver"], "target": "Liver"}, ValueError, "source and target"),
        ({"source": "Lungs", "target": "Liver"}, ValueError,
         r"source='Lungs' is not a class of 'tissue' in adata"),
        ({"target": "Liver", "rank_by": "median"}, ValueError, "rank_by must be one of"),
        ({"target": "Liver", "batch_size": 0}, ValueError, "batch_size must be a whole"),
        ({"source": [], "target": "Liver"}, ValueError, r"source is empty; name the classes"),
    ],
)  # fmt: skip
def test_bad_input(model, gtex, snapshot, kwargs, error, match):
    snap = snapshot(gtex)
    with pytest.raises(error, match=match):
        sgs.tl.perturb(gtex, model, **kwargs)
    snap.assert_unchanged(gtex)


def test_only_target_samples(model, gtex):
    liver = gtex[gtex.obs["tissue"] == "Liver"].copy()
    with pytest.raises(ValueError, match=r"of the target class 'Liver'.*nothing to perturb"):
        sgs.tl.perturb(liver, model, target="Liver")


def test_genes_must_match(model, gtex):
    with pytest.raises(ValueError, match=r"lacks 2 of the model's 467 genes"):
        sgs.tl.perturb(gtex[:, 2:].copy(), model, target="Liver")
    # order and extra genes do not matter: genes are matched by name
    shuffled = gtex[:, gtex.var_names[::-1]].copy()
    a = sgs.tl.perturb(shuffled, model, source="Lung", target="Liver")
    b = sgs.tl.perturb(gtex, model, source="Lung", target="Liver")
    assert list(a.var_names) == list(b.var_names)
    np.testing.assert_allclose(a.X, b.X, rtol=1e-6)


def test_untrained_or_wrong_model(gtex):
    from scgensynth.model import TSPG

    proxy = TSPG.setup_proxy(gtex, "tissue")
    with pytest.raises(ValueError, match=r"not trained; call model\.train\(\)"):
        sgs.tl.perturb(gtex, TSPG(proxy), target="Liver")
    with pytest.raises(TypeError, match=r"must be a trained sgs\.model\.TSPG"):
        sgs.tl.perturb(gtex, "tspg", target="Liver")


def test_train_tspg_leaves_adata_alone(gtex, snapshot):
    snap = snapshot(gtex)
    sgs.tl.train_tspg(gtex, "tissue", **{**TINY, "classifier_steps": 2, "n_steps": 2})
    snap.assert_unchanged(gtex)
