"""Reader of GDC STAR gene-count files, with the GDC sample sheet of the same cart."""

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
from ._utils import (
    READER_DOCS,
    TSV_AS_IS,
    FormatError,
    GeneFilter,
    Missing,
    TableLike,
    as_file,
    compression_of,
    head_lines,
    is_counts,
    no_overlap_hint,
    read_table,
    require_columns,
    resolve_missing,
    shown,
    text_ids,
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


@doc_params(**READER_DOCS, **TCGA_DOCS)
def read_tcga_star(
    expression: str | PathLike | Sequence[str | PathLike],
    clinical: TableLike | None = None,
    *,
    sample_sheet: TableLike,
    value: str = "unstranded",
    project: str | None = None,
    genes: Sequence[str] | None = None,
    var_names: Literal["gene_id", "gene_symbol"] = "gene_id",
    id_column: str | None = None,
    missing: Missing = "raise",
    dtype: str | np.dtype = "float32",
) -> ad.AnnData:
    r"""Read GDC STAR gene counts, with their sample sheet and clinical covariates.

    {star_files}

    Compression (gzip, bz2, xz) is recognised from the files' first bytes. To read a file
    without knowing whether it is a STAR file or a Xena matrix, use :func:`read_tcga`.

    Parameters
    ----------
    expression
        A directory of GDC STAR files, a list of them, or one.
    {clinical}
    {sample_sheet}
    {value}
    {project}
    {genes}
    {var_names}
    {id_column}
    {missing}
        A STAR file absent from the sample sheet (kept with ``"keep"``) is named by its file.
    {dtype}

    Returns
    -------
    AnnData of samples x genes (in sample-sheet order for a directory, in the given order for
    a list), ``obs_names`` the sample barcodes. ``X`` holds the values unchanged (counts stay
    integer-valued, for :func:`scgensynth.pp.detect_scaling`); ``uns["sgs_reader"]`` records
    the format, the values (``"counts"`` or ``"continuous"``), the column, the gene model and
    which clinical columns the covariates came from.

    {obs}
    ``var``: ``gene_id``, ``gene_symbol`` and ``gene_type``.

    Raises
    ------
    ValueError
        A file that is not a STAR file, a sample sheet or clinical table without its required
        columns, STAR files of different gene models or genes, a sample with several files,
        or samples absent from a table with ``missing="raise"``.

    See Also
    --------
    read_tcga : Reads STAR files or a Xena matrix, whichever it is given.
    read_tcga_xena : Reads a UCSC Xena matrix.

    Examples
    --------
    One folder per file, as a GDC cart unpacks, and the cart's sample sheet:

    >>> import tempfile, pathlib
    >>> import scgensynth as sgs
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> columns = "gene_id\tgene_name\tgene_type\tunstranded\tstranded_first\tstranded_second"
    >>> columns += "\ttpm_unstranded\tfpkm_unstranded\tfpkm_uq_unstranded\n"
    >>> for uuid, counts in [("9d0e8f7a", (2858, 10)), ("47e1b2c3", (1402, 0))]:
    ...     (folder / uuid).mkdir()
    ...     _ = (folder / uuid / f"{uuid}.rna_seq.augmented_star_gene_counts.tsv").write_text(
    ...         "# gene-model: GENCODE v36\n" + columns
    ...         + "N_unmapped\t\t\t2474958\t2474958\t2474958\t\t\t\n"
    ...         + f"ENSG00000000003.15\tTSPAN6\tprotein_coding\t{counts[0]}\t0\t0\t40\t12\t13\n"
    ...         + f"ENSG00000000005.6\tTNMD\tprotein_coding\t{counts[1]}\t0\t0\t0.4\t0.1\t0.1\n"
    ...     )
    >>> _ = (folder / "gdc_sample_sheet.tsv").write_text(
    ...     "File Name\tProject ID\tSample ID\tSample Type\n"
    ...     "9d0e8f7a.rna_seq.augmented_star_gene_counts.tsv\tTCGA-LUSC\tTCGA-18-3406-01A\t"
    ...     "Primary Tumor\n"
    ...     "47e1b2c3.rna_seq.augmented_star_gene_counts.tsv\tTCGA-LUSC\tTCGA-18-3406-11A\t"
    ...     "Solid Tissue Normal\n"
    ... )
    >>> adata = sgs.io.read_tcga_star(folder, sample_sheet=folder / "gdc_sample_sheet.tsv")
    >>> adata.to_df()
                      ENSG00000000003.15  ENSG00000000005.6
    TCGA-18-3406-01A              2858.0               10.0
    TCGA-18-3406-11A              1402.0                0.0
    >>> adata.obs[["cancer", "patient_id", "N_unmapped"]]
                      cancer    patient_id  N_unmapped
    TCGA-18-3406-01A  tumour  TCGA-18-3406   2474958.0
    TCGA-18-3406-11A  normal  TCGA-18-3406   2474958.0
    """
    options = TcgaOptions.checked(
        "read_tcga_star", project, genes, var_names, id_column, missing, dtype
    )
    files, from_directory = star_files(expression)
    return read_star(files, from_directory, clinical, sample_sheet, value, options)


def read_star(
    files: list[Path],
    from_directory: bool,
    clinical: TableLike | None,
    sample_sheet: TableLike | None,
    value: str,
    options: TcgaOptions,
) -> ad.AnnData:
    """:func:`read_tcga_star` once the files are known and the common options checked."""
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
    files, sheet_obs = _match_sheet(files, sheet, sheet_name, options.missing, from_directory)
    source = f"{len(files)} STAR files" if len(files) > 1 else files[0].name
    sample_ids, joined = join_clinical(list(sheet_obs.index), clinical, options)
    if joined is not None:
        keep = set(sample_ids)
        files = [f for f, s in zip(files, sheet_obs.index) if s in keep]
        sheet_obs = sheet_obs.loc[[s for s in sheet_obs.index if s in keep]]

    var, X, integer, largest, model, counters = _read_star_files(files, value, options.dtype)
    warn_float32_counts(integer, largest, options.dtype, source)
    if options.genes is not None:
        wanted = GeneFilter(options.genes)
        keep_genes = wanted.keep(var["gene_id"], var["gene_symbol"])
        wanted.report(source)
        var, X = var.loc[keep_genes].reset_index(drop=True), X[:, keep_genes]
    values = "counts" if integer else "continuous"
    record = {"format": "gdc_star", "expression": source, "values": values, "column": value}
    if model is not None:
        record["gene_model"] = model
    return tcga_anndata(
        X,
        var,
        sample_ids,
        record,
        options,
        clinical=joined,
        sheet_obs=sheet_obs,
        counters=counters,
    )


# -- which files -------------------------------------------------------------------------------
def is_star_file(path: Path) -> bool:
    """Whether a file's header (after a ``#`` comment line) is a GDC STAR gene-count header."""
    lines = head_lines(path, compression_of(path), 2)
    if not lines:
        return False
    header = lines[1] if lines and lines[0].startswith("#") and len(lines) > 1 else lines[0]
    return header.split("\t")[:1] == ["gene_id"] and "unstranded" in header.split("\t")


def star_files(expression) -> tuple[list[Path], bool]:
    """The STAR files of a directory (searched recursively), a list or one file.

    Returns
    -------
    The files, and whether they came from a directory.
    """
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
            return files, True
        path = as_file(path, "STAR gene-count file")
        if not is_star_file(path):
            msg = (
                f"{path.name} is not a GDC STAR gene-count file (header 'gene_id\\tgene_name"
                "\\tgene_type\\tunstranded...'); read a Xena matrix with read_tcga_xena."
            )
            raise FormatError(msg)
        return [path], False
    files = [as_file(p, "STAR gene-count file") for p in expression]
    if not files:
        msg = "expression is an empty list; pass STAR gene-count files or a directory."
        raise ValueError(msg)
    not_star = [p.name for p in files if not is_star_file(p)]
    if not_star:
        msg = (
            f"A list of files must be GDC STAR gene-count files (header 'gene_id\\tgene_name"
            f"\\tgene_type\\tunstranded...'); {shown(not_star)} are not. Pass a Xena matrix "
            "on its own."
        )
        raise FormatError(msg)
    return files, False


# -- the GDC sample sheet ----------------------------------------------------------------------
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
) -> tuple[list[Path], pd.DataFrame]:
    """The files kept (in order) and their sample-sheet covariates, indexed by sample id."""
    rows = _sheet_rows(files, sheet, sheet_name)
    absent = [p.name for p, r in zip(files, rows) if r is None]
    none_found = (
        f"None of the {len(files)} STAR files is in {sheet_name} (matched on 'File Name', "
        "or on 'File ID' as the folder name): is it the sample sheet of the same cart?"
        + no_overlap_hint([p.name for p in files], sheet["File Name"].astype(str).tolist())
    )
    resolve_missing(
        absent, len(files), missing, sheet_name, noun="STAR files", none_found=none_found
    )
    if missing == "drop":
        files, rows = (
            [f for f, r in zip(files, rows) if r is not None],
            [r for r in rows if r is not None],
        )
    if from_directory:  # sample-sheet order; files without a row last
        order = sorted(range(len(files)), key=lambda k: (rows[k] is None, rows[k] or 0))
        files, rows = [files[k] for k in order], [rows[k] for k in order]
    covariates = [_sheet_covariates(p, r, sheet, sheet_name) for p, r in zip(files, rows)]
    sheet_obs = pd.DataFrame(covariates, columns=["sample", "project", "sample_type"])
    _one_file_per_sample(files, sheet_obs["sample"].tolist())
    return files, sheet_obs.set_index("sample").rename_axis(None)


