"""What the TCGA readers share: barcodes, the clinical join, ``obs`` and the AnnData they build."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import anndata as ad
import numpy as np
import pandas as pd

from ._utils import (
    Missing,
    TableLike,
    add_columns,
    categorical,
    check_options,
    first_column,
    gene_index,
    no_overlap_hint,
    read_table,
    require_columns,
    resolve_missing,
    shown,
    text_ids,
    text_to_categoricals,
    unique_names,
)

logger = logging.getLogger(__name__)

#: GDC names of the TCGA sample-type codes (the barcode's characters 14-15)
SAMPLE_TYPES = {
    "01": "Primary Tumor",
    "02": "Recurrent Tumor",
    "03": "Primary Blood Derived Cancer - Peripheral Blood",
    "04": "Recurrent Blood Derived Cancer - Bone Marrow",
    "05": "Additional - New Primary",
    "06": "Metastatic",
    "07": "Additional Metastatic",
    "08": "Human Tumor Original Cells",
    "09": "Primary Blood Derived Cancer - Bone Marrow",
    "10": "Blood Derived Normal",
    "11": "Solid Tissue Normal",
    "12": "Buccal Cell Normal",
    "13": "EBV Immortalized Normal",
    "14": "Bone Marrow Normal",
    "15": "Fibroblasts from Bone Marrow Normal",
    "16": "Mononuclear Cells from Bone Marrow Normal",
    "20": "Control Analyte",
    "40": "Recurrent Blood Derived Cancer - Peripheral Blood",
    "50": "Cell Lines",
    "60": "Primary Xenograft Tissue",
    "61": "Cell Line Derived Xenograft Tissue",
}

# candidate columns of the clinical / phenotype tables, most specific first
_SAMPLE_ID_COLUMNS = (
    "submitter_id.samples",  # Xena GDC hub phenotype
    "sample",  # Xena clinical / survival tables
    "sampleID",  # Xena legacy clinicalMatrix
    "samples.submitter_id",
    "sample_submitter_id",
    "bcr_sample_barcode",
    "Sample ID",  # GDC sample sheet
)
_CASE_ID_COLUMNS = (
    "case_submitter_id",  # GDC cart clinical.tsv
    "cases.submitter_id",  # GDC portal 2.0 clinical.tsv
    "bcr_patient_barcode",
    "_PATIENT",
    "submitter_id",
    "patient_id",
    "Case ID",
)
_PROJECT_COLUMNS = (
    "project_id.project",
    "project.project_id",
    "cases.project.project_id",
    "project_id",
    "Project ID",
)
_SAMPLE_TYPE_COLUMNS = ("sample_type.samples", "samples.sample_type", "sample_type", "Sample Type")
_GENDER_COLUMNS = ("gender.demographic", "demographic.gender", "gender")
_DAYS = 1 / 365.25
_AGE_COLUMNS = (  # (column, factor to years)
    ("age_at_index.demographic", 1.0),
    ("demographic.age_at_index", 1.0),
    ("age_at_index", 1.0),
    ("age_at_initial_pathologic_diagnosis", 1.0),
    ("age_at_diagnosis.diagnoses", _DAYS),
    ("diagnoses.age_at_diagnosis", _DAYS),
    ("age_at_diagnosis", _DAYS),
    ("days_to_birth.demographic", -_DAYS),
    ("demographic.days_to_birth", -_DAYS),
    ("days_to_birth", -_DAYS),
)
_GENDER_MISSING = {"not reported", "unknown", "unspecified", "not specified", "na", ""}
_BARCODE = re.compile(r"^([A-Za-z]+-[A-Za-z0-9]{2}-[A-Za-z0-9]+)(?:-(\d{2})[A-Za-z]?(?:-|$))?")

#: docstring paragraphs the TCGA readers share (see :func:`~scgensynth._utils._docs.doc_params`)
TCGA_DOCS = {
    "star_files": """
        The per-sample files ``<uuid>.rna_seq.augmented_star_gene_counts.tsv`` (a
        ``# gene-model: GENCODE v36`` line, columns ``gene_id, gene_name, gene_type,
        unstranded, stranded_first, stranded_second, tpm_unstranded, fpkm_unstranded,
        fpkm_uq_unstranded``), as a directory (e.g. an unpacked GDC download, one folder per
        file; searched recursively, other files ignored), a list of files, or one file. The
        files are named by UUID, so the GDC **sample sheet** of the same cart is needed
        (``sample_sheet=``): it gives each file's sample barcode, project and sample type. The
        four ``N_unmapped``, ``N_multimapping``, ``N_noFeature``, ``N_ambiguous`` rows are not
        genes: they go to ``obs`` when ``value`` is a count column.
    """,
    "xena_file": """
        One genes x samples tab-separated file (often ``.tsv.gz``) whose first column holds
        Ensembl ids (GDC hub, header ``Ensembl_ID``, e.g. ``TCGA-LUSC.star_counts.tsv.gz``,
        ``TCGA-LUSC.htseq_counts.tsv.gz``) or gene symbols (legacy hub, header ``sample`` or
        ``gene``, e.g. ``HiSeqV2``), and one column per sample barcode. Xena distributes
        values as log2(x + 1) (x = counts, FPKM or normalised counts); they are kept as they
        are unless ``unlog=True``. HTSeq's ``__no_feature``-style rows are dropped.
    """,
    "clinical": """
        clinical
            A clinical or phenotype table, as a file or a DataFrame: per sample (Xena
            ``TCGA-LUSC.GDC_phenotype.tsv.gz`` with ``submitter_id.samples``, Xena
            ``TCGA-LUSC.clinical.tsv.gz`` with ``sample``, legacy ``clinicalMatrix`` with
            ``sampleID``) or per case (the GDC cart's ``clinical.tsv`` with
            ``case_submitter_id``, where ``'--`` marks a missing value). A per-sample table is
            joined on the sample barcode (``TCGA-18-3406-01A``; when a barcode is not found,
            on its first 15 characters, so ``TCGA-18-3406-01`` matches ``TCGA-18-3406-01A``),
            a per-case table on the patient barcode (``TCGA-18-3406``). A case listed on
            several rows (``clinical.tsv`` has one per treatment) keeps the columns that agree
            across its rows; those that differ are dropped (logged).
    """,
    "sample_sheet": """
        sample_sheet
            The GDC sample sheet (``gdc_sample_sheet.<date>.tsv``: ``File ID``, ``File Name``,
            ``Project ID``, ``Case ID``, ``Sample ID``, ``Sample Type``, ...). Required for
            STAR files. A file listed with several samples (comma-separated ``Sample ID``) is
            an error: one STAR file holds one sample.
    """,
    "value": """
        value
            The STAR column to read: ``"unstranded"`` (default; counts), ``"stranded_first"``,
            ``"stranded_second"``, ``"tpm_unstranded"``, ``"fpkm_unstranded"`` or
            ``"fpkm_uq_unstranded"``.
    """,
    "probemap": """
        probemap
            For a Xena matrix of Ensembl ids: Xena's probe map
            (``gencode.v36.annotation.gtf.gene.probemap``: ``id``, ``gene``, ``chrom``, ...),
            giving ``var["gene_symbol"]`` and the other map columns.
    """,
    "unlog": """
        unlog
            Undo Xena's log2(x + 1): ``X = 2**values - 1``. Counts come back close to but not
            exactly integers (Xena rounds the logged values), so keep the logged values when
            you can. Negative values, which are not log2(x + 1), are an error.
    """,
    "project": """
        project
            The project (``"TCGA-LUSC"``) of every sample, overriding the one the sample
            sheet, the clinical table or a Xena file name (``TCGA-LUSC.*``) gives.
    """,
    "id_column": """
        id_column
            The clinical table's sample or case id column, when it is none of the usual names.
    """,
    "obs": """
        ``obs``: ``project``, ``sample_type`` (text, e.g. ``"Primary Tumor"``, from the sample
        sheet or the clinical table, else from the code), ``sample_type_code`` (the barcode's
        characters 14-15, ``"01"``), ``cancer`` (``"tumour"`` for codes 01-09 and 40,
        ``"normal"`` for 10-19, ``"control"`` for 20-29, missing for others: cell lines,
        xenografts), ``patient_id`` (``TCGA-18-3406``), ``age`` (years, float: per sample
        from ``age_at_index``, else the age at diagnosis, else days to birth), ``gender``
        (lower-case; "not reported" is missing), then the clinical table's other non-empty
        columns under their own names (a name already taken gets ``_clinical``).
    """,
}


@dataclass(frozen=True)
class TcgaOptions:
    """The options both TCGA readers take, once checked."""

    project: str | None
    genes: Sequence[str] | None
    var_names: str
    id_column: str | None
    missing: Missing
    dtype: np.dtype
    #: the public function called, recorded in ``uns["sgs_reader"]``
    reader: str

    @classmethod
    def checked(
        cls,
        reader: str,
        project: str | None,
        genes: Sequence[str] | None,
        var_names: str,
        id_column: str | None,
        missing: Missing,
        dtype: str | np.dtype,
    ) -> TcgaOptions:
        """The options, after :func:`~scgensynth.io._utils.check_options`."""
        dtype = check_options(missing, var_names, dtype)
        return cls(project, genes, var_names, id_column, missing, dtype, reader)


@dataclass
class Clinical:
    """A clinical table joined to the expression samples."""

    #: the table's rows, one per sample (indexed by sample id), empty columns left out
    rows: pd.DataFrame
    #: the table's name in messages
    name: str
    #: obs column -> the clinical columns it was read from (filled by :func:`tcga_obs`)
    sources: dict[str, list[str]] = field(default_factory=dict)


# -- barcodes ----------------------------------------------------------------------------------
def parse_barcode(barcode: str) -> tuple[str | None, str | None]:
    """(patient barcode, sample-type code) of a TCGA/TARGET barcode, None where absent."""
    found = _BARCODE.match(str(barcode))
    if not found:
        return None, None
    return found.group(1), found.group(2)


def _short_sample(barcode: str) -> str | None:
    patient, code = parse_barcode(barcode)
    return None if code is None else f"{patient}-{code}"


# -- the clinical join -------------------------------------------------------------------------
def join_clinical(
    sample_ids: list[str], clinical: TableLike | None, options: TcgaOptions
) -> tuple[list[str], Clinical | None]:
    """The samples kept and the clinical table joined to them (None without a table)."""
    joined, missing = None, options.missing
    if clinical is not None:
        table, name = read_table(clinical, "clinical")
        key = _id_column(table, name, options.id_column)
        table = table.copy()
        table[key] = text_ids(table[key])
        table = table.dropna(subset=[key])
        parsed = [parse_barcode(i) for i in table[key]]
        per_sample = sum(code is not None for _, code in parsed) > len(parsed) / 2
        table = _collapse(table, key, name)
        keys = _sample_keys(sample_ids, table.index) if per_sample else _case_keys(sample_ids)
        keys = [k if k in table.index else None for k in keys]
        level = "sample" if per_sample else "case"
        absent = [s for s, k in zip(sample_ids, keys) if k is None]
        none_found = (
            f"None of the {len(sample_ids)} expression samples is in {name} (joined by "
            f"{level} on column {key!r})." + no_overlap_hint(sample_ids, table.index.tolist())
        )
        where = f"{name} (column {key!r})"
        resolve_missing(absent, len(sample_ids), missing, where, none_found=none_found)
        if missing == "drop" and absent:
            kept = [(s, k) for s, k in zip(sample_ids, keys) if k is not None]
            sample_ids, keys = [s for s, _ in kept], [k for _, k in kept]
        rows = table.reindex(pd.Index(keys, dtype=object))
        rows.index = pd.Index(sample_ids)
        empty = [c for c in rows.columns if table[c].isna().all()]
        if empty:
            logger.info("%d columns of %s are empty and were left out.", len(empty), name)
        joined = Clinical(rows.drop(columns=empty), name)
    if not sample_ids:
        msg = "No sample is left to read."
        raise ValueError(msg)
    return sample_ids, joined


def _id_column(table: pd.DataFrame, name: str, id_column: str | None) -> str:
    """The sample or case id column of a clinical table: ``id_column``, else a usual name."""
    if id_column is not None:
        require_columns(table, [id_column], name, "clinical table (id_column)")
        return id_column
    key = first_column(table, _SAMPLE_ID_COLUMNS) or first_column(table, _CASE_ID_COLUMNS)
    if key is None:
        msg = (
            f"{name} has no sample or case id column: expected one of "
            f"{list(_SAMPLE_ID_COLUMNS + _CASE_ID_COLUMNS)}; its columns are "
            f"{shown(list(table.columns), 12)}. Pass id_column= to name it."
        )
        raise ValueError(msg)
    return key


def _sample_keys(sample_ids: list[str], table_ids: pd.Index) -> list[str | None]:
    """Each sample's row of a per-sample table: its barcode, else its first 15 characters."""
    short: dict[str, str | None] = {}
    for i in table_ids:
        s = _short_sample(i)
        if s is not None:
            short[s] = i if s not in short else None  # None: ambiguous
    return [s if s in table_ids else short.get(_short_sample(s) or "") for s in sample_ids]


def _case_keys(sample_ids: list[str]) -> list[str | None]:
    """Each sample's row of a per-case table: its patient barcode."""
    return [parse_barcode(s)[0] for s in sample_ids]


def _collapse(table: pd.DataFrame, key: str, name: str) -> pd.DataFrame:
    """One row per id: the columns that agree within each id (first non-missing value)."""
    if not table[key].duplicated().any():
        return table.set_index(key)
    grouped = table.groupby(key, sort=False)
    differing = grouped.nunique(dropna=True).gt(1).any()
    differing = differing[differing].index.tolist()
    if differing:
        logger.info(
            "%s has several rows per %s; kept the columns that agree within each and left "
            "out %d that differ (%s).",
            name,
            key,
            len(differing),
            shown(differing, 4),
        )
    return table.drop(columns=differing).groupby(key, sort=False).first()


# -- obs ---------------------------------------------------------------------------------------
def tcga_obs(
    sample_ids: list[str],
    sheet_obs: pd.DataFrame | None,
    clinical: Clinical | None,
    project: str | None,
    file_project: str | None,
) -> pd.DataFrame:
    """The covariates of the samples: from the sample sheet, the clinical table, barcodes."""
    index = pd.Index(sample_ids)
    patients, codes = _barcodes(sample_ids)
    proj = _covariate("project", index, sheet_obs, clinical, _PROJECT_COLUMNS)
    if project is not None:
        proj[:] = project
    elif file_project is not None:
        proj = _fill(proj, file_project)
    sample_type = _covariate("sample_type", index, sheet_obs, clinical, _SAMPLE_TYPE_COLUMNS)
    sample_type = _fill(
        sample_type,
        pd.Series([SAMPLE_TYPES.get(c, np.nan) for c in codes], index=index, dtype=object),
    )

    obs = pd.DataFrame(index=index)
    obs["project"] = categorical(proj.to_numpy())
    obs["sample_type"] = categorical(sample_type.to_numpy())
    obs["sample_type_code"] = categorical([np.nan if c is None else c for c in codes])
    obs["cancer"] = categorical([_cancer(c) for c in codes])
    obs["patient_id"] = categorical([np.nan if p is None else p for p in patients])
    age, gender = np.full(len(index), np.nan), np.full(len(index), np.nan, dtype=object)
    if clinical is not None:
        age, gender = _age(clinical), _gender(clinical)
    obs["age"] = age
    obs["gender"] = categorical(gender)
    if clinical is not None:
        used = [c for columns in clinical.sources.values() for c in columns]
        obs = add_columns(obs, clinical.rows.drop(columns=list(dict.fromkeys(used))), "_clinical")
    obs.index = index
    return obs


def _barcodes(sample_ids: list[str]) -> tuple[list[str | None], list[str | None]]:
    """The patient barcodes and sample-type codes of the samples, logging the unparsed ids."""
    parsed = [parse_barcode(s) for s in sample_ids]
    unparsed = [s for s, (p, _) in zip(sample_ids, parsed) if p is None]
    if unparsed:
        logger.warning(
            "%d sample id(s) are not TCGA barcodes (%s): no patient or sample-type code for them.",
            len(unparsed),
            shown(unparsed, 3),
        )
    return [p for p, _ in parsed], [c for _, c in parsed]


def _covariate(
    column: str,
    index: pd.Index,
    sheet_obs: pd.DataFrame | None,
    clinical: Clinical | None,
    candidates: Sequence[str],
) -> pd.Series:
    """A text covariate from the sample sheet, else from the first candidate clinical column."""
    out = pd.Series([np.nan] * len(index), index=index, dtype=object)
    if sheet_obs is not None:
        out = _fill(out, sheet_obs[column])
    if clinical is not None:
        found = first_column(clinical.rows, candidates)
        if found is not None:
            clinical.sources[column] = [found]
            out = _fill(out, clinical.rows[found].map(lambda v: v if pd.isna(v) else str(v)))
    return out


def _fill(values: pd.Series, other: pd.Series | str) -> pd.Series:
    """``values.fillna(other)`` that stays text (object dtype) even where all is missing.

    ``fillna`` would turn an all-missing result into floats, with a FutureWarning.
    """
    if isinstance(other, pd.Series):
        other = other.reindex(values.index).to_numpy(dtype=object)
    filled = np.where(values.isna().to_numpy(), other, values.to_numpy(dtype=object))
    return pd.Series(filled, index=values.index, dtype=object)


def _cancer(code: str | None) -> str | float:
    if code is None:
        return np.nan
    number = int(code)
    if 1 <= number <= 9 or number == 40:
        return "tumour"
    if 10 <= number <= 19:
        return "normal"
    if 20 <= number <= 29:
        return "control"
    return np.nan


def _age(clinical: Clinical) -> np.ndarray:
    """Age in years: per sample, the first of :data:`_AGE_COLUMNS` that has a value."""
    table = clinical.rows
    age = np.full(len(table), np.nan)
    used = []
    for column, factor in _AGE_COLUMNS:
        if column not in table.columns or not np.isnan(age).any():
            continue
        raw = table[column]
        numbers = pd.to_numeric(raw, errors="coerce")
        odd = sorted(set(raw[numbers.isna() & raw.notna()].astype(str)))
        if odd:
            logger.warning(
                "%s: non-numeric value(s) of %s taken as missing (%s).",
                clinical.name,
                column,
                shown(odd, 3),
            )
        fill = np.isnan(age) & numbers.notna().to_numpy()
        if fill.any():
            age[fill] = numbers.to_numpy(dtype=float)[fill] * factor
            used.append(column)
    if used:
        clinical.sources["age"] = used
    return age


def _gender(clinical: Clinical) -> np.ndarray:
    """Gender in lower case ("not reported" and the like missing), if the table has it."""
    column = first_column(clinical.rows, _GENDER_COLUMNS)
    if column is None:
        return np.full(len(clinical.rows), np.nan, dtype=object)
    clinical.sources["gender"] = [column]

    def norm(v):
        if pd.isna(v):
            return np.nan
        text = str(v).strip().lower()
        return np.nan if text in _GENDER_MISSING else text

    return clinical.rows[column].map(norm).to_numpy(dtype=object)


# -- the AnnData -------------------------------------------------------------------------------
def tcga_anndata(
    X: np.ndarray,
    var: pd.DataFrame,
    sample_ids: list[str],
    record: dict,
    options: TcgaOptions,
    *,
    clinical: Clinical | None,
    sheet_obs: pd.DataFrame | None = None,
    file_project: str | None = None,
    counters: pd.DataFrame | None = None,
) -> ad.AnnData:
    """The readers' AnnData: ``var_names``, ``obs`` covariates, ``uns["sgs_reader"]``, a log line.

    ``record`` is what ``uns["sgs_reader"]`` says of the expression (its ``"expression"``
    names the source in messages); ``counters`` are the STAR ``N_*`` rows, one per sample.
    """
    source = record["expression"]
    set_var_names(var, options.var_names, source)
    obs = tcga_obs(sample_ids, sheet_obs, clinical, options.project, file_project)
    if counters is not None:
        obs = add_columns(obs, counters, "_star")
    adata = ad.AnnData(X=X, obs=text_to_categoricals(obs), var=var)
    record = {"reader": options.reader, **record}
    if clinical is not None:
        record["clinical"] = clinical.name
        record["clinical_columns"] = {k: ", ".join(v) for k, v in clinical.sources.items()}
    adata.uns["sgs_reader"] = record
    logger.info(
        "Read %d samples x %d genes from %s (%s).",
        adata.n_obs,
        adata.n_vars,
        source,
        record["values"],
    )
    return adata


def set_var_names(var: pd.DataFrame, var_names: str, source: str) -> None:
    """Index ``var`` by gene id (or a Xena matrix's symbols), or by symbol (``var_names``)."""
    if var_names == "gene_symbol":
        if "gene_symbol" not in var.columns:
            msg = (
                f"{source} names genes by Ensembl id only; pass its Xena probe map "
                "(probemap=) for symbols, or keep var_names='gene_id'."
            )
            raise ValueError(msg)
        var.index = unique_names(var["gene_symbol"].astype(str))
    else:
        key = "gene_id" if "gene_id" in var.columns else "gene_symbol"
        var.index = gene_index(var[key].astype(str), source)
