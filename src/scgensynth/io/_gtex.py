"""Reader of the GTEx portal's expression (GCT) and annotation files."""

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

from ._utils import (
    READER_DOCS,
    FormatError,
    GeneFilter,
    Missing,
    TableLike,
    add_columns,
    as_file,
    categorical,
    check_options,
    check_unique_columns,
    compression_of,
    gene_index,
    head_lines,
    no_overlap_hint,
    read_matrix,
    read_table,
    require_columns,
    resolve_missing,
    shown,
    text_ids,
    text_to_categoricals,
    unique_names,
    warn_float32_counts,
)

logger = logging.getLogger(__name__)

_SEX = {"1": "male", "2": "female", "male": "male", "female": "female"}
_HARDY = {"0", "1", "2", "3", "4"}


@doc_params(**READER_DOCS)
def read_gtex(
    expression: str | PathLike,
    sample_attributes: TableLike | None = None,
    subject_phenotypes: TableLike | None = None,
    *,
    tissues: str | Sequence[str] | None = None,
    samples: Sequence[str] | None = None,
    genes: Sequence[str] | None = None,
    var_names: Literal["gene_id", "gene_symbol"] = "gene_id",
    missing: Missing = "raise",
    dtype: str | np.dtype = "float32",
) -> ad.AnnData:
    r"""Read a GTEx gene expression file (GCT) and its sample and subject annotations.

    Reads the GTEx portal's gene-level GCT files (``..._gene_tpm.gct.gz``,
    ``..._gene_reads.gct.gz``, whole-release or per-tissue, gzipped or not: the compression is
    recognised from the file's first bytes), which hold genes x samples, into an AnnData of
    samples x genes, joined with the sample attributes
    (``GTEx_Analysis_v8_Annotations_SampleAttributesDS.txt``) and subject phenotypes
    (``GTEx_Analysis_v8_Annotations_SubjectPhenotypesDS.txt``).

    The whole-release files are large (56,200 genes x 17,382 samples in v8, about 4 GB as
    float32, a few minutes to parse): choose ``tissues``, ``samples`` and/or ``genes`` to read
    only what you need. Samples are chosen before the matrix is parsed (only their columns
    are converted) and the file is read in chunks of genes, each converted to ``dtype`` at
    once, so memory stays near the size of the result (about 100 MB more; up to twice the
    result while ``genes`` are picked).

    Parameters
    ----------
    expression
        A GCT 1.2 file: line 1 ``#1.2``, line 2 ``<genes>\t<samples>``, then the header
        ``Name\tDescription\t<sample ids>`` and one row per gene (Ensembl id, symbol,
        values). A leading ``id`` column (per-tissue files) is ignored.
    sample_attributes
        The sample attributes table (tab-separated, a ``SAMPID`` column, tissue in ``SMTS``
        and ``SMTSD``), as a file or a DataFrame. Samples it lists that are not in
        ``expression`` are ignored.
    subject_phenotypes
        The subject phenotypes table (``SUBJID``, ``SEX``, ``AGE``, ``DTHHRDY``), as a file or
        a DataFrame. The subject of a sample is the first two dash-separated fields of its id
        (``GTEX-1117F-0226-SM-5GZZ7`` -> ``GTEX-1117F``).
    tissues
        Keep the samples of these tissues, named as in ``SMTS`` (``"Lung"``) or ``SMTSD``
        (``"Muscle - Skeletal"``). Needs ``sample_attributes``.
    samples
        Keep these samples (ids as in the GCT header).
    {genes}
    {var_names}
        Both are in ``var`` either way.
    {missing}
    {dtype}

    Returns
    -------
    AnnData of samples x genes, samples in the file's column order. ``X`` holds the file's
    values unchanged: TPM stays TPM, and read counts (``gene_reads``) stay integer-valued,
    so that :func:`scgensynth.pp.detect_scaling` recognises them as counts
    (``uns["sgs_reader"]["values"]`` says ``"counts"`` or ``"continuous"``).

    ``obs`` has ``tissue`` (``SMTS``), ``tissue_detail`` (``SMTSD``), ``subject_id``,
    ``sex`` (``"male"``/``"female"``, from ``SEX`` 1/2), ``age`` (the bracket, e.g.
    ``"60-69"``, an ordered categorical), ``hardy_scale`` (``DTHHRDY``, an unordered
    categorical ``"0"``-``"4"``: 0 ventilator case, 1 violent and fast death, 2 fast death of
    natural causes, 3 intermediate, 4 slow; 0 is not a point on the 1-4 scale, hence
    unordered), then every other column of the two tables under its original name
    (``SMRIN``, ``SMTSISCH``, ``SMCENTER``, ...); text columns are categoricals. Columns of a
    table not given are absent. ``var`` has ``gene_id`` and ``gene_symbol``
    (``Description``).

    Raises
    ------
    ValueError
        A file not in the expected format (no ``#1.2`` line, wrong header, non-numeric
        values, sizes that differ from line 2), a table without its required columns,
        duplicated samples, unknown ``tissues``/``samples``, unexpected ``SEX``/``DTHHRDY``
        codes, or expression samples absent from a table with ``missing="raise"``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import scgensynth as sgs
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "tpm.gct").write_text(
    ...     "#1.2\n2\t2\n"
    ...     "Name\tDescription\tGTEX-1117F-0226-SM-5GZZ7\tGTEX-111CU-1826-SM-5GZYN\n"
    ...     "ENSG00000223972.5\tDDX11L1\t0\t0.1\n"
    ...     "ENSG00000227232.5\tWASH7P\t4.1\t2.3\n"
    ... )
    >>> _ = (folder / "attributes.txt").write_text(
    ...     "SAMPID\tSMRIN\tSMTS\tSMTSD\n"
    ...     "GTEX-1117F-0226-SM-5GZZ7\t6.8\tAdipose Tissue\tAdipose - Subcutaneous\n"
    ...     "GTEX-111CU-1826-SM-5GZYN\t7.1\tLung\tLung\n"
    ... )
    >>> _ = (folder / "subjects.txt").write_text(
    ...     "SUBJID\tSEX\tAGE\tDTHHRDY\n"
    ...     "GTEX-1117F\t2\t60-69\t4\n"
    ...     "GTEX-111CU\t1\t50-59\t0\n"
    ... )
    >>> adata = sgs.io.read_gtex(
    ...     folder / "tpm.gct", folder / "attributes.txt", folder / "subjects.txt"
    ... )
    >>> adata
    AnnData object with n_obs × n_vars = 2 × 2
        obs: 'tissue', 'tissue_detail', 'subject_id', 'sex', 'age', 'hardy_scale', 'SMRIN'
        var: 'gene_id', 'gene_symbol'
        uns: 'sgs_reader'
    >>> adata.obs[["tissue", "sex", "age"]].to_dict("list")
    {'tissue': ['Adipose Tissue', 'Lung'], 'sex': ['female', 'male'], 'age': ['60-69', '50-59']}
    >>> sgs.io.read_gtex(folder / "tpm.gct", folder / "attributes.txt", tissues="Lung").shape
    (1, 2)
    """
    dtype = check_options(missing, var_names, dtype)
    path = as_file(expression, "GCT expression file")
    gct = _read_gct_header(path)
    attributes = attr_name = None
    if sample_attributes is not None:
        attributes, attr_name = _read_attributes(sample_attributes)
    sample_ids = _choose(gct["samples"], samples, tissues, attributes, attr_name, missing, path)
    phenotypes = None
    if subject_phenotypes is not None:
        phenotypes, sample_ids = _join_phenotypes(sample_ids, subject_phenotypes, missing)
    if not sample_ids:
        msg = f"No sample of {path.name} is left to read after the choice of samples."
        raise ValueError(msg)

    wanted = None if genes is None else GeneFilter(genes)
    ids, X, integer, largest = read_matrix(
        path,
        compression=gct["compression"],
        names=gct["header"],
        skiprows=3,
        id_columns=["Name", "Description"],
        value_columns=list(sample_ids),
        keep_rows=None if wanted is None else lambda c: wanted.keep(c["Name"], c["Description"]),
        n_rows=gct["n_genes"],
        dtype=dtype,
        name=path.name,
    )
    if wanted is not None:
        wanted.report(path.name)
    warn_float32_counts(integer, largest, dtype, path.name)

    var = _gene_table(ids, var_names, path.name)
    obs = _obs(sample_ids, attributes, phenotypes)
    adata = ad.AnnData(X=X, obs=obs, var=var)
    values = "counts" if integer else "continuous"
    adata.uns["sgs_reader"] = {"reader": "read_gtex", "expression": path.name, "values": values}
    logger.info(
        "Read %d samples x %d genes from %s (%s).", adata.n_obs, adata.n_vars, path.name, values
    )
    return adata


