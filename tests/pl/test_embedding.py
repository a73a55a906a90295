"""sgs.pl.embedding: real and synthetic GTEx samples in one embedding."""

from __future__ import annotations

import anndata as ad
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import scanpy as sc

import scgensynth as sgs

matplotlib.use("Agg")


@pytest.fixture
def pair(gtex):
    """GTEx and a fake: the real samples plus noise, with the tissue labels."""
    rng = np.random.default_rng(0)
    noise = rng.normal(scale=0.5, size=gtex.shape).astype(np.float32)
    synth = ad.AnnData(gtex.X + noise, obs=gtex.obs.copy(), var=gtex.var.copy())
    synth.obs_names = [f"syn{i}" for i in range(synth.n_obs)]
    return gtex, synth


def _points(ax):
    return [c for c in ax.collections if len(c.get_offsets())]


def _hex(colour) -> str:
    return matplotlib.colors.to_hex(colour)


def _filled(c) -> bool:
    """Whether a scatter's markers are filled (real) rather than hollow (synthetic)."""
    return len(c.get_facecolor()) > 0 and c.get_facecolor()[0][3] > 0


def _source_legend(ax):
    """The legend that tells real from synthetic samples (above the axes when overlaid)."""
    legends = [a for a in ax.get_children() if isinstance(a, matplotlib.legend.Legend)]
    (legend,) = [g for g in legends if [t.get_text() for t in g.get_texts()] == list(SOURCES)]
    return legend


SOURCES = ("real", "synthetic")


def test_overlay_by_source_on_pca(gtex_pair, snapshot):
    real, synth = gtex_pair
    snaps = [snapshot(real), snapshot(synth)]
    ax = sgs.pl.embedding(real, synth, basis="pca", show=False)
    for snap, a in zip(snaps, (real, synth)):
        snap.assert_unchanged(a)
    points = _points(ax)
    assert [c.get_label() for c in points] == ["real", "synthetic"]
    assert [len(c.get_offsets()) for c in points] == [520, 520]
    # the PCA of the two datasets together (sign of each component aside)
    both = ad.concat({"real": real, "synthetic": synth}, label="sgs_source")
    sc.pp.pca(both, n_comps=50, random_state=0)
    expected = both.obsm["X_pca"][:, :2]
    got = np.vstack([c.get_offsets() for c in points])
    np.testing.assert_allclose(np.abs(got), np.abs(expected), rtol=1e-3, atol=1e-3)
    # real: filled circles; synthetic: hollow circles edged in their colour
    assert _filled(points[0])
    assert not _filled(points[1])
    assert _hex(points[1].get_edgecolor()[0]) != _hex(points[0].get_facecolor()[0])
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["real", "synthetic"]
    real_key, synth_key = legend.legend_handles
    assert _hex(real_key.get_markerfacecolor()) == _hex(points[0].get_facecolor()[0])
    assert synth_key.get_markerfacecolor() == "none"
    assert _hex(synth_key.get_markeredgecolor()) == _hex(points[1].get_edgecolor()[0])
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("PCA1", "PCA2")
    plt.close("all")


def test_colour_by_tissue_keeps_real_and_synthetic_apart_by_fill(gtex_pair):
    """Groups by colour, sources by fill: a synthetic Liver is not a grey 'tissue'."""
    real, synth = gtex_pair
    tissues = list(real.obs["tissue"].cat.categories)
    palette = [matplotlib.colors.to_hex(plt.cm.tab20(i % 20)) for i in range(len(tissues))]
    real.uns["tissue_colors"] = palette
    ax = sgs.pl.embedding(real, synth, basis="pca", color="tissue", show=False)
    assert "tissue_colors" not in synth.uns
    points = _points(ax)
    assert sum(len(c.get_offsets()) for c in points) == 1040
    # one scatter per source and tissue in the palette's colour: real filled, synthetic hollow
    assert len(points) == 2 * len(tissues)
    for c, tissue in zip(points[: len(tissues)], tissues):
        assert _filled(c)
        assert _hex(c.get_facecolor()[0]) == palette[tissues.index(tissue)]
        assert len(c.get_offsets()) == (real.obs["tissue"] == tissue).sum()
    for c, tissue in zip(points[len(tissues) :], tissues):
        assert not _filled(c)
        assert _hex(c.get_edgecolor()[0]) == palette[tissues.index(tissue)]
        assert len(c.get_offsets()) == (synth.obs["tissue"] == tissue).sum()
    colours = ax.get_legend()
    assert [t.get_text() for t in colours.get_texts()] == tissues
    assert colours.get_title().get_text() == "tissue"
    # a legend of its own for the sources, in black: no colour of the groups
    sources = _source_legend(ax)
    assert sources is not colours
    real_key, synth_key = sources.legend_handles
    assert (real_key.get_marker(), synth_key.get_marker()) == ("o", "o")
    assert _hex(real_key.get_markerfacecolor()) == "#000000"
    assert synth_key.get_markerfacecolor() == "none"
    assert _hex(synth_key.get_markeredgecolor()) == "#000000"
    assert "#000000" not in palette
    # both legends are drawn outside the axes, apart
    ax.figure.canvas.draw()
    box, frame = sources.get_window_extent(), ax.get_window_extent()
    assert box.y0 >= frame.y1 - 1
    assert not box.overlaps(colours.get_window_extent())
    plt.close("all")


