"""Shared helpers of the GTEx/TCGA readers: (compressed) text, tables, matrices, id joins."""

from __future__ import annotations

import bz2
import csv
import gzip
import logging
import lzma
import re
from collections.abc import Callable, Iterable, Sequence
from os import PathLike
from pathlib import Path
from typing import IO, Literal

import anndata as ad
import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

#: what the readers accept for a table: a file or an already loaded DataFrame
TableLike = str | PathLike | pd.DataFrame
Missing = Literal["raise", "drop", "keep"]

#: markers of a missing value in GDC / Xena / TCGA tables, besides pandas' defaults
#: ("", "NA", "NaN", "null", ...); "'--" is how the GDC portal writes an empty field
NA_VALUES = [
    "'--",
    "--",
    "[Not Available]",
    "[Not Applicable]",
    "[Not Evaluated]",
    "[Not Reported]",
    "[Unknown]",
    "[Discrepancy]",
]

_OPENERS = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}

#: largest integer a float32 holds exactly
FLOAT32_EXACT = 2**24

#: pandas.read_csv options for the readers' tab-separated data files: fields taken as they are
#: (csv.QUOTE_NONE: GDC/GTEx fields are not quoted) and only the missing markers named
#: by each call (``na_values``) read as missing
TSV_AS_IS = {"sep": "\t", "quoting": csv.QUOTE_NONE, "keep_default_na": False}


#: docstring paragraphs that every expression reader shares (see ``_utils._docs.doc_params``)
READER_DOCS = {
    "genes": """
        genes
            Keep these genes: Ensembl ids with or without version (``ENSG00000223972``) or
            symbols. Requested genes that are absent are logged; none found is an error.
    """,
    "var_names": """
        var_names
            ``"gene_id"``: Ensembl ids as ``var_names`` (an id listed twice is made unique,
            with a warning); ``"gene_symbol"``: symbols, made unique as
            :meth:`anndata.AnnData.var_names_make_unique` does (``Y_RNA``, ``Y_RNA-1``, ...).
    """,
    "missing": """
        missing
            What to do with expression samples absent from an annotation table: ``"raise"``
            (default: a sample without annotations usually means that files of different
            projects or releases were mixed, which should not go unnoticed), ``"drop"`` them,
            or ``"keep"`` them with missing covariates.
    """,
    "dtype": """
        dtype
            ``"float32"`` (default) or ``"float64"``. Counts above 2**24 (16.8 million) are
            only exact in float64; a warning says when float32 rounds them.
    """,
}


class FormatError(ValueError):
    """A file that is not in the format its reader expects."""


def as_file(path: str | PathLike, what: str) -> Path:
    """``path`` as a :class:`~pathlib.Path` to an existing file, or a clear error."""
    path = Path(path)
    if not path.exists():
        msg = f"No {what} at {str(path)!r}."
        raise FileNotFoundError(msg)
    if path.is_dir():
        msg = f"The {what} {str(path)!r} is a directory; expected a file."
        raise ValueError(msg)
    return path


def compression_of(path: Path) -> str | None:
    """Compression of a file from its first bytes (not its name): gzip, bz2, xz or None."""
    with open(path, "rb") as handle:
        head = handle.read(6)
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh":
        return "bz2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:4] == b"PK\x03\x04":
        msg = f"{path.name} is a zip archive; unzip it and pass the file inside."
        raise ValueError(msg)
    if head[:5] == b"\x89HDF\r" or path.suffix == ".h5ad":
        msg = (
            f"{path.name} is an HDF5/h5ad file, not a text table; read it with anndata.read_h5ad."
        )
        raise ValueError(msg)
    return None


def open_text(path: Path, compression: str | None) -> IO[str]:
    """Open a (compressed) text file for reading."""
    if compression is None:
        return open(path, encoding="utf-8-sig", errors="replace", newline="")
    return _OPENERS[compression](path, "rt", encoding="utf-8-sig", errors="replace", newline="")