# -- the GCT file ------------------------------------------------------------------------------
def _read_gct_header(path: Path) -> dict:
    """Check a GCT 1.2 file's first three lines; its columns and declared sizes."""
    compression = compression_of(path)
    lines = head_lines(path, compression, 3)
    where = f"{path.name} is not a GCT 1.2 file"
    if not lines or lines[0].strip() != "#1.2":
        first = lines[0][:40] if lines else ""
        hint = (
            " GCT 1.3 (with row/column metadata) is not supported: GTEx expression files are "
            "GCT 1.2."
            if first.startswith("#1.3")
            else " Is it a GTEx expression file (e.g. ..._gene_tpm.gct.gz)?"
        )
        msg = f"{where}: its first line should be '#1.2', not {first!r}.{hint}"
        raise FormatError(msg)
    if len(lines) < 3:
        msg = f"{where}: it ends before its header line (line 3)."
        raise FormatError(msg)
    sizes = lines[1].split("\t")
    if len(sizes) < 2 or not all(s.strip().isdigit() for s in sizes[:2]):
        msg = (
            f"{where}: line 2 should give the numbers of genes and samples "
            f"('<genes>\\t<samples>'), not {lines[1][:40]!r}."
        )
        raise FormatError(msg)
    n_genes, n_samples = int(sizes[0]), int(sizes[1])
    header = lines[2].split("\t")
    lead = ["Name", "Description"]
    if header[:3] == ["id", "Name", "Description"]:
        lead = ["id", "Name", "Description"]
    elif header[:2] != lead:
        start = "\t".join(header[:2])[:60]
        msg = (
            f"{where}: its header (line 3) should start with 'Name\\tDescription', not {start!r}."
        )
        raise FormatError(msg)
    samples = header[len(lead) :]
    if samples and samples[-1] == "":
        samples = samples[:-1]  # a trailing tab
    check_unique_columns(samples, path.name)
    if len(samples) != n_samples:
        msg = (
            f"{where}: line 2 declares {n_samples} samples but the header names "
            f"{len(samples)}; the file is truncated or malformed."
        )
        raise FormatError(msg)
    if "" in samples:
        msg = f"{where}: its header has an empty sample name."
        raise FormatError(msg)
    return {
        "compression": compression,
        "header": header,
        "samples": samples,
        "n_genes": n_genes,
    }


