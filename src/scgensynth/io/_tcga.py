"""Reader of TCGA expression files (GDC STAR counts, UCSC Xena matrices) and clinical tables."""

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

from ._utils import (
    FormatError,
    Missing,
    TableLike,
    add_columns,
    as_file,
    categorical,
    check_dtype,
    check_missing_option,
    check_unique_columns,
    check_var_names,
    compression_of,
    first_column,
    gene_matcher,
    head_lines,
    is_counts,
    no_overlap_hint,
    read_matrix,
    read_table,
    report_genes,
    require_columns,
    resolve_missing,
    shown,
    text_ids,
    text_to_categoricals,
    unique_names,
    unversioned,
    warn_float32_counts,
)

logger = logging.getLogger(__name__)

#: columns of a GDC STAR gene-count file, after gene_id, gene_name, gene_type
STAR_VALUES = (
    "unstranded",
    "stranded_first",
    "stranded_second",
    "tpm_unstranded",
    "fpkm_unstranded",
    "fpkm_uq_unstranded",
)
_STAR_COUNTS = STAR_VALUES[:3]
_STAR_GLOB = "*star_gene_counts.tsv*"

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
_ENSEMBL = re.compile(r"^ENS[A-Z]*G\d+")
_GENE = "\x00gene"  # name given to a matrix's first column while reading