def _sheet_rows(files: list[Path], sheet: pd.DataFrame, sheet_name: str) -> list[int | None]:
    """Each file's row of the sample sheet, by file name (with or without .gz) or File ID."""
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
    return rows


def _sheet_covariates(path: Path, row: int | None, sheet: pd.DataFrame, sheet_name: str) -> dict:
    """A file's sample id, project and sample type (the file's name for a file without row)."""
    if row is None:
        return {"sample": path.name}
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
    return {
        "sample": sample,
        "project": record.get("Project ID", np.nan),
        "sample_type": record.get("Sample Type", np.nan),
    }


def _one_file_per_sample(files: list[Path], sample_ids: list[str]) -> None:
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


# -- STAR files --------------------------------------------------------------------------------
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
            **TSV_AS_IS,
            compression=compression,
            skiprows=skip,
            usecols=needed,
            dtype={c: str for c in needed[:-1]} | {value: np.float64},
            na_values={value: ["", "NA"]},
        )
    except ValueError as err:
        msg = f"{path.name}: could not read the {value!r} values as numbers ({err})."
        raise ValueError(msg) from err
    return model, frame


def _read_star_files(
    files: list[Path], value: str, dtype: np.dtype
) -> tuple[pd.DataFrame, np.ndarray, bool, float, str | None, pd.DataFrame | None]:
    """Read STAR files into samples x genes; check they share one gene model and gene list.

    Returns
    -------
    ``var``, ``X``, whether all values are counts, the largest value, the gene model, and
    the ``N_*`` counter rows (None unless ``value`` is a count column).
    """
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with lightning
        tqdm = None
    var, X, known = None, None, None
    counter_rows, integer, largest = [], True, 0.0
    iterator = files
    if tqdm is not None and len(files) > 50:
        iterator = tqdm(files, desc="Reading STAR files", unit="file")
    for i, path in enumerate(iterator):
        model, frame = _read_star(path, value, first=i == 0)
        is_counter = frame["gene_id"].str.startswith("N_").to_numpy()
        counter_rows.append(dict(zip(frame["gene_id"][is_counter], frame[value][is_counter])))
        frame = frame.loc[~is_counter]
        if i == 0:
            var = frame[["gene_id", "gene_name", "gene_type"]].reset_index(drop=True)
            var = var.rename(columns={"gene_name": "gene_symbol"})
            X = np.empty((len(files), len(var)), dtype=dtype)
        else:
            _same_model(known, model, files[0], path)
        known = known if known is not None else model
        values = _gene_values(frame, value, var["gene_id"].to_numpy(), files[0], path)
        largest = max(largest, float(np.nanmax(np.abs(values), initial=0.0)))
        integer = integer and is_counts(values)
        X[i] = values
    counters = pd.DataFrame(counter_rows)
    if value not in _STAR_COUNTS or counters.empty:
        counters = None
    return var, X, integer, largest, known, counters