def _gene_table(ids: pd.DataFrame, var_names: str, name: str) -> pd.DataFrame:
    gene_id = ids["Name"].astype(str).str.strip().to_numpy()
    symbol = ids["Description"].astype(str).str.strip().to_numpy()
    var = pd.DataFrame({"gene_id": gene_id, "gene_symbol": symbol})
    if var_names == "gene_symbol":
        var.index = unique_names(symbol)
    else:
        var.index = gene_index(gene_id, name, noun="gene ids")
    return var


# -- the annotation tables ---------------------------------------------------------------------
def _read_annotations(
    source: TableLike, what: str, columns: list[str], hint: str
) -> tuple[pd.DataFrame, str]:
    """A GTEx annotation table indexed by its id column (``columns[0]``, each id once)."""
    table, name = read_table(source, what)
    require_columns(table, columns, name, f"{what} table", hint)
    key = columns[0]
    table[key] = text_ids(table[key])
    table = table.dropna(subset=[key])
    _no_duplicates(table[key], name, key)
    return table.set_index(key), name


def _read_attributes(source: TableLike) -> tuple[pd.DataFrame, str]:
    table, name = _read_annotations(
        source,
        "GTEx sample attributes",
        ["SAMPID", "SMTS", "SMTSD"],
        "Is it GTEx_Analysis_..._Annotations_SampleAttributesDS.txt?",
    )
    for column in ("SMTS", "SMTSD"):
        table[column] = text_ids(table[column])
    return table, name


