"""Rebuild the datasets bundled in ``src/scgensynth/datasets/data`` from ``../shared/data``.

The shared files are the exports of the original R packages (see each ``.README.txt``). The
bundled copies differ in what a scanpy user expects of a dataset:

- ``var_names`` are gene symbols; the shared files' ids stay in ``var["gene_ids"]`` and the
  NCBI Gene (Entrez) id in ``var["entrez_id"]`` (strings: ids, not numbers). Symbols come
  from ``scripts/data/ncbi_gene_symbols.tsv`` (NCBI Gene, public domain; its header says
  which snapshot).
- A sample listed twice with identical values (TCGA-21-1076-01 in the LUSC set) is kept
  once.
- The string ``"NA"`` that R's export left in categorical ``obs`` columns is a missing value
  (``NaN``), not a category.

Run from the repository root: ``python scripts/bundle_datasets.py [--shared ../shared/data]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "src" / "scgensynth" / "datasets" / "data"
SYMBOLS = REPO / "scripts" / "data" / "ncbi_gene_symbols.tsv"
STEMS = ("gtex_26tissues_sepira", "tcga_lusc_sepira", "tcga_acc_mini")


def read_symbols() -> pd.DataFrame:
    """The Entrez id -> symbol table (``entrez_id`` as strings)."""
    table = pd.read_csv(SYMBOLS, sep="\t", comment="#", dtype=str)
    if table["entrez_id"].duplicated().any() or table["symbol"].duplicated().any():
        raise ValueError(f"{SYMBOLS}: ids and symbols must be unique.")
    return table


def with_symbols(adata: ad.AnnData, table: pd.DataFrame) -> ad.AnnData:
    """``adata`` with symbols as ``var_names`` and the original ids in ``var``."""
    original = adata.var_names.astype(str)
    by_id = dict(zip(table["entrez_id"], table["symbol"], strict=True))
    by_symbol = dict(zip(table["symbol"], table["entrez_id"], strict=True))
    if original.str.startswith("entrez_").all():
        entrez = original.str.removeprefix("entrez_")
        symbols = [by_id[i] for i in entrez]
    else:  # already symbols
        symbols = list(original)
        entrez = pd.Index([by_symbol[s] for s in symbols])
    var = pd.DataFrame(
        {"gene_ids": list(original), "entrez_id": list(entrez)},
        index=pd.Index(symbols, name=None),
    )
    out = adata.copy()
    out.var = var
    if not out.var_names.is_unique:
        raise ValueError("Gene symbols are not unique; the table needs a look.")
    return out


def na_as_missing(adata: ad.AnnData) -> None:
    """Replace the string ``"NA"`` in categorical/string ``obs`` columns by a missing value."""
    for column in adata.obs.columns:
        values = adata.obs[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            if "NA" in values.cat.categories:
                adata.obs[column] = values.cat.remove_categories("NA")
        elif values.dtype == object and (values == "NA").any():
            adata.obs[column] = values.where(values != "NA")


def drop_repeated_samples(adata: ad.AnnData) -> ad.AnnData:
    """``adata`` without the later copies of samples listed twice with identical values."""
    repeated = adata.obs_names.duplicated()
    for name in adata.obs_names[repeated].unique():
        rows = np.flatnonzero(adata.obs_names == name)
        values = np.asarray(adata.X[rows])
        if not (values == values[0]).all():
            raise ValueError(f"Sample {name} appears twice with different values.")
    return adata[~repeated].copy()


def main() -> None:
    """Rebuild every bundled dataset."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    table = read_symbols()
    for stem in STEMS:
        adata = with_symbols(ad.read_h5ad(args.shared / f"{stem}.h5ad"), table)
        adata = drop_repeated_samples(adata)
        na_as_missing(adata)
        adata.write_h5ad(OUT / f"{stem}.h5ad", compression="gzip")
        print(f"{stem}: {adata.n_obs} x {adata.n_vars}, e.g. {list(adata.var_names[:3])}")


if __name__ == "__main__":
    main()