def _same_model(known: str | None, model: str | None, first: Path, path: Path) -> None:
    if model is not None and known is not None and model != known:
        msg = (
            f"The STAR files have different gene models: {first.name} is {known!r}, "
            f"{path.name} is {model!r}. Read the files of each gene model separately."
        )
        raise ValueError(msg)


def _gene_values(
    frame: pd.DataFrame, value: str, gene_ids: np.ndarray, first: Path, path: Path
) -> np.ndarray:
    """A STAR file's values in the first file's gene order (an error if its genes differ)."""
    ids = frame["gene_id"].to_numpy()
    values = frame[value].to_numpy(dtype=np.float64)
    if np.array_equal(ids, gene_ids):
        return values
    order = pd.Index(ids).get_indexer(gene_ids)
    if len(ids) != len(gene_ids) or (order < 0).any():
        only_here = sorted(set(ids) - set(gene_ids))
        only_first = sorted(set(gene_ids) - set(ids))
        msg = (
            f"{path.name} does not have the genes of {first.name} "
            f"({len(only_here)} only in the former, e.g. {shown(only_here, 3)}; "
            f"{len(only_first)} only in the latter, e.g. {shown(only_first, 3)}). "
            "Are they of different gene models (GENCODE versions)?"
        )
        raise ValueError(msg)
    return values[order]
