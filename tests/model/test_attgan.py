"""AttGAN / RandAttGAN: graphs, pre-training, save/load, wide data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import sparse

import scgensynth as sgs

QUIET = {"enable_progress_bar": False}
SMALL = {"n_hidden": (64, 64), "selection": None, **QUIET}


@pytest.fixture(scope="module")
def gtex_attgan():
    adata = sgs.datasets.gtex_tissues()
    model = sgs.tl.train(
        adata, "attgan", categorical_covariate_keys=["tissue"], n_steps=200, seed=0, **SMALL
    )
    return adata, model


def test_coexpression_graph_is_built_from_the_data(gtex_attgan):
    adata, model = gtex_attgan
    attn = model.module.attention
    assert attn.n_edges == 460 * 10  # 467 genes, 7 constant ones have no neighbours
    # the edges are the top-10 |r| of each gene
    X = np.asarray(adata.X, dtype=np.float64)
    r = np.abs(np.corrcoef(X.T))
    gene = int(attn.dst[0])
    row = np.nan_to_num(r[gene])
    row[gene] = -1
    expected = set(np.argsort(-row, kind="stable")[:10])
    assert set(attn.src[attn.dst == gene].tolist()) == expected
    synth = model.generate(50, seed=0)
    assert np.isfinite(synth.X).all()


def test_save_load_keeps_the_graph_and_the_samples(gtex_attgan, tmp_path):
    adata, model = gtex_attgan
    model.save(str(tmp_path / "m"))
    back = sgs.model.AttGAN.load(str(tmp_path / "m"), adata=adata)
    assert torch.equal(back.module.attention.src, model.module.attention.src)
    np.testing.assert_array_equal(back.generate(20, seed=4).X, model.generate(20, seed=4).X)


def test_random_graph_keeps_degrees(gtex_attgan):
    adata, model = gtex_attgan
    rand = sgs.tl.train(
        adata.copy(), "randattgan", categorical_covariate_keys=["tissue"], n_steps=20, **SMALL
    )
    a, b = model.module.attention, rand.module.attention
    assert a.n_edges == b.n_edges
    assert torch.equal(torch.bincount(a.dst, minlength=467), torch.bincount(b.dst, minlength=467))
    edges_a = set(zip(a.src.tolist(), a.dst.tolist(), strict=True))
    edges_b = set(zip(b.src.tolist(), b.dst.tolist(), strict=True))
    assert len(edges_a & edges_b) < 0.2 * len(edges_a)


def test_user_edge_list_and_pretraining(gtex):
    genes = list(gtex.var_names)
    edges = pd.DataFrame(
        {"source": [*genes[:100], "NOT_A_GENE"], "target": genes[1:101] + genes[:1]}
    )
    model = sgs.tl.train(
        gtex, "attgan", graph=edges, pretrain_steps=10_000, learn_gamma=True,
        categorical_covariate_keys=["tissue"], n_steps=40, **SMALL,
    )  # fmt: skip
    attn = model.module.attention
    assert attn.n_edges == 200  # symmetric, the unknown gene dropped
    # attention was off for the whole (shorter) training: its parameters never moved
    assert torch.equal(attn.key.detach(), torch.ones(467))
    assert attn.enabled  # and it is on for generation
    with pytest.raises(ValueError, match="graph must be one of"):
        sgs.tl.train(gtex, "attgan", graph="string-db", n_steps=5, **SMALL)
    with pytest.raises(ValueError, match=r"expected \(467, 467\)"):
        sgs.tl.train(gtex, "attgan", graph=sparse.eye(10, format="csr"), n_steps=5, **SMALL)


def test_wide_data_with_a_large_graph(bladderbatch, snapshot):
    """22,283 genes, top-5 co-expression: > 100,000 edges, trains and generates."""
    snap = snapshot(bladderbatch)
    model = sgs.tl.train(
        bladderbatch, "attgan", top_k=5, categorical_covariate_keys=["cancer"], n_steps=6,
        batch_size=16, **SMALL,
    )  # fmt: skip
    snap.assert_unchanged(bladderbatch, new_uns=("attgan",))
    assert model.module.attention.n_edges >= 100_000
    synth = model.generate(3, covariates={"cancer": "Normal"}, seed=0)
    assert synth.shape == (3, 22_283)
    assert np.isfinite(synth.X).all()