def head_lines(path: Path, compression: str | None, n: int) -> list[str]:
    """The first ``n`` lines of a text file, without their line ends."""
    lines = []
    try:
        with open_text(path, compression) as handle:
            for line in handle:
                lines.append(line.rstrip("\r\n"))
                if len(lines) == n:
                    break
    except (OSError, EOFError) as err:
        msg = f"Could not read {path.name} as {compression or 'plain'} text: {err}"
        raise ValueError(msg) from err
    return lines


def _looks_numeric(values: pd.Series) -> bool:
    """Whether every value of a column of strings is a number (but not an id like '0002190')."""
    if values.empty:
        return False
    if values.str.match(r"^[+-]?0\d").any():  # leading zeros: an identifier, keep as text
        return False
    return pd.to_numeric(values, errors="coerce").notna().all()


def read_table(source: TableLike, what: str) -> tuple[pd.DataFrame, str]:
    """Read a tab-separated table (any compression), or copy a DataFrame.

    Every column is read as text, then turned into numbers where all its values are numbers
    (identifiers with leading zeros such as UBERON codes stay text). Missing values: empty
    fields, pandas' defaults and :data:`NA_VALUES`. Column names are stripped of spaces.

    Returns
    -------
    The table and a name for it in messages.
    """
    if isinstance(source, pd.DataFrame):
        table = source.copy()
        table.columns = [str(c).strip() for c in table.columns]
        return table, f"the {what} table"
    path = as_file(source, what)
    name = path.name
    kwargs = {
        "sep": "\t",
        "dtype": str,
        "na_values": NA_VALUES,
        "keep_default_na": True,
        "compression": compression_of(path),
        "low_memory": False,
        "quoting": 3,  # csv.QUOTE_NONE: GDC/GTEx fields are not quoted, free text may hold '"'
    }
    try:
        table = pd.read_csv(path, encoding="utf-8-sig", **kwargs)
    except UnicodeDecodeError:
        table = pd.read_csv(path, encoding="latin-1", **kwargs)
    except pd.errors.EmptyDataError as err:
        msg = f"The {what} {name} is empty."
        raise ValueError(msg) from err
    table.columns = [str(c).strip() for c in table.columns]
    if table.shape[1] == 1 and "," in table.columns[0]:
        msg = (
            f"The {what} {name} has a single column {table.columns[0][:60]!r}: it looks "
            "comma-separated, but these tables are tab-separated."
        )
        raise ValueError(msg)
    for column in table.columns:
        values = table[column].dropna()
        if values.empty:
            table[column] = table[column].astype(float)
            continue
        stripped = values.str.strip()
        if _looks_numeric(stripped):
            table[column] = pd.to_numeric(table[column].str.strip())
    return table, name


def require_columns(
    table: pd.DataFrame, columns: Sequence[str], name: str, what: str, hint: str = ""
) -> None:
    """Raise a ValueError naming the columns ``table`` lacks and those it has."""
    absent = [c for c in columns if c not in table.columns]
    if absent:
        seen = list(table.columns)
        shown = ", ".join(map(repr, seen[:12])) + (", ..." if len(seen) > 12 else "")
        msg = (
            f"{name} has no column {', '.join(map(repr, absent))}, which a {what} needs; "
            f"its columns are [{shown}].{(' ' + hint) if hint else ''}"
        )
        raise ValueError(msg)


def text_ids(values: pd.Series) -> pd.Series:
    """Identifiers as stripped strings (NaN kept)."""
    return values.map(lambda v: v if pd.isna(v) else str(v).strip())


def first_column(table: pd.DataFrame, candidates: Iterable[str]) -> str | None:
    """The first of ``candidates`` that ``table`` has with at least one non-missing value."""
    for column in candidates:
        if column in table.columns and table[column].notna().any():
            return column
    return None


def shown(items: Sequence, n: int = 5) -> str:
    """A few items for a message: ``'a', 'b', 'c' (and 7 more)``."""
    items = list(items)
    text = ", ".join(repr(i) for i in items[:n])
    return text + (f" (and {len(items) - n} more)" if len(items) > n else "")