def read_tcga(
    expression: str | PathLike | Sequence[str | PathLike],
    clinical: TableLike | None = None,
    *,
    sample_sheet: TableLike | None = None,
    value: str | None = None,
    probemap: TableLike | None = None,
    unlog: bool = False,
    project: str | None = None,
    genes: Sequence[str] | None = None,
    var_names: Literal["gene_id", "gene_symbol"] = "gene_id",
    id_column: str | None = None,
    missing: Missing = "raise",
    dtype: str | np.dtype = "float32",
) -> ad.AnnData:
    r"""Read TCGA expression as distributed by the GDC or UCSC Xena, with clinical covariates.

    Two kinds of expression input are read:

    - **GDC STAR gene counts**: the per-sample files
      ``<uuid>.rna_seq.augmented_star_gene_counts.tsv`` (a ``# gene-model: GENCODE v36``
      line, columns ``gene_id, gene_name, gene_type, unstranded, stranded_first,
      stranded_second, tpm_unstranded, fpkm_unstranded, fpkm_uq_unstranded``), as a
      directory (e.g. an unpacked GDC download, one folder per file; searched recursively,
      other files ignored), a list of files, or one file. The files are named by UUID, so the
      GDC **sample sheet** of the same cart is needed (``sample_sheet=``): it gives each
      file's sample barcode, project and sample type. The four ``N_unmapped``,
      ``N_multimapping``, ``N_noFeature``, ``N_ambiguous`` rows are not genes: they go to
      ``obs`` when ``value`` is a count column.
    - **UCSC Xena matrices**: one genes x samples tab-separated file (often ``.tsv.gz``)
      whose first column holds Ensembl ids (GDC hub, header ``Ensembl_ID``, e.g.
      ``TCGA-LUSC.star_counts.tsv.gz``, ``TCGA-LUSC.htseq_counts.tsv.gz``) or gene symbols
      (legacy hub, header ``sample`` or ``gene``, e.g. ``HiSeqV2``), and one column per
      sample barcode. Xena distributes values as log2(x + 1) (x = counts, FPKM or
      normalised counts); they are kept as they are unless ``unlog=True``. HTSeq's
      ``__no_feature``-style rows are dropped.

    Compression (gzip, bz2, xz) is recognised from the files' first bytes.

    Parameters
    ----------
    expression
        A directory or list of GDC STAR files, one STAR file, or one Xena matrix.
    clinical
        A clinical or phenotype table, as a file or a DataFrame: per sample (Xena
        ``TCGA-LUSC.GDC_phenotype.tsv.gz`` with ``submitter_id.samples``, Xena
        ``TCGA-LUSC.clinical.tsv.gz`` with ``sample``, legacy ``clinicalMatrix`` with
        ``sampleID``) or per case (the GDC cart's ``clinical.tsv`` with
        ``case_submitter_id``, where ``'--`` marks a missing value). A per-sample table is
        joined on the sample barcode (``TCGA-18-3406-01A``; when a barcode is not found, on
        its first 15 characters, so ``TCGA-18-3406-01`` matches ``TCGA-18-3406-01A``), a
        per-case table on the patient barcode (``TCGA-18-3406``). A case listed on several
        rows (``clinical.tsv`` has one per treatment) keeps the columns that agree across
        its rows; those that differ are dropped (logged).
    sample_sheet
        The GDC sample sheet (``gdc_sample_sheet.<date>.tsv``: ``File ID``, ``File Name``,
        ``Project ID``, ``Case ID``, ``Sample ID``, ``Sample Type``, ...). Required for STAR
        files. A file listed with several samples (comma-separated ``Sample ID``) is an
        error: one STAR file holds one sample.
    value
        The STAR column to read: ``"unstranded"`` (default; counts), ``"stranded_first"``,
        ``"stranded_second"``, ``"tpm_unstranded"``, ``"fpkm_unstranded"`` or
        ``"fpkm_uq_unstranded"``. Only for STAR files.
    probemap
        For a Xena matrix of Ensembl ids: Xena's probe map
        (``gencode.v36.annotation.gtf.gene.probemap``: ``id``, ``gene``, ``chrom``, ...),
        giving ``var["gene_symbol"]`` and the other map columns.
    unlog
        Undo Xena's log2(x + 1): ``X = 2**values - 1``. Counts come back close to but not
        exactly integers (Xena rounds the logged values), so keep the logged values when
        you can. Only for Xena matrices (an error on negative values, which are not
        log2(x + 1)).
    project
        The project (``"TCGA-LUSC"``) of every sample, overriding the sample sheet, the
        clinical table and a project read from a Xena file name (``TCGA-LUSC.*``).
    genes
        Keep these genes: Ensembl ids with or without version, or symbols.
    var_names
        ``"gene_id"`` (Ensembl ids) or ``"gene_symbol"`` (symbols made unique as
        :meth:`anndata.AnnData.var_names_make_unique` does). A Xena matrix of symbols has
        symbols either way.
    id_column
        The clinical table's sample or case id column, when it is none of the usual names.
    missing
        What to do with expression samples absent from the clinical table (or STAR files
        absent from the sample sheet): ``"raise"`` (default: usually a sign that files of
        different projects or releases were mixed), ``"drop"`` them, or ``"keep"`` them with
        missing covariates (a STAR file without a sample-sheet row is named by its file).
    dtype
        ``"float32"`` (default) or ``"float64"``.

    Returns
    -------
    AnnData of samples x genes (STAR: in sample-sheet order for a directory, in the given
    order for a list; Xena: in the file's column order), ``obs_names`` the sample barcodes.
    ``X`` holds the values unchanged (STAR counts stay integer-valued, for
    :func:`scgensynth.pp.detect_scaling`); ``uns["sgs_reader"]`` records the format, the
    values (``"counts"``, ``"continuous"`` or ``"log2(x+1)"``), the gene model and which
    clinical columns the covariates came from.

    ``obs``: ``project``, ``sample_type`` (text, e.g. ``"Primary Tumor"``, from the sample
    sheet or the clinical table, else from the code), ``sample_type_code`` (the barcode's
    characters 14-15, ``"01"``), ``cancer`` (``"tumour"`` for codes 01-09 and 40,
    ``"normal"`` for 10-19, ``"control"`` for 20-29, missing for others: cell lines,
    xenografts), ``patient_id`` (``TCGA-18-3406``), ``age`` (years, float: per
    sample from ``age_at_index``, else the age at diagnosis, else days to birth), ``gender``
    (lower-case; "not reported" is missing), then the clinical table's other non-empty
    columns under their own names (a name already taken gets ``_clinical``). ``var``:
    ``gene_id``, ``gene_symbol`` and (STAR) ``gene_type``, as available.

    Raises
    ------
    ValueError
        A file not in the expected format, a table without its required columns, STAR files
        of different gene models or genes, duplicated samples, options that do not apply to
        the input, or samples absent from a table with ``missing="raise"``.

    Examples
    --------
    A Xena GDC-hub matrix (log2(count + 1)) with a per-case GDC clinical table:

    >>> import tempfile, pathlib
    >>> import scgensynth as sgs
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "TCGA-LUSC.star_counts.tsv").write_text(
    ...     "Ensembl_ID\tTCGA-18-3406-01A\tTCGA-18-3406-11A\tTCGA-22-4593-01A\n"
    ...     "ENSG00000000003.15\t11.2\t9.5\t10.1\nENSG00000000005.6\t0\t1\t2.3\n"
    ... )
    >>> _ = (folder / "clinical.tsv").write_text(
    ...     "case_id\tcase_submitter_id\tproject_id\tage_at_index\tgender\n"
    ...     "6b2d3c1e\tTCGA-18-3406\tTCGA-LUSC\t67\tmale\n"
    ...     "0a9e4b7f\tTCGA-22-4593\tTCGA-LUSC\t'--\tfemale\n"
    ... )
    >>> adata = sgs.io.read_tcga(folder / "TCGA-LUSC.star_counts.tsv", folder / "clinical.tsv")
    >>> adata.obs[["cancer", "sample_type", "age", "gender"]]
                      cancer          sample_type   age  gender
    TCGA-18-3406-01A  tumour        Primary Tumor  67.0    male
    TCGA-18-3406-11A  normal  Solid Tissue Normal  67.0    male
    TCGA-22-4593-01A  tumour        Primary Tumor   NaN  female
    >>> adata.uns["sgs_reader"]["values"]
    'log2(x+1)'
    """
    check_missing_option(missing)
    check_var_names(var_names)
    dtype = check_dtype(dtype)
    kind, files, from_directory = _expression_files(expression)
    if kind == "star":
        if unlog:
            msg = "unlog=True is for Xena matrices (log2(x + 1)); STAR values are not logged."
            raise ValueError(msg)
        if probemap is not None:
            msg = "probemap= is for Xena matrices; STAR files name their genes themselves."
            raise ValueError(msg)
        value = "unstranded" if value is None else value
        if value not in STAR_VALUES:
            msg = f"value must be one of {list(STAR_VALUES)}, not {value!r}."
            raise ValueError(msg)
        if sample_sheet is None:
            msg = (
                "GDC STAR files are named by UUID: pass the sample sheet of the same GDC cart "
                "(sample_sheet='gdc_sample_sheet.<date>.tsv') to know each file's sample."
            )
            raise ValueError(msg)
        sheet, sheet_name = _read_sample_sheet(sample_sheet)
        files, sample_ids, sheet_obs = _match_sheet(
            files, sheet, sheet_name, missing, from_directory
        )
        header, file_project = None, None
        source = f"{len(files)} STAR files" if len(files) > 1 else files[0].name
    else:
        if value is not None:
            msg = f"value= picks a column of GDC STAR files; {files[0].name} is a Xena matrix."
            raise ValueError(msg)
        if sample_sheet is not None:
            msg = (
                "sample_sheet= maps GDC STAR files to samples; a Xena matrix names its "
                "samples in its header."
            )
            raise ValueError(msg)
        header = _matrix_header(files[0])
        sample_ids, sheet_obs = header["samples"], None
        found = re.match(r"^((?:TCGA|TARGET)-[A-Za-z0-9]+)\.", files[0].name)
        file_project = found.group(1) if found else None
        source = files[0].name

    clinical_rows, clinical_info = None, {}
    if clinical is not None:
        table, name = read_table(clinical, "clinical")
        clinical_rows, clinical_info, sample_ids = _join_clinical(
            sample_ids, table, name, id_column, missing
        )
        if kind == "star":
            keep = set(sample_ids)
            pairs = [(f, s) for f, s in zip(files, sheet_obs.index) if s in keep]
            files = [f for f, _ in pairs]
            sheet_obs = sheet_obs.loc[[s for _, s in pairs]]
    if not sample_ids:
        msg = "No sample is left to read."
        raise ValueError(msg)

    if kind == "star":
        var, X, integer, largest, model, counters = _read_star_files(files, value, dtype)
        values = "counts" if integer else "continuous"
        warn_float32_counts(integer, largest, dtype, source)
        var, X = _filter_genes(var, X, genes, source)
    else:
        var, X = _read_xena(files[0], header, sample_ids, probemap, genes, dtype)
        model, counters, values = None, None, "log2(x+1)"
        if unlog:
            if np.nanmin(X, initial=0.0) < 0:
                msg = (
                    f"{source} has negative values, so it is not log2(x + 1) (Xena's TOIL "
                    "matrices, for one, are log2(x + 0.001)); unlog=True would be wrong."
                )
                raise ValueError(msg)
            X = (np.exp2(X, dtype=np.float64) - 1).astype(dtype)
            values = "unlogged (2**x - 1)"

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
        if var[key].duplicated().any():
            twice = var[key][var[key].duplicated()].unique().tolist()
            logger.warning(
                "%s lists %d genes more than once (%s); they are made unique with -1, -2.",
                source,
                len(twice),
                shown(twice, 3),
            )
        var.index = unique_names(var[key].astype(str))

    obs = _obs(sample_ids, sheet_obs, clinical_rows, clinical_info, project, file_project)
    if counters is not None:
        counters.index = obs.index
        obs = add_columns(obs, counters, "_star")
    obs = text_to_categoricals(obs)
    adata = ad.AnnData(X=X, obs=obs, var=var)
    reader = {
        "reader": "read_tcga",
        "format": "gdc_star" if kind == "star" else "xena_matrix",
        "expression": source,
        "values": values,
    }
    if kind == "star":
        reader["column"] = value
    if model is not None:
        reader["gene_model"] = model
    if clinical_info:
        reader["clinical"] = clinical_info["name"]
        reader["clinical_columns"] = dict(clinical_info["sources"])
    adata.uns["sgs_reader"] = reader
    logger.info(
        "Read %d samples x %d genes from %s (%s).", adata.n_obs, adata.n_vars, source, values
    )
    return adata


