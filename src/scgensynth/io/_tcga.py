"""Reader of TCGA expression of either kind: GDC STAR gene counts or a UCSC Xena matrix."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Literal

import anndata as ad
import numpy as np

from scgensynth._utils._docs import doc_params

from ._tcga_clinical import TCGA_DOCS, TcgaOptions
from ._tcga_star import is_star_file, read_star, star_files
from ._tcga_xena import expression_file, read_xena
from ._utils import READER_DOCS, Missing, TableLike


@doc_params(**READER_DOCS, **TCGA_DOCS)
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

    - **GDC STAR gene counts** (also read by :func:`read_tcga_star`):
      {star_files}
    - **UCSC Xena matrices** (also read by :func:`read_tcga_xena`):
      {xena_file}

    Compression (gzip, bz2, xz) is recognised from the files' first bytes.

    Parameters
    ----------
    expression
        A directory or list of GDC STAR files, one STAR file, or one Xena matrix.
    {clinical}
    {sample_sheet}
    {value}
        Only for STAR files.
    {probemap}
    {unlog}
        Only for Xena matrices.
    {project}
    {genes}
    {var_names}
        A Xena matrix of symbols has symbols either way.
    {id_column}
    {missing}
        A STAR file absent from the sample sheet (kept with ``"keep"``) is named by its file.
    {dtype}

    Returns
    -------
    AnnData of samples x genes (STAR: in sample-sheet order for a directory, in the given
    order for a list; Xena: in the file's column order), ``obs_names`` the sample barcodes.
    ``X`` holds the values unchanged (STAR counts stay integer-valued, for
    :func:`scgensynth.pp.detect_scaling`); ``uns["sgs_reader"]`` records the format, the
    values (``"counts"``, ``"continuous"`` or ``"log2(x+1)"``), the gene model and which
    clinical columns the covariates came from.

    {obs}
    ``var``: ``gene_id``, ``gene_symbol`` and (STAR) ``gene_type``, as available.

    Raises
    ------
    ValueError
        A file not in the expected format, a table without its required columns, STAR files
        of different gene models or genes, duplicated samples, options that do not apply to
        the input, or samples absent from a table with ``missing="raise"``.

    See Also
    --------
    read_tcga_star : Reads GDC STAR gene-count files, with only the options that apply.
    read_tcga_xena : Reads a UCSC Xena matrix, with only the options that apply.

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
    options = TcgaOptions.checked(
        "read_tcga", project, genes, var_names, id_column, missing, dtype
    )
    kind, files, from_directory = _expression_files(expression)
    if kind == "star":
        if unlog:
            msg = "unlog=True is for Xena matrices (log2(x + 1)); STAR values are not logged."
            raise ValueError(msg)
        if probemap is not None:
            msg = "probemap= is for Xena matrices; STAR files name their genes themselves."
            raise ValueError(msg)
        value = "unstranded" if value is None else value
        return read_star(files, from_directory, clinical, sample_sheet, value, options)
    if value is not None:
        msg = f"value= picks a column of GDC STAR files; {files[0].name} is a Xena matrix."
        raise ValueError(msg)
    if sample_sheet is not None:
        msg = (
            "sample_sheet= maps GDC STAR files to samples; a Xena matrix names its "
            "samples in its header."
        )
        raise ValueError(msg)
    return read_xena(files[0], clinical, probemap, unlog, options)


def _expression_files(expression) -> tuple[str, list[Path], bool]:
    """('star', files, from a directory) or ('matrix', [file], False)."""
    if isinstance(expression, str | PathLike) and not Path(expression).is_dir():
        path = expression_file(expression)
        return ("star" if is_star_file(path) else "matrix"), [path], False
    files, from_directory = star_files(expression)
    return "star", files, from_directory