def resolve_missing(
    absent: Sequence[str],
    total: int,
    missing: Missing,
    where: str,
    noun: str = "samples",
    *,
    none_found: str,
) -> None:
    """Apply the ``missing`` policy to the ``absent`` ids (raise, or log what happens).

    When all ``total`` ids are absent, raise ``ValueError(none_found)`` whatever ``missing``
    says: nothing joined is a sign of the wrong table, not of a few missing rows.
    """
    if not absent:
        return
    if len(absent) == total:
        raise ValueError(none_found)
    count = f"{len(absent)} of the {total} {noun}"
    if missing == "raise":
        msg = (
            f"{count} in the expression data are not in {where}: {shown(absent)}. Check that "
            "the files belong to the same release, or pass missing='drop' to leave them out "
            "or missing='keep' to keep them with missing covariates."
        )
        raise ValueError(msg)
    action = "left out" if missing == "drop" else "kept with missing covariates"
    logger.warning("%s are not in %s (%s); %s.", count, where, shown(absent, 3), action)


def no_overlap_hint(ids: Sequence[str], table_ids: Sequence[str]) -> str:
    """A hint for when no id matches: what ids on each side look like."""
    return (
        f" Expression ids look like {shown(ids, 2)}; the table's look like {shown(table_ids, 2)}."
    )


def categorical(
    values, categories: Sequence | None = None, ordered: bool = False
) -> pd.Categorical:
    """A categorical of the values (missing stays missing), categories sorted unless given."""
    values = pd.Series(np.asarray(values, dtype=object))
    if categories is None:
        categories = sorted(values.dropna().unique(), key=str)
    return pd.Categorical(values, categories=categories, ordered=ordered)


def text_to_categoricals(frame: pd.DataFrame) -> pd.DataFrame:
    """Text (object/string) columns as categoricals, as anndata stores them in ``.h5ad``."""
    frame = frame.copy()
    for column in frame.columns:
        if pd.api.types.is_object_dtype(frame[column]) or pd.api.types.is_string_dtype(
            frame[column]
        ):
            if isinstance(frame[column].dtype, pd.CategoricalDtype):
                continue
            frame[column] = categorical(frame[column].map(_as_text))
    return frame


def _as_text(value):
    return value if pd.isna(value) else str(value)


def add_columns(obs: pd.DataFrame, extra: pd.DataFrame, suffix: str) -> pd.DataFrame:
    """Append ``extra``'s columns to ``obs``; a name ``obs`` already has gets ``suffix``."""
    extra = extra.rename(columns={c: f"{c}{suffix}" for c in extra.columns if c in obs.columns})
    extra.index = obs.index
    return pd.concat([obs, extra], axis=1)


def unique_names(names: Sequence[str]) -> pd.Index:
    """Names made unique as :meth:`anndata.AnnData.var_names_make_unique` does ('-1', '-2')."""
    return ad.utils.make_index_unique(pd.Index([str(n) for n in names]))


def gene_index(names: Sequence[str], where: str, noun: str = "genes") -> pd.Index:
    """Gene names as a unique index (:func:`unique_names`), logging the names listed twice."""
    names = pd.Index([str(n) for n in names])
    if names.has_duplicates:
        twice = names[names.duplicated()].unique().tolist()
        logger.warning(
            "%s lists %d %s more than once (%s); they are made unique with -1, -2.",
            where,
            len(twice),
            noun,
            shown(twice, 3),
        )
    return unique_names(names)


def unversioned(gene_id: str) -> str:
    """An Ensembl id without its version: 'ENSG00000223972.5' -> 'ENSG00000223972'.

    The '_PAR_Y' suffix of GENCODE's pseudo-autosomal copies is kept.
    """
    return re.sub(r"\.\d+(?=$|_PAR_Y$)", "", gene_id)