# -- which files -------------------------------------------------------------------------------
def _is_star(path: Path) -> bool:
    lines = head_lines(path, compression_of(path), 2)
    if not lines:
        return False
    header = lines[1] if lines and lines[0].startswith("#") and len(lines) > 1 else lines[0]
    return header.split("\t")[:1] == ["gene_id"] and "unstranded" in header.split("\t")


def _expression_files(expression) -> tuple[str, list[Path], bool]:
    """('star', files, from a directory) or ('matrix', [file], False)."""
    if isinstance(expression, str | PathLike):
        path = Path(expression)
        if path.is_dir():
            files = sorted(p for p in path.rglob(_STAR_GLOB) if p.is_file())
            if not files:
                msg = (
                    f"No GDC STAR gene-count file ({_STAR_GLOB}) under {str(path)!r}. Unpack the "
                    "GDC download first, or pass the files (or a Xena matrix) themselves."
                )
                raise ValueError(msg)
            return "star", files, True
        path = as_file(path, "expression file")
        lines = head_lines(path, compression_of(path), 1)
        if not lines or not lines[0].strip():
            msg = f"The expression file {path.name} is empty."
            raise FormatError(msg)
        return ("star" if _is_star(path) else "matrix"), [path], False
    files = [as_file(p, "STAR gene-count file") for p in expression]
    if not files:
        msg = "expression is an empty list; pass STAR gene-count files or a directory."
        raise ValueError(msg)
    not_star = [p.name for p in files if not _is_star(p)]
    if not_star:
        msg = (
            f"A list of files must be GDC STAR gene-count files (header 'gene_id\\tgene_name"
            f"\\tgene_type\\tunstranded...'); {shown(not_star)} are not. Pass a Xena matrix "
            "on its own."
        )
        raise FormatError(msg)
    return "star", files, False


