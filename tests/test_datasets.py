"""The bundled datasets load offline with the documented shapes and covariates."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import scgensynth as sgs

LOADERS = {
    "gtex_tissues": sgs.datasets.gtex_tissues,
    "tcga_lusc": sgs.datasets.tcga_lusc,
    "tcga_acc": sgs.datasets.tcga_acc,
}


def test_available():
    available = sgs.datasets.available()
    assert sorted(available) == sorted(LOADERS)
    for name, note in available.items():
        assert isinstance(note, str), name
        assert note.strip(), name


def test_gtex_tissues():
    adata = sgs.datasets.gtex_tissues()
    assert adata.shape == (520, 467)
    assert list(adata.obs.columns) == ["tissue"]
    tissue = adata.obs["tissue"]
    assert isinstance(tissue.dtype, pd.CategoricalDtype)
    assert len(tissue.cat.categories) == 26
    assert set(tissue.value_counts()) == {20}  # 20 samples of each tissue
    assert "Liver" in tissue.cat.categories
    X = np.asarray(adata.X)
    assert X.min() >= 0
    assert X.max() < 13  # log2(RPKM + 1)
    assert int((X.std(0) == 0).sum()) == 7  # genes that are 0 everywhere
    assert adata.uns["sgs_dataset"] == "gtex_tissues"


def test_tcga_lusc():
    adata = sgs.datasets.tcga_lusc()
    assert adata.shape == (517, 391)
    assert adata.obs["cancer"].value_counts().to_dict() == {"tumour": 472, "normal": 45}
    assert isinstance(adata.obs["cancer"].dtype, pd.CategoricalDtype)
    assert "sample_type_code" in adata.obs
    # z-scores (centred before one duplicated sample was dropped)
    np.testing.assert_allclose(np.asarray(adata.X).mean(0), 0, atol=0.01)
    assert adata.uns["sgs_dataset"] == "tcga_lusc"


def test_tcga_acc():
    adata = sgs.datasets.tcga_acc()
    assert adata.shape == (79, 198)
    for key in ("years_to_birth", "gender", "race", "pathologic_stage", "vital_status"):
        assert key in adata.obs, key
    age = adata.obs["years_to_birth"]
    assert pd.api.types.is_numeric_dtype(age)
    assert age.notna().all()
    assert age.min() > 10
    assert age.max() < 90
    assert adata.obs["gender"].value_counts().to_dict() == {"female": 48, "male": 31}
    assert np.asarray(adata.X).min() >= 0  # RSEM, not logged
    assert adata.uns["sgs_dataset"] == "tcga_acc"


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_dataset_is_clean(name):
    """Loads without warnings, with unique names and finite float values."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        adata = LOADERS[name]()
    duplicated = adata.obs_names[adata.obs_names.duplicated()].tolist()
    assert not duplicated, f"duplicated sample names: {duplicated}"
    assert adata.var_names.is_unique
    assert [str(w.message) for w in caught] == []
    X = np.asarray(adata.X)
    assert X.dtype == np.float32
    assert np.isfinite(X).all()


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_load_by_name(name):
    by_name = sgs.datasets.load(name)
    direct = LOADERS[name]()
    assert by_name.shape == direct.shape
    np.testing.assert_array_equal(by_name.X, direct.X)
    pd.testing.assert_frame_equal(by_name.obs, direct.obs)


def test_unknown_name():
    with pytest.raises(ValueError, match=r"Unknown dataset 'gtex'") as err:
        sgs.datasets.load("gtex")
    for name in LOADERS:
        assert name in str(err.value)


def test_loading_twice_gives_independent_objects():
    first = sgs.datasets.gtex_tissues()
    second = sgs.datasets.gtex_tissues()
    assert first is not second
    original = float(second.X[0, 0])
    first.X[0, 0] = 1e6
    first.obs["tissue"] = "changed"
    first.var["flag"] = True
    first.uns["note"] = "changed"
    assert float(second.X[0, 0]) == original
    assert (second.obs["tissue"] != "changed").all()
    assert "flag" not in second.var
    assert "note" not in second.uns
    third = sgs.datasets.gtex_tissues()
    assert float(third.X[0, 0]) == original
    assert (third.obs["tissue"] != "changed").all()


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_genes_are_symbols_with_original_ids_in_var(name):
    """Gene symbols in var_names (as scanpy's datasets), the source's ids kept in .var."""
    adata = LOADERS[name]()
    assert list(adata.var.columns) == ["gene_ids", "entrez_id"]
    assert not adata.var_names.str.startswith("entrez_").any()
    entrez = adata.var["entrez_id"]
    assert entrez.str.fullmatch(r"[0-9]+").all()
    assert entrez.is_unique
    if name != "tcga_acc":  # the SEPIRA sets shipped Entrez ids
        assert (adata.var["gene_ids"] == "entrez_" + entrez).all()
    else:  # miniACC shipped symbols
        assert (adata.var["gene_ids"] == adata.var_names).all()


def test_known_symbols_match_their_entrez_ids():
    gtex = sgs.datasets.gtex_tissues()
    # NCBI Gene: 7080 NKX2-1, 6927 HNF1A, 6688 SPI1 (PU.1); each tops its known tissue
    expected = {
        "NKX2-1": ("7080", "Thyroid"),
        "HNF1A": ("6927", "Liver"),
        "SPI1": ("6688", "Blood"),
    }
    means = gtex.to_df().groupby(gtex.obs["tissue"], observed=True).mean()
    for symbol, (entrez, tissue) in expected.items():
        assert gtex.var.loc[symbol, "entrez_id"] == entrez
        assert means[symbol].idxmax() == tissue, symbol
    acc = sgs.datasets.tcga_acc()
    assert acc.var.loc["MAPK14", "entrez_id"] == "1432"


def test_tcga_acc_na_is_missing_not_a_category():
    obs = sgs.datasets.tcga_acc().obs
    for column in obs.columns:
        if isinstance(obs[column].dtype, pd.CategoricalDtype):
            assert "NA" not in obs[column].cat.categories, column
    assert obs["race"].isna().sum() == 11
    assert obs["pathologic_stage"].isna().sum() == 2
    assert set(obs["race"].dropna()) == {"white", "asian", "black or african american"}
