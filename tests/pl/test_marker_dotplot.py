"""sgs.pl.marker_dotplot: GTEx tissue markers in real and Gaussian-generated samples."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import scanpy as sc

import scgensynth as sgs

matplotlib.use("Agg")

TISSUES = ["Liver", "Lung", "Muscle", "Brain"]


@pytest.fixture
def four(gtex_pair):
    """Real and synthetic samples of four tissues (views of the copies)."""
    real, synth = gtex_pair
    return (
        real[real.obs["tissue"].isin(TISSUES).to_numpy()],
        synth[synth.obs["tissue"].isin(TISSUES).to_numpy()],
    )


def _markers(real, n: int) -> dict[str, list[str]]:
    ranked = real.copy()
    ranked.obs["tissue"] = ranked.obs["tissue"].cat.remove_unused_categories()
    sc.tl.rank_genes_groups(ranked, "tissue", method="wilcoxon", use_raw=False, n_genes=None)
    out = {}
    for t in ranked.obs["tissue"].cat.categories:
        # the highest scores; among equal scores (perfectly separated tissues), the larger
        # fold change
        df = sc.get.rank_genes_groups_df(ranked, t)
        df = df.sort_values(["scores", "logfoldchanges"], ascending=False, kind="stable")
        out[t] = list(df["names"][:n])
    return out


def test_rows_per_class_and_source_columns_per_marker(four, snapshot):
    real, synth = four
    snaps = snapshot(real), snapshot(synth)
    axes = sgs.pl.marker_dotplot(real, synth, "tissue", n_genes=2, show=False)
    snaps[0].assert_unchanged(real)  # no rank_genes_groups written into the user's data
    snaps[1].assert_unchanged(synth)
    assert real.is_view
    assert synth.is_view
    main = axes["mainplot_ax"]
    tissues = [t for t in real.obs["tissue"].cat.categories if t in TISSUES]
    rows = [t.get_text() for t in main.get_yticklabels()]
    assert rows == [f"{t} ({s})" for t in tissues for s in ("real", "synthetic")]
    markers = _markers(real, 2)
    assert [t.get_text() for t in main.get_xticklabels()] == [
        g for t in tissues for g in markers[t]
    ]
    # the brackets above the genes name the class each pair marks
    brackets = [t.get_text() for t in axes["gene_group_ax"].texts]
    assert brackets == tissues
    plt.close("all")


def test_dots_are_the_class_means_of_each_source(four):
    real, synth = four
    dp = sgs.pl.marker_dotplot(real, synth, "tissue", n_genes=3, standard_scale=None,
                               return_fig=True)  # fmt: skip
    assert isinstance(dp, sc.pl.DotPlot)
    colour = dp.dot_color_df
    for tissue, markers in _markers(real, 3).items():
        for source, data in (("real", real), ("synthetic", synth)):
            rows = data[(data.obs["tissue"] == tissue).to_numpy(), markers]
            np.testing.assert_allclose(
                colour.loc[f"{tissue} ({source})", markers].to_numpy(),
                np.asarray(rows.X, dtype=np.float64).mean(0), rtol=1e-5,
            )  # fmt: skip
    # a Gaussian conditioned on tissue keeps the markers: the synthetic row of a class is
    # highest where the real row is
    own = {t: colour.loc[f"{t} (synthetic)"].groupby(level=0).mean() for t in TISSUES}
    assert all(own[t].idxmax() in _markers(real, 3)[t] for t in TISSUES)
    plt.close("all")


def test_missing_synthetic_class_and_ax(four, sgs_logs):
    real, synth = four
    synth = synth[(synth.obs["tissue"] != "Brain").to_numpy()]
    fig, ax = plt.subplots(figsize=(8, 5))
    with sgs_logs() as logs:
        axes = sgs.pl.marker_dotplot(real, synth, "tissue", n_genes=1, ax=ax)
    assert any("without synthetic samples" in r.getMessage() for r in logs)
    rows = [t.get_text() for t in axes["mainplot_ax"].get_yticklabels()]
    assert "Brain (real)" in rows
    assert "Brain (synthetic)" not in rows
    assert axes["mainplot_ax"].figure is fig
    plt.close("all")


def test_bad_input_is_refused_clearly(four):
    real, synth = four
    with pytest.raises(ValueError, match="same genes"):
        sgs.pl.marker_dotplot(real, synth[:, 5:], "tissue")
    with pytest.raises(KeyError, match=r"groupby='cancer' is not a column of real\.obs"):
        sgs.pl.marker_dotplot(real, synth, "cancer")
    with pytest.raises(ValueError, match="n_genes"):
        sgs.pl.marker_dotplot(real, synth, "tissue", n_genes=0)
    with pytest.raises(TypeError, match="sets \\['var_names'\\] itself"):
        sgs.pl.marker_dotplot(real, synth, "tissue", var_names=["A"])
    one = real[[*np.flatnonzero(real.obs["tissue"] != "Liver"),
                int(np.flatnonzero(real.obs["tissue"] == "Liver")[0])]]  # fmt: skip
    with pytest.raises(ValueError, match=r"2 or more real samples per class; \['Liver'\]"):
        sgs.pl.marker_dotplot(one, synth, "tissue")
    plt.close("all")


def test_gene_symbols(four):
    real, synth = four
    real = real.copy()
    real.var["symbol"] = [f"sym-{g}" for g in real.var_names]
    axes = sgs.pl.marker_dotplot(real, synth, "tissue", n_genes=1, gene_symbols="symbol",
                                 show=False)  # fmt: skip
    shown = [t.get_text() for t in axes["mainplot_ax"].get_xticklabels()]
    assert shown == [f"sym-{g[0]}" for g in _markers(real, 1).values()]
    with pytest.raises(KeyError, match="gene_symbols='hgnc'"):
        sgs.pl.marker_dotplot(real, synth, "tissue", gene_symbols="hgnc")
    plt.close("all")