# -- GDC sample sheet and STAR files -----------------------------------------------------------
def _read_sample_sheet(source: TableLike) -> tuple[pd.DataFrame, str]:
    table, name = read_table(source, "GDC sample sheet")
    require_columns(
        table,
        ["File Name", "Sample ID"],
        name,
        "GDC sample sheet",
        "Download it from the GDC cart ('Sample Sheet'); it is tab-separated.",
    )
    for column in ("File ID", "File Name", "Sample ID", "Project ID", "Case ID", "Sample Type"):
        if column in table.columns:
            table[column] = text_ids(table[column])
    return table, name


def _match_sheet(
    files: list[Path], sheet: pd.DataFrame, sheet_name: str, missing: str, from_directory: bool
) -> tuple[list[Path], list[str], pd.DataFrame]:
    """Each file's sample-sheet row: files (in order), sample ids, sheet covariates."""
    by_name: dict[str, list[int]] = {}
    for i, file_name in enumerate(sheet["File Name"]):
        by_name.setdefault(str(file_name), []).append(i)
    by_id: dict[str, list[int]] = {}
    if "File ID" in sheet.columns:
        for i, file_id in enumerate(sheet["File ID"]):
            by_id.setdefault(str(file_id), []).append(i)
    rows: list[int | None] = []
    for path in files:
        stem = path.name[:-3] if path.name.endswith(".gz") else path.name
        hits = by_name.get(path.name) or by_name.get(stem) or by_id.get(path.parent.name) or []
        if len(hits) > 1:
            msg = (
                f"{sheet_name} lists {path.name} on {len(hits)} rows; each file must be listed "
                "once."
            )
            raise ValueError(msg)
        rows.append(hits[0] if hits else None)
    absent = [p.name for p, r in zip(files, rows) if r is None]
    if absent and len(absent) == len(files):
        msg = (
            f"None of the {len(files)} STAR files is in {sheet_name} (matched on 'File Name', "
            "or on 'File ID' as the folder name): is it the sample sheet of the same cart?"
            + no_overlap_hint([p.name for p in files], sheet["File Name"].astype(str).tolist())
        )
        raise ValueError(msg)
    resolve_missing(absent, len(files), missing, sheet_name, noun="STAR files")
    if missing == "drop":
        files, rows = (
            [f for f, r in zip(files, rows) if r is not None],
            [r for r in rows if r is not None],
        )
    if from_directory:  # sample-sheet order; files without a row last
        order = sorted(range(len(files)), key=lambda k: (rows[k] is None, rows[k] or 0))
        files, rows = [files[k] for k in order], [rows[k] for k in order]

    sample_ids, covariates = [], []
    for path, row in zip(files, rows):
        if row is None:
            sample_ids.append(path.name)
            covariates.append({})
            continue
        record = sheet.iloc[row]
        sample = record["Sample ID"]
        if pd.isna(sample) or not str(sample):
            msg = f"{sheet_name} gives no Sample ID for {path.name}."
            raise ValueError(msg)
        if "," in sample:
            msg = (
                f"{sheet_name} lists {path.name} with several samples ({sample}); a STAR "
                "gene-count file holds one sample. Is the sheet of another data type?"
            )
            raise ValueError(msg)
        sample_ids.append(sample)
        covariates.append(
            {
                "project": record.get("Project ID", np.nan),
                "sample_type": record.get("Sample Type", np.nan),
            }
        )
    counts = pd.Series(sample_ids).value_counts()
    twice = counts[counts > 1].index.tolist()
    if twice:
        names = [
            f"{s}: {', '.join(p.name for p, t in zip(files, sample_ids) if t == s)}"
            for s in twice[:3]
        ]
        msg = (
            f"{len(twice)} sample(s) have more than one STAR file ({'; '.join(names)}). "
            "Keep one file per sample (e.g. remove the other aliquots' rows from the "
            "sample sheet, or pass a list of files)."
        )
        raise ValueError(msg)
    sheet_obs = pd.DataFrame(covariates, index=pd.Index(sample_ids))
    for column in ("project", "sample_type"):
        if column not in sheet_obs.columns:
            sheet_obs[column] = np.nan
    return files, sample_ids, sheet_obs