class GeneFilter:
    """Which rows of a gene table hold requested genes, and which requested genes were seen.

    A requested gene matches an Ensembl id with or without its version, or a symbol. Call
    :meth:`keep` on each block of rows, then :meth:`report` once all rows were seen.

    Parameters
    ----------
    genes
        The requested genes (the readers' ``genes=``).
    """

    def __init__(self, genes: Iterable[str]) -> None:
        self.wanted = {str(g).strip() for g in genes}
        if not self.wanted:
            msg = "genes is empty; pass gene ids or symbols to keep, or None to keep all genes."
            raise ValueError(msg)
        self.found: set[str] = set()

    def match(self, gene_id: str, symbol: str | None) -> str | None:
        """The requested gene a row (gene id, symbol) matches, if any."""
        for key in (gene_id, unversioned(gene_id), symbol):
            if key is not None and key in self.wanted:
                return key
        return None

    def keep(self, gene_ids: Iterable[str], symbols: Iterable[str | None]) -> np.ndarray:
        """A boolean mask of the rows that match a requested gene (remembered as found)."""
        hits = [self.match(g, s) for g, s in zip(gene_ids, symbols)]
        self.found.update(h for h in hits if h is not None)
        return np.array([h is not None for h in hits], dtype=bool)

    def report(self, where: str) -> None:
        """Log the requested genes that were not found; raise if none was."""
        absent = sorted(self.wanted - self.found)
        if len(absent) == len(self.wanted):
            msg = (
                f"None of the {len(self.wanted)} requested genes is in {where} "
                f"({shown(absent)}); genes are matched to Ensembl ids (with or without "
                "version) and gene symbols."
            )
            raise ValueError(msg)
        if absent:
            logger.warning(
                "%d of the %d requested genes are not in %s: %s.",
                len(absent),
                len(self.wanted),
                where,
                shown(absent),
            )


def check_unique_columns(names: Sequence[str], name: str, noun: str = "sample") -> None:
    """Raise if a header names the same column twice."""
    counts = pd.Series(list(names)).value_counts()
    twice = counts[counts > 1].index.tolist()
    if twice:
        msg = (
            f"{name} has {len(twice)} duplicated {noun} column(s): {shown(twice)}; each "
            f"{noun} must appear once. Remove the duplicates from the file."
        )
        raise ValueError(msg)


