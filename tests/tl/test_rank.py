"""The rank_genes_groups-shaped rankings of the perturbation tools."""

from __future__ import annotations

import anndata as ad
import matplotlib
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from scipy import stats

from scgensynth.tl._rank import benjamini_hochberg, difference_statistics, rank_genes_structure

matplotlib.use("Agg")


def test_benjamini_hochberg_matches_scipy():
    p = np.random.default_rng(0).uniform(size=200) ** 3
    np.testing.assert_allclose(benjamini_hochberg(p), stats.false_discovery_control(p))
    with_nan = np.array([0.01, np.nan, 0.04])
    got = benjamini_hochberg(with_nan)
    assert np.isnan(got[1])
    np.testing.assert_allclose(got[[0, 2]], stats.false_discovery_control([0.01, 0.04]))


def test_difference_statistics_by_hand():
    diff = np.array([[1.0, -1.0, 0.0, 2.0], [3.0, -1.0, 0.0, -1.0], [2.0, -1.0, 0.0, 2.0]])
    st = difference_statistics(diff)
    np.testing.assert_allclose(st["mean"], [2.0, -1.0, 0.0, 1.0])
    np.testing.assert_allclose(st["effect"][[0, 2, 3]], [2.0, 0.0, 1 / np.sqrt(3.0)])
    assert st["effect"][1] < -1e6  # always exactly -1: no spread, an effect without bound
    np.testing.assert_allclose(st["sign"], [1.0, 1.0, 0.0, 2 / 3])
    ref = stats.ttest_1samp(diff[:, [0, 3]], 0.0).pvalue
    np.testing.assert_allclose(st["pvals"][[0, 3]], ref)
    assert st["pvals"][1] == 0.0
    assert st["pvals"][2] == 1.0
    assert np.isnan(difference_statistics(diff, pvalues=False)["pvals"]).all()


@pytest.mark.parametrize("rank_by", ["mean", "effect", "sign"])
def test_structure_reads_back_through_scanpy(rank_by, tmp_path):
    rng = np.random.default_rng(1)
    genes = [f"g{i}" for i in range(30)]
    shift = np.linspace(-3, 3, 30)
    diffs = {
        "Liver": shift + rng.normal(scale=0.2, size=(40, 30)),
        "Lung": -shift + rng.normal(scale=0.2, size=(25, 30)),
    }
    out = rank_genes_structure(
        diffs, genes, method="tspg", groupby="source", reference="Liver", rank_by=rank_by
    )
    adata = ad.AnnData(
        np.zeros((2, 30), dtype=np.float32),
        obs=pd.DataFrame({"source": ["Liver", "Lung"]}, index=["a", "b"]),
        var=pd.DataFrame(index=genes),
    )
    adata.uns["rank_genes_groups"] = out
    df = sc.get.rank_genes_groups_df(adata, "Liver")
    assert list(df.columns[:5]) == ["names", "scores", "logfoldchanges", "pvals", "pvals_adj"]
    assert len(df) == 30
    assert (np.diff(df["scores"].to_numpy()) <= 0).all()  # sorted, most increased first
    # the 10 most increased / decreased genes (noise can swap neighbours on effect and sign)
    top, bottom = {f"g{i}" for i in range(20, 30)}, {f"g{i}" for i in range(10)}
    assert set(df["names"].iloc[:5]) <= top
    assert set(df["names"].iloc[-5:]) <= bottom
    if rank_by == "mean":
        assert df["names"].iloc[0] == "g29"
        assert df["names"].iloc[-1] == "g0"
    lung = sc.get.rank_genes_groups_df(adata, "Lung")
    assert set(lung["names"].iloc[:5]) <= bottom
    # the mean differences are the per-gene means, whatever the ranking statistic
    means = pd.Series(diffs["Liver"].mean(0), index=genes)
    np.testing.assert_allclose(df["logfoldchanges"], means[df["names"]].to_numpy(), rtol=1e-5)
    assert (df["pvals_adj"] >= df["pvals"] - 1e-12).all()
    # scanpy's own plot and the h5ad round trip
    sc.pl.rank_genes_groups(adata, n_genes=5, show=False)
    adata.write_h5ad(tmp_path / "ranked.h5ad")
    back = ad.read_h5ad(tmp_path / "ranked.h5ad")
    pd.testing.assert_frame_equal(sc.get.rank_genes_groups_df(back, "Liver"), df)


def test_bad_input():
    with pytest.raises(ValueError, match="rank_by must be one of"):
        rank_genes_structure({"a": np.zeros((2, 3))}, list("xyz"), method="m", groupby="g",
                             reference="r", rank_by="median")  # fmt: skip
    with pytest.raises(ValueError, match="3 genes"):
        rank_genes_structure({"a": np.zeros((2, 4))}, list("xyz"), method="m", groupby="g",
                             reference="r")  # fmt: skip