def _read_star(path: Path, value: str, first: bool) -> tuple[str | None, pd.DataFrame]:
    compression = compression_of(path)
    lines = head_lines(path, compression, 2)
    skip = 1 if lines and lines[0].startswith("#") else 0
    model = None
    if skip:
        found = re.match(r"#\s*gene-model:\s*(.+)$", lines[0].strip())
        model = found.group(1).strip() if found else None
    header = lines[skip].split("\t") if len(lines) > skip else []
    needed = ["gene_id", "gene_name", "gene_type", value] if first else ["gene_id", value]
    absent = [c for c in needed if c not in header]
    if absent:
        msg = (
            f"{path.name} is not a GDC STAR gene-count file with column(s) {shown(absent)}; "
            f"its header is {shown(header, 10)}."
        )
        raise FormatError(msg)
    try:
        frame = pd.read_csv(
            path,
            sep="\t",
            compression=compression,
            skiprows=skip,
            usecols=needed,
            dtype={c: str for c in needed[:-1]} | {value: np.float64},
            keep_default_na=False,
            na_values={value: ["", "NA"]},
            quoting=3,
        )
    except ValueError as err:
        msg = f"{path.name}: could not read the {value!r} values as numbers ({err})."
        raise ValueError(msg) from err
    return model, frame