def read_matrix(
    path: Path,
    *,
    compression: str | None,
    names: list[str],
    skiprows: int,
    id_columns: list[str],
    value_columns: list[str],
    keep_rows: Callable[[pd.DataFrame], np.ndarray] | None = None,
    n_rows: int | None = None,
    dtype: np.dtype,
    name: str,
) -> tuple[pd.DataFrame, np.ndarray, bool, float]:
    """Read a genes x samples text matrix in chunks into a samples x genes array.

    Only ``id_columns`` and ``value_columns`` are parsed (pandas ``usecols``), rows are
    filtered chunk by chunk with ``keep_rows``, and each chunk (about 2 million values) is
    converted to ``dtype`` straight away. ``n_rows`` (rows the file declares) lets the result
    be allocated once when no rows are filtered (peak memory: the result plus ~100 MB);
    with ``keep_rows`` the kept blocks are joined at the end (peak: twice the result).

    Returns
    -------
    The id columns of the kept rows, the samples x genes values, whether all values are
    non-negative integers (counts), and the largest absolute value.
    """
    n_values = max(len(value_columns), 1)
    chunksize = int(max(16, min(20_000, 2_000_000 // n_values)))  # ~16 MB of float64
    converters = dict.fromkeys(id_columns, str)
    converters.update(dict.fromkeys(value_columns, np.float64))
    reader = pd.read_csv(
        path,
        **TSV_AS_IS,
        compression=compression,
        header=None,
        names=names,
        index_col=False,
        skiprows=skiprows,
        usecols=id_columns + value_columns,
        dtype=converters,
        chunksize=chunksize,
        na_values={c: ["NA", "NaN", "nan", ""] for c in value_columns},
        encoding_errors="replace",  # as the header is read: a stray byte is not a crash
    )
    into = _Columns(len(value_columns), None if keep_rows is not None else n_rows, dtype, name)
    ids: list[pd.DataFrame] = []
    integer, largest = True, 0.0
    try:
        for chunk in reader:
            if keep_rows is not None:
                chunk = chunk.loc[keep_rows(chunk)]
            values = chunk[value_columns].to_numpy(dtype=np.float64)
            if values.size:
                largest = max(largest, float(np.nanmax(np.abs(values), initial=0.0)))
                integer = integer and is_counts(values)
            ids.append(chunk[id_columns])
            into.add(values)
    except FormatError:
        raise
    except ValueError as err:
        msg = f"{name}: could not read the values as numbers ({err})."
        raise ValueError(msg) from err
    except (EOFError, OSError) as err:
        msg = f"{name} could not be read to its end ({err}); is the download complete?"
        raise ValueError(msg) from err
    table = (
        pd.concat(ids, ignore_index=True)
        if ids
        else pd.DataFrame({c: pd.Series(dtype=str) for c in id_columns})
    )
    return table, into.result(), integer, largest


class _Columns:
    """Genes x samples chunks gathered into one samples x genes array.

    With ``n_rows`` (the rows the file declares) the result is allocated once and filled,
    and a file with more or fewer rows is a :class:`FormatError`; without, the chunks are
    kept (as ``dtype``) and joined at the end.
    """

    def __init__(self, n_values: int, n_rows: int | None, dtype: np.dtype, name: str) -> None:
        self.n_values, self.n_rows, self.dtype, self.name = n_values, n_rows, dtype, name
        self.out = None if n_rows is None else np.empty((n_values, n_rows), dtype=dtype)
        self.blocks: list[np.ndarray] = []
        self.filled = 0

    def add(self, values: np.ndarray) -> None:
        if self.out is None:
            self.blocks.append(values.astype(self.dtype))
            return
        stop = self.filled + len(values)
        if stop > self.n_rows:
            msg = (
                f"{self.name} has more data rows than the {self.n_rows} its header declares; "
                "the file is malformed."
            )
            raise FormatError(msg)
        self.out[:, self.filled : stop] = values.T
        self.filled = stop

    def result(self) -> np.ndarray:
        if self.out is not None:
            if self.filled != self.n_rows:
                msg = (
                    f"{self.name} has {self.filled} data rows but its header declares "
                    f"{self.n_rows}; the file is truncated or malformed."
                )
                raise FormatError(msg)
            return self.out
        values = (
            np.concatenate(self.blocks)
            if self.blocks
            else np.empty((0, self.n_values), self.dtype)
        )
        self.blocks = []
        return np.ascontiguousarray(values.T)


def is_counts(values: np.ndarray) -> bool:
    """Whether all values are finite, non-negative integers."""
    return bool(
        np.isfinite(values).all() and (values >= 0).all() and (np.mod(values, 1) == 0).all()
    )


def warn_float32_counts(integer: bool, largest: float, dtype: np.dtype, name: str) -> None:
    """Warn when integer counts are too large to be exact in float32."""
    if integer and np.dtype(dtype) == np.float32 and largest > FLOAT32_EXACT:
        logger.warning(
            "%s holds counts up to %d, above float32's exact integers (%d): they are rounded "
            "to the nearest float32 (relative error < 6e-8). Pass dtype='float64' to keep "
            "them exact.",
            name,
            int(largest),
            FLOAT32_EXACT,
        )


def check_options(missing: str, var_names: str, dtype) -> np.dtype:
    """Validate the options every expression reader takes; the ``dtype`` as a numpy dtype."""
    if missing not in ("raise", "drop", "keep"):
        msg = f"missing must be 'raise', 'drop' or 'keep', not {missing!r}."
        raise ValueError(msg)
    if var_names not in ("gene_id", "gene_symbol"):
        msg = f"var_names must be 'gene_id' or 'gene_symbol', not {var_names!r}."
        raise ValueError(msg)
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        msg = f"dtype must be 'float32' or 'float64', not {dtype!r}."
        raise ValueError(msg)
    return dt