def _join_phenotypes(
    sample_ids: list[str], source: TableLike, missing: str
) -> tuple[pd.DataFrame, list[str]]:
    """The subject phenotypes table, and the samples kept (``missing="drop"``)."""
    phenotypes, name = _read_annotations(
        source,
        "GTEx subject phenotypes",
        ["SUBJID"],
        "Is it GTEx_Analysis_..._Annotations_SubjectPhenotypesDS.txt?",
    )
    subjects = [_subject_of(s) for s in sample_ids]
    unique = sorted(set(subjects))
    absent = [s for s in unique if s not in phenotypes.index]
    none_found = f"None of the {len(unique)} subjects of the expression samples is in {name} "
    none_found += "(SUBJID)." + no_overlap_hint(unique, phenotypes.index.tolist())
    resolve_missing(absent, len(unique), missing, name, noun="subjects", none_found=none_found)
    if missing == "drop" and absent:
        gone = set(absent)
        sample_ids = [s for s, subj in zip(sample_ids, subjects) if subj not in gone]
    return phenotypes, sample_ids


def _no_duplicates(ids: pd.Series, name: str, column: str) -> None:
    twice = ids[ids.duplicated()].unique().tolist()
    if twice:
        msg = (
            f"{name} lists {len(twice)} {column} value(s) more than once: {shown(twice)}. "
            "Each must appear once; remove the duplicated rows."
        )
        raise ValueError(msg)


def _subject_of(sample_id: str) -> str:
    return "-".join(sample_id.split("-")[:2])


def _choose(
    sample_ids: list[str],
    samples: Sequence[str] | None,
    tissues: str | Sequence[str] | None,
    attributes: pd.DataFrame | None,
    attr_name: str | None,
    missing: str,
    path: Path,
) -> list[str]:
    """The samples to read: those asked for, of the tissues asked for, in the attributes."""
    if samples is not None:
        sample_ids = _choose_samples(sample_ids, samples, path.name)
    if tissues is not None:
        if attributes is None:
            msg = (
                "tissues= needs the sample attributes table (sample_attributes=), which "
                "names each sample's tissue."
            )
            raise ValueError(msg)
        sample_ids = _choose_tissues(sample_ids, attributes, tissues, attr_name, path.name)
    if attributes is None:
        return sample_ids
    absent = [s for s in sample_ids if s not in attributes.index]
    none_found = f"None of the {len(sample_ids)} expression samples is in {attr_name} (SAMPID)."
    none_found += no_overlap_hint(sample_ids, attributes.index.tolist())
    resolve_missing(absent, len(sample_ids), missing, attr_name, none_found=none_found)
    if missing == "drop" and absent:
        gone = set(absent)
        return [s for s in sample_ids if s not in gone]
    return sample_ids


def _choose_samples(sample_ids: list[str], samples: Sequence[str], name: str) -> list[str]:
    wanted = [samples] if isinstance(samples, str) else list(samples)
    present = set(sample_ids)
    absent = [s for s in wanted if s not in present]
    if absent:
        msg = f"{len(absent)} requested sample(s) are not in {name}: {shown(absent)}."
        raise ValueError(msg)
    chosen = set(wanted)
    return [s for s in sample_ids if s in chosen]