def _read_star_files(
    files: list[Path], value: str, dtype: np.dtype
) -> tuple[pd.DataFrame, np.ndarray, bool, float, str | None, pd.DataFrame]:
    """Read STAR files into samples x genes; check they share one gene model and gene list."""
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with lightning
        tqdm = None
    models: dict[str, str | None] = {}
    var, X, gene_ids = None, None, None
    counter_rows, integer, largest = [], True, 0.0
    iterator = files
    if tqdm is not None and len(files) > 50:
        iterator = tqdm(files, desc="Reading STAR files", unit="file")
    for i, path in enumerate(iterator):
        model, frame = _read_star(path, value, first=i == 0)
        models[path.name] = model
        is_counter = frame["gene_id"].str.startswith("N_").to_numpy()
        counter_rows.append(dict(zip(frame["gene_id"][is_counter], frame[value][is_counter])))
        frame = frame.loc[~is_counter]
        ids = frame["gene_id"].to_numpy()
        values = frame[value].to_numpy(dtype=np.float64)
        if i == 0:
            gene_ids = ids
            var = pd.DataFrame(
                {
                    "gene_id": ids,
                    "gene_symbol": frame["gene_name"].to_numpy(),
                    "gene_type": frame["gene_type"].to_numpy(),
                }
            )
            X = np.empty((len(files), len(ids)), dtype=dtype)
            known = model
        else:
            if model is not None and known is not None and model != known:
                msg = (
                    f"The STAR files have different gene models: {files[0].name} is "
                    f"{known!r}, {path.name} is {model!r}. Read the files of each gene model "
                    "separately."
                )
                raise ValueError(msg)
            known = known if known is not None else model
            if not np.array_equal(ids, gene_ids):
                order = pd.Index(ids).get_indexer(gene_ids)
                if len(ids) != len(gene_ids) or (order < 0).any():
                    only_here = sorted(set(ids) - set(gene_ids))
                    only_first = sorted(set(gene_ids) - set(ids))
                    msg = (
                        f"{path.name} does not have the genes of {files[0].name} "
                        f"({len(only_here)} only in the former, e.g. {shown(only_here, 3)}; "
                        f"{len(only_first)} only in the latter, e.g. {shown(only_first, 3)}). "
                        "Are they of different gene models (GENCODE versions)?"
                    )
                    raise ValueError(msg)
                values = values[order]
        largest = max(largest, float(np.nanmax(np.abs(values), initial=0.0)))
        integer = integer and is_counts(values)
        X[i] = values
    counters = pd.DataFrame(counter_rows)
    if value not in _STAR_COUNTS or counters.empty:
        counters = None
    return var, X, integer, largest, known, counters


def _filter_genes(
    var: pd.DataFrame, X: np.ndarray, genes: Sequence[str] | None, source: str
) -> tuple[pd.DataFrame, np.ndarray]:
    if genes is None:
        return var, X
    wanted, match = gene_matcher(genes)
    symbols = var["gene_symbol"] if "gene_symbol" in var.columns else [None] * len(var)
    hits = [match(g, s) for g, s in zip(var["gene_id"], symbols)]
    report_genes(wanted, {h for h in hits if h is not None}, source)
    keep = np.array([h is not None for h in hits], dtype=bool)
    return var.loc[keep].reset_index(drop=True), X[:, keep]


# -- Xena matrices -----------------------------------------------------------------------------
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


