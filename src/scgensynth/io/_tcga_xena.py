"""Reader of UCSC Xena genes x samples matrices of TCGA expression."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd

from scgensynth._utils._docs import doc_params

from ._tcga_clinical import TCGA_DOCS, TcgaOptions, join_clinical, tcga_anndata
from ._tcga_star import is_star_file
from ._utils import (
    READER_DOCS,
    FormatError,
    GeneFilter,
    Missing,
    TableLike,
    as_file,
    check_unique_columns,
    compression_of,
    head_lines,
    read_matrix,
    read_table,
    require_columns,
    shown,
    text_ids,
    unversioned,
)

logger = logging.getLogger(__name__)

_ENSEMBL = re.compile(r"^ENS[A-Z]*G\d+")
_PROJECT = re.compile(r"^((?:TCGA|TARGET)-[A-Za-z0-9]+)\.")  # a GDC-hub file name: TCGA-LUSC.*
_GENE = "\x00gene"  # name given to a matrix's first column while reading


@doc_params(**READER_DOCS, **TCGA_DOCS)
def read_tcga_xena(
    expression: str | PathLike,
    clinical: TableLike | None = None,
    *,
    probemap: TableLike | None = None,
    unlog: bool = False,
    project: str | None = None,
    genes: Sequence[str] | None = None,
    var_names: Literal["gene_id", "gene_symbol"] = "gene_id",
    id_column: str | None = None,
    missing: Missing = "raise",
    dtype: str | np.dtype = "float32",
) -> ad.AnnData:
    r"""Read a UCSC Xena matrix of TCGA expression, with clinical covariates.

    {xena_file}

    Compression (gzip, bz2, xz) is recognised from the file's first bytes. To read a file
    without knowing whether it is a Xena matrix or a GDC STAR file, use :func:`read_tcga`.

    Parameters
    ----------
    expression
        A Xena matrix.
    {clinical}
    {probemap}
    {unlog}
    {project}
    {genes}
    {var_names}
        A matrix of symbols has symbols either way.
    {id_column}
    {missing}
    {dtype}

    Returns
    -------
    AnnData of samples x genes, in the file's column order, ``obs_names`` the sample
    barcodes. ``X`` holds the values unchanged unless ``unlog=True``; ``uns["sgs_reader"]``
    records the format, the values (``"log2(x+1)"`` or ``"unlogged (2**x - 1)"``) and which
    clinical columns the covariates came from.

    {obs}
    ``var``: ``gene_id`` for a matrix of Ensembl ids, with ``gene_symbol`` and the other
    columns of ``probemap``; ``gene_symbol`` for a matrix of symbols.

    Raises
    ------
    ValueError
        A file that is not a Xena matrix (or is a STAR file), a table without its required
        columns, duplicated samples, negative values with ``unlog=True``, or samples absent
        from the clinical table with ``missing="raise"``.

    See Also
    --------
    read_tcga : Reads STAR files or a Xena matrix, whichever it is given.
    read_tcga_star : Reads GDC STAR gene-count files.

    Examples
    --------
    A legacy-hub matrix of symbols (log2(normalised count + 1)) with its clinical matrix,
    per sample on 15-character barcodes:

    >>> import tempfile, pathlib
    >>> import scgensynth as sgs
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "HiSeqV2").write_text(
    ...     "sample\tTCGA-18-3406-01\tTCGA-18-3406-11\n"
    ...     "TSPAN6\t10\t9\nTNMD\t3\t0\n"
    ... )
    >>> _ = (folder / "LUSC_clinicalMatrix").write_text(
    ...     "sampleID\tgender\tage_at_initial_pathologic_diagnosis\n"
    ...     "TCGA-18-3406-01\tMALE\t67\nTCGA-18-3406-11\tMALE\t67\n"
    ... )
    >>> adata = sgs.io.read_tcga_xena(
    ...     folder / "HiSeqV2", folder / "LUSC_clinicalMatrix", unlog=True
    ... )
    >>> adata.to_df()
                     TSPAN6  TNMD
    TCGA-18-3406-01  1023.0   7.0
    TCGA-18-3406-11   511.0   0.0
    >>> adata.obs[["cancer", "age", "gender"]]
                     cancer   age gender
    TCGA-18-3406-01  tumour  67.0   male
    TCGA-18-3406-11  normal  67.0   male
    """
    options = TcgaOptions.checked(
        "read_tcga_xena", project, genes, var_names, id_column, missing, dtype
    )
    path = expression_file(expression)
    if is_star_file(path):
        msg = (
            f"{path.name} is a GDC STAR gene-count file, not a Xena matrix: read it with "
            "read_tcga_star (and the sample sheet of its GDC cart)."
        )
        raise FormatError(msg)
    return read_xena(path, clinical, probemap, unlog, options)


def expression_file(expression: str | PathLike) -> Path:
    """An existing, non-empty expression file."""
    path = as_file(expression, "expression file")
    lines = head_lines(path, compression_of(path), 1)
    if not lines or not lines[0].strip():
        msg = f"The expression file {path.name} is empty."
        raise FormatError(msg)
    return path


def read_xena(
    path: Path,
    clinical: TableLike | None,
    probemap: TableLike | None,
    unlog: bool,
    options: TcgaOptions,
) -> ad.AnnData:
    """:func:`read_tcga_xena` once the file is known and the common options checked."""
    header = _matrix_header(path)
    found = _PROJECT.match(path.name)
    file_project = found.group(1) if found else None
    sample_ids, joined = join_clinical(header["samples"], clinical, options)
    var, X = _read_values(path, header, sample_ids, probemap, options.genes, options.dtype)
    values = "log2(x+1)"
    if unlog:
        if np.nanmin(X, initial=0.0) < 0:
            msg = (
                f"{path.name} has negative values, so it is not log2(x + 1) (Xena's TOIL "
                "matrices, for one, are log2(x + 0.001)); unlog=True would be wrong."
            )
            raise ValueError(msg)
        X = (np.exp2(X, dtype=np.float64) - 1).astype(options.dtype)
        values = "unlogged (2**x - 1)"
    record = {"format": "xena_matrix", "expression": path.name, "values": values}
    return tcga_anndata(
        X, var, sample_ids, record, options, clinical=joined, file_project=file_project
    )


def _matrix_header(path: Path) -> dict:
    compression = compression_of(path)
    line = head_lines(path, compression, 1)[0]
    header = line.split("\t")
    if header and header[-1] == "":
        header = header[:-1]
    where = f"{path.name} is not a Xena genes x samples matrix"
    if len(header) < 2:
        msg = (
            f"{where}: its header {line[:60]!r} has one column. Xena matrices are "
            "tab-separated: a gene column, then one column per sample."
        )
        raise FormatError(msg)
    samples = header[1:]
    if "" in samples:
        msg = f"{where}: its header has an empty sample name."
        raise FormatError(msg)
    if sum(bool(_ENSEMBL.match(s)) for s in samples) > len(samples) / 2:
        msg = (
            f"{where}: its columns are genes ({shown(samples, 2)}); Xena matrices have genes "
            "in rows and samples in columns. Transpose the file."
        )
        raise FormatError(msg)
    check_unique_columns(samples, path.name)
    names = [_GENE, *samples]
    if line.endswith("\t"):
        names.append("\x00trailing")
    return {"compression": compression, "names": names, "samples": samples}


def _read_values(
    path: Path,
    header: dict,
    sample_ids: list[str],
    probemap: TableLike | None,
    genes: Sequence[str] | None,
    dtype: np.dtype,
) -> tuple[pd.DataFrame, np.ndarray]:
    """``var`` and the samples x genes values, without HTSeq/STAR counter rows."""
    map_table, symbols = (None, {}) if probemap is None else _read_probemap(probemap)
    wanted = None if genes is None else GeneFilter(genes)
    counters: list[str] = []

    def keep_rows(chunk: pd.DataFrame) -> np.ndarray:
        ids = chunk[_GENE].str.strip()
        special = ids.str.startswith("__") | ids.str.match(r"^N_[A-Za-z]+$")
        counters.extend(ids[special])
        keep = ~special.to_numpy()
        if wanted is not None:
            kept = ids[keep]
            kept_symbols = [symbols.get(g, symbols.get(unversioned(g))) for g in kept]
            keep[keep] = wanted.keep(kept, kept_symbols)
        return keep

    ids, X, _, _ = read_matrix(
        path,
        compression=header["compression"],
        names=header["names"],
        skiprows=1,
        id_columns=[_GENE],
        value_columns=list(sample_ids),
        keep_rows=keep_rows,
        dtype=dtype,
        name=path.name,
    )
    if counters:
        logger.info(
            "Dropped %d counter rows of %s (%s).", len(counters), path.name, shown(counters, 3)
        )
    if wanted is not None:
        wanted.report(path.name)
    return _xena_var(ids[_GENE].str.strip().to_numpy(), map_table, path.name), X


def _read_probemap(probemap: TableLike) -> tuple[pd.DataFrame, dict[str, str]]:
    """The probe map indexed by id, and gene symbols by id (with and without version)."""
    map_table, map_name = read_table(probemap, "Xena probe map")
    require_columns(
        map_table,
        ["id", "gene"],
        map_name,
        "Xena probe map",
        "Is it e.g. gencode.v36.annotation.gtf.gene.probemap?",
    )
    map_table["id"] = text_ids(map_table["id"])
    map_table = map_table.dropna(subset=["id"]).drop_duplicates("id").set_index("id")
    symbols = {i: g for i, g in map_table["gene"].items() if pd.notna(g)}
    symbols |= {unversioned(i): g for i, g in symbols.items() if unversioned(i) not in symbols}
    return map_table, symbols


def _xena_var(gene: np.ndarray, map_table: pd.DataFrame | None, name: str) -> pd.DataFrame:
    """``var`` of a matrix: Ensembl ids (with the probe map's columns) or symbols."""
    ensembl = np.array([bool(_ENSEMBL.match(g)) for g in gene])
    if not (len(gene) and ensembl.mean() > 0.5):
        return pd.DataFrame({"gene_symbol": gene})
    var = pd.DataFrame({"gene_id": gene})
    if map_table is not None:
        key = [g if g in map_table.index else unversioned(g) for g in gene]
        mapped = map_table.reindex(key).reset_index(drop=True)
        absent = int(mapped["gene"].isna().sum())
        if absent:
            logger.warning("%d genes of %s are not in the probe map.", absent, name)
        var["gene_symbol"] = mapped["gene"].to_numpy()
        var = pd.concat([var, mapped.drop(columns=["gene"])], axis=1)
    return var