def test_side_by_side_umap_and_given_axes(pair):
    real, synth = pair
    real, synth = real[::4].copy(), synth[::4].copy()  # 130 + 130 samples: quick UMAP
    fig, given = plt.subplots(1, 2)
    axes = sgs.pl.embedding(real, synth, basis="umap", side_by_side=True, ax=given)
    assert list(axes) == list(given)
    assert [a.get_title() for a in axes] == ["real", "synthetic"]
    assert [len(_points(a)[0].get_offsets()) for a in axes] == [130, 130]
    assert axes[0].get_xlim() == axes[1].get_xlim()
    assert axes[0].get_xlabel() == "UMAP1"
    fig = sgs.pl.embedding(real, synth, basis="pca", side_by_side=True, return_fig=True)
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="ax must be 2 Axes"):
        sgs.pl.embedding(real, synth, basis="pca", side_by_side=True, ax=given[0])
    plt.close("all")


def test_combined_with_basis_is_drawn_as_is(pair, snapshot):
    real, synth = pair
    both = ad.concat({"real": real, "synthetic": synth}, label="sgs_source")
    rng = np.random.default_rng(1)
    both.obsm["X_umap"] = rng.normal(size=(both.n_obs, 2))
    both.uns["sgs_source_colors"] = ["#111111", "#ee0000"]
    snap = snapshot(both)
    ax = sgs.pl.embedding(both, show=False)
    snap.assert_unchanged(both)
    points = _points(ax)
    np.testing.assert_array_equal(
        np.vstack([c.get_offsets() for c in points]), both.obsm["X_umap"]
    )
    colours = [_hex(points[0].get_facecolor()[0]), _hex(points[1].get_edgecolor()[0])]
    assert colours == ["#111111", "#ee0000"]


def test_colour_by_gene(gtex_pair):
    real, synth = gtex_pair
    gene = real.var_names[0]
    ax = sgs.pl.embedding(real, synth, basis="pca", color=gene, show=False)
    bars = [a for a in ax.figure.axes if a is not ax]
    assert len(bars) == 1
    assert bars[0].get_ylabel() == gene
    points = _points(ax)
    assert len(points) == 2
    np.testing.assert_allclose(points[0].get_array(), np.asarray(real.X[:, 0]).ravel(), rtol=1e-6)
    # synthetic: hollow circles whose edges carry the colour scale
    ax.figure.canvas.draw()
    assert _filled(points[0])
    assert not _filled(points[1])
    values = np.asarray(synth.X[:, 0]).ravel()
    expected = points[1].cmap(points[1].norm(values))
    np.testing.assert_allclose(points[1].get_edgecolor()[:, :3], expected[:, :3], atol=1e-6)
    assert [t.get_text() for t in _source_legend(ax).get_texts()] == ["real", "synthetic"]
    plt.close("all")


def test_errors(pair):
    real, synth = pair
    with pytest.raises(ValueError, match="sgs_source"):
        sgs.pl.embedding(real)
    with pytest.raises(ValueError, match="basis must be one of"):
        sgs.pl.embedding(real, synth, basis="diffmap")
    with pytest.raises(KeyError, match=r"neither an \.obs column nor a gene"):
        sgs.pl.embedding(real, synth, basis="pca", color="age")
    synth.obs = synth.obs.drop(columns="tissue")
    with pytest.raises(KeyError, match="of both real and synth"):
        sgs.pl.embedding(real, synth, basis="pca", color="tissue")
    other = ad.AnnData(np.zeros((3, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="share no gene"):
        sgs.pl.embedding(real, other, basis="pca")
    plt.close("all")


def test_many_categories_get_distinct_colours_without_writing_a_palette(pair):
    real, synth = pair
    ax = sgs.pl.embedding(real, synth, basis="pca", color="tissue", show=False)
    n_tissues = len(real.obs["tissue"].cat.categories)
    assert n_tissues > 10  # more than matplotlib's colour cycle
    colours = {_hex(c.get_facecolor()[0]) for c in _points(ax) if _filled(c)}
    assert len(colours) == n_tissues
    assert "tissue_colors" not in real.uns
    assert "tissue_colors" not in synth.uns
    assert ax.get_legend()._ncols == 2  # 26 tissues
    plt.close("all")