def _read_xena(
    path: Path,
    header: dict,
    sample_ids: list[str],
    probemap: TableLike | None,
    genes: Sequence[str] | None,
    dtype: np.dtype,
) -> tuple[pd.DataFrame, np.ndarray]:
    symbols: dict[str, str] = {}
    map_table = None
    if probemap is not None:
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
    match, wanted, found = None, None, set()
    if genes is not None:
        wanted, match = gene_matcher(genes)
    counters: list[str] = []

    def keep_rows(chunk: pd.DataFrame) -> np.ndarray:
        ids = chunk[_GENE].str.strip()
        special = ids.str.startswith("__") | ids.str.match(r"^N_[A-Za-z]+$")
        counters.extend(ids[special])
        keep = ~special.to_numpy()
        if match is not None:
            hits = [
                match(g, symbols.get(g, symbols.get(unversioned(g)))) if k else None
                for g, k in zip(ids, keep)
            ]
            found.update(h for h in hits if h is not None)
            keep &= np.array([h is not None for h in hits], dtype=bool)
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
        report_genes(wanted, found, path.name)
    gene = ids[_GENE].str.strip().to_numpy()
    ensembl = np.array([bool(_ENSEMBL.match(g)) for g in gene])
    if len(gene) and ensembl.mean() > 0.5:
        var = pd.DataFrame({"gene_id": gene})
        if map_table is not None:
            key = [g if g in map_table.index else unversioned(g) for g in gene]
            mapped = map_table.reindex(key).reset_index(drop=True)
            absent = int(mapped["gene"].isna().sum())
            if absent:
                logger.warning("%d genes of %s are not in the probe map.", absent, path.name)
            var["gene_symbol"] = mapped["gene"].to_numpy()
            var = pd.concat([var, mapped.drop(columns=["gene"])], axis=1)
    else:
        var = pd.DataFrame({"gene_symbol": gene})
    return var, X


# -- clinical tables ---------------------------------------------------------------------------
def _parse_barcode(barcode: str) -> tuple[str | None, str | None]:
    """(patient barcode, sample-type code) of a TCGA/TARGET barcode, None where absent."""
    found = _BARCODE.match(str(barcode))
    if not found:
        return None, None
    return found.group(1), found.group(2)


def _short_sample(barcode: str) -> str | None:
    patient, code = _parse_barcode(barcode)
    return None if code is None else f"{patient}-{code}"


def _join_clinical(
    sample_ids: list[str], table: pd.DataFrame, name: str, id_column: str | None, missing: str
) -> tuple[pd.DataFrame, dict, list[str]]:
    """Clinical rows aligned to the samples, what was used, and the samples kept."""
    if id_column is not None:
        require_columns(table, [id_column], name, "clinical table (id_column)")
        key = id_column
    else:
        key = first_column(table, _SAMPLE_ID_COLUMNS) or first_column(table, _CASE_ID_COLUMNS)
        if key is None:
            msg = (
                f"{name} has no sample or case id column: expected one of "
                f"{list(_SAMPLE_ID_COLUMNS + _CASE_ID_COLUMNS)}; its columns are "
                f"{shown(list(table.columns), 12)}. Pass id_column= to name it."
            )
            raise ValueError(msg)
    table = table.copy()
    table[key] = text_ids(table[key])
    table = table.dropna(subset=[key])
    parsed = [_parse_barcode(i) for i in table[key]]
    per_sample = sum(code is not None for _, code in parsed) > len(parsed) / 2
    table = _collapse(table, key, name)

    if per_sample:
        short: dict[str, str | None] = {}
        for i in table.index:
            s = _short_sample(i)
            if s is not None:
                short[s] = i if s not in short else None  # None: ambiguous
        keys = [s if s in table.index else short.get(_short_sample(s) or "") for s in sample_ids]
    else:
        keys = [_parse_barcode(s)[0] for s in sample_ids]
        keys = [k if k in table.index else None for k in keys]
    absent = [s for s, k in zip(sample_ids, keys) if k is None]
    level = "sample" if per_sample else "case"
    if absent and len(absent) == len(sample_ids):
        msg = (
            f"None of the {len(sample_ids)} expression samples is in {name} (joined by "
            f"{level} on column {key!r})." + no_overlap_hint(sample_ids, table.index.tolist())
        )
        raise ValueError(msg)
    resolve_missing(absent, len(sample_ids), missing, f"{name} (column {key!r})")
    if missing == "drop" and absent:
        kept = [(s, k) for s, k in zip(sample_ids, keys) if k is not None]
        sample_ids, keys = [s for s, _ in kept], [k for _, k in kept]
    rows = table.reindex(pd.Index(keys, dtype=object))
    rows.index = pd.Index(sample_ids)
    empty = [c for c in rows.columns if table[c].isna().all()]
    if empty:
        logger.info("%d columns of %s are empty and were left out.", len(empty), name)
    rows = rows.drop(columns=empty)
    return rows, {"name": name, "key": key, "level": level}, sample_ids


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


