"""Reader of GMT gene-set files (MSigDB, Enrichr, GSEA)."""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from ._utils import compression_of, open_text


def read_gmt(path: str | PathLike) -> dict[str, list[str]]:
    r"""Read a GMT file of gene sets.

    Each line is one set, tab-separated: its name, a description (often a URL, may be empty),
    then its genes. Empty fields (trailing tabs) are ignored, a gene listed twice in a set is
    kept once, blank lines are skipped; gzip, bz2 and xz files are recognised by their
    content and read compressed.

    Parameters
    ----------
    path
        The GMT file.

    Returns
    -------
    ``{set name: genes}`` in file order.

    Raises
    ------
    ValueError
        A malformed line (no tab, no genes, a name used twice), naming the line number.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "sets.gmt"
    >>> _ = path.write_text("LIVER\thttp://x\tALB\tAPOA1\n\nHYPOXIA\t\tVEGFA\tLDHA\tVEGFA\n")
    >>> read_gmt(path)
    {'LIVER': ['ALB', 'APOA1'], 'HYPOXIA': ['VEGFA', 'LDHA']}
    """
    path = Path(path)
    if not path.exists():
        msg = f"No GMT file at {str(path)!r}."
        raise FileNotFoundError(msg)
    sets: dict[str, list[str]] = {}
    try:
        with open_text(path, compression_of(path)) as handle:
            lines = list(handle)
    except (OSError, EOFError) as err:  # damaged or truncated compression
        msg = f"{path.name} could not be read ({err}); is the file complete?"
        raise ValueError(msg) from err
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        fields = line.split("\t")
        where = f"{path.name}, line {number}"
        if len(fields) < 2:
            msg = (
                f"{where} is not a GMT line: expected tab-separated fields (name, "
                f"description, genes...), got {line[:60]!r}. Is the file tab-separated?"
            )
            raise ValueError(msg)
        name = fields[0].strip()
        if not name:
            msg = f"{where}: the gene set has no name (the first field is empty)."
            raise ValueError(msg)
        genes = list(dict.fromkeys(g.strip() for g in fields[2:] if g.strip()))
        if not genes:
            msg = (
                f"{where}: gene set {name!r} lists no genes (a GMT line is name, "
                "description, then the genes, all tab-separated)."
            )
            raise ValueError(msg)
        if name in sets:
            msg = f"{where}: gene set {name!r} is defined twice; set names must be unique."
            raise ValueError(msg)
        sets[name] = genes
    return sets