def _choose_tissues(
    sample_ids: list[str],
    attributes: pd.DataFrame,
    tissues: str | Sequence[str],
    attr_name: str,
    name: str,
) -> list[str]:
    wanted = [tissues] if isinstance(tissues, str) else list(tissues)
    known = set(attributes["SMTS"].dropna()) | set(attributes["SMTSD"].dropna())
    unknown = [t for t in wanted if t not in known]
    if unknown:
        msg = (
            f"Unknown tissue(s) {shown(unknown)}: {attr_name} names tissues (SMTS or SMTSD) "
            f"{shown(sorted(known), 60)}."
        )
        raise ValueError(msg)
    wanted_set = set(wanted)
    rows = attributes.reindex(sample_ids)
    keep = rows["SMTS"].isin(wanted_set) | rows["SMTSD"].isin(wanted_set)
    chosen = [s for s, k in zip(sample_ids, keep.to_numpy()) if k]
    if not chosen:
        msg = f"No sample of {name} is of tissue {shown(wanted)} according to {attr_name}."
        raise ValueError(msg)
    return chosen


# -- obs ---------------------------------------------------------------------------------------
def _obs(
    sample_ids: list[str], attributes: pd.DataFrame | None, phenotypes: pd.DataFrame | None
) -> pd.DataFrame:
    index = pd.Index(sample_ids)
    subjects = [_subject_of(s) for s in sample_ids]
    obs = pd.DataFrame(index=index)
    attrs = None
    if attributes is not None:
        attrs = attributes.reindex(index)
        obs["tissue"] = categorical(attrs["SMTS"].to_numpy())
        obs["tissue_detail"] = categorical(attrs["SMTSD"].to_numpy())
    obs["subject_id"] = categorical(subjects)
    pheno = None
    if phenotypes is not None:
        pheno = phenotypes.reindex(pd.Index(subjects))
        if "SEX" in pheno.columns:
            obs["sex"] = _sex(pheno["SEX"])
        if "AGE" in pheno.columns:
            obs["age"] = _age(pheno["AGE"])
        if "DTHHRDY" in pheno.columns:
            obs["hardy_scale"] = _hardy(pheno["DTHHRDY"])
    if attrs is not None:
        obs = add_columns(obs, attrs.drop(columns=["SMTS", "SMTSD"]), "_attributes")
    if pheno is not None:
        used = [c for c in ("SEX", "AGE", "DTHHRDY") if c in pheno.columns]
        obs = add_columns(obs, pheno.drop(columns=used), "_subject")
    obs = text_to_categoricals(obs)
    obs.index = index
    return obs


def _codes(values: pd.Series) -> pd.Series:
    """Codes as text: 1, 1.0 and '1' all give '1'."""

    def code(v):
        if pd.isna(v):
            return np.nan
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        return str(v).strip().lower()

    return values.map(code)


def _sex(values: pd.Series) -> pd.Series:
    codes = _codes(values)
    unknown = sorted(set(codes.dropna()) - set(_SEX))
    if unknown:
        msg = (
            f"Unexpected SEX value(s) {shown(unknown)} in the subject phenotypes; GTEx codes "
            "sex as 1 (male) and 2 (female)."
        )
        raise ValueError(msg)
    return categorical(codes.map(_SEX).to_numpy())


def _age(values: pd.Series) -> pd.Series:
    text = text_ids(values)

    def lower(bracket: str) -> tuple[float, str]:
        found = re.match(r"\d+", bracket)
        return (float(found.group()) if found else np.inf, bracket)

    categories = sorted(text.dropna().unique(), key=lower)
    return categorical(text.to_numpy(), categories=categories, ordered=True)


def _hardy(values: pd.Series) -> pd.Series:
    codes = _codes(values)
    unknown = sorted(set(codes.dropna()) - _HARDY)
    if unknown:
        msg = (
            f"Unexpected DTHHRDY value(s) {shown(unknown)} in the subject phenotypes; the "
            "Hardy scale runs from 0 to 4 (empty when unknown)."
        )
        raise ValueError(msg)
    return categorical(codes.to_numpy())