def _gender(values: pd.Series) -> np.ndarray:
    def norm(v):
        if pd.isna(v):
            return np.nan
        text = str(v).strip().lower()
        return np.nan if text in _GENDER_MISSING else text

    return values.map(norm).to_numpy(dtype=object)


def _age(table: pd.DataFrame, name: str) -> tuple[np.ndarray, list[str]]:
    """Age in years: per sample, the first of :data:`_AGE_COLUMNS` that has a value."""
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
                name,
                column,
                shown(odd, 3),
            )
        fill = np.isnan(age) & numbers.notna().to_numpy()
        if fill.any():
            age[fill] = numbers.to_numpy(dtype=float)[fill] * factor
            used.append(column)
    return age, used


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


def _obs(
    sample_ids: list[str],
    sheet_obs: pd.DataFrame | None,
    clinical: pd.DataFrame | None,
    info: dict,
    project: str | None,
    file_project: str | None,
) -> pd.DataFrame:
    index = pd.Index(sample_ids)
    n = len(index)
    parsed = [_parse_barcode(s) for s in sample_ids]
    unparsed = [s for s, (p, _) in zip(sample_ids, parsed) if p is None]
    if unparsed:
        logger.warning(
            "%d sample id(s) are not TCGA barcodes (%s): no patient or sample-type code for them.",
            len(unparsed),
            shown(unparsed, 3),
        )
    codes = [c for _, c in parsed]
    sources: dict[str, str] = {}
    used: list[str] = []

    def from_sources(column: str, candidates: Sequence[str]) -> pd.Series:
        out = pd.Series([np.nan] * n, index=index, dtype=object)
        if sheet_obs is not None:
            out = out.fillna(sheet_obs[column].reindex(index))
        if clinical is not None:
            found = first_column(clinical, candidates)
            if found is not None:
                sources[column] = found
                used.append(found)
                out = out.fillna(clinical[found].map(lambda v: v if pd.isna(v) else str(v)))
        return out

    proj = from_sources("project", _PROJECT_COLUMNS)
    if project is not None:
        proj[:] = project
    elif file_project is not None:
        proj = proj.fillna(file_project)
    sample_type = from_sources("sample_type", _SAMPLE_TYPE_COLUMNS)
    sample_type = sample_type.fillna(
        pd.Series([SAMPLE_TYPES.get(c, np.nan) for c in codes], index=index, dtype=object)
    )

    obs = pd.DataFrame(index=index)
    obs["project"] = categorical(proj.to_numpy())
    obs["sample_type"] = categorical(sample_type.to_numpy())
    obs["sample_type_code"] = categorical([np.nan if c is None else c for c in codes])
    obs["cancer"] = categorical([_cancer(c) for c in codes])
    obs["patient_id"] = categorical([np.nan if p is None else p for p, _ in parsed])
    age, gender = np.full(n, np.nan), np.full(n, np.nan, dtype=object)
    if clinical is not None:
        age, age_columns = _age(clinical, info["name"])
        if age_columns:
            sources["age"] = ", ".join(age_columns)
            used.extend(age_columns)
        gender_column = first_column(clinical, _GENDER_COLUMNS)
        if gender_column is not None:
            gender = _gender(clinical[gender_column])
            sources["gender"] = gender_column
            used.append(gender_column)
    obs["age"] = age
    obs["gender"] = categorical(gender)
    if clinical is not None:
        info["sources"] = sources
        obs = add_columns(obs, clinical.drop(columns=list(dict.fromkeys(used))), "_clinical")
    obs.index = index
    return obs
