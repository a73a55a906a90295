"""Property-based tests of the readers: damaged files give a clear error or a sound AnnData.

Hypothesis mutates small files written in the real formats (a GTEx GCT with its sample
attributes, a UCSC Xena matrix, a GMT file): lines dropped, duplicated or truncated, fields
removed or replaced by text, NaN or huge numbers, bytes flipped, the file cut short or
emptied. A reader must then raise a ValueError/KeyError/TypeError whose message is a
sentence (FileNotFoundError for a file it cannot find), or return an AnnData whose values
are numbers and whose names are unique. Examples are derandomised.
"""

from __future__ import annotations

import gzip

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scgensynth as sgs

SETTINGS = settings(
    derandomize=True,
    deadline=None,
    database=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
ALLOWED = (ValueError, KeyError, TypeError)

SAMPLES = ["GTEX-1117F-0226-SM-5GZZ7", "GTEX-1117F-0426-SM-5EGHI", "GTEX-111CU-1826-SM-5GZYN"]
GCT = (
    "#1.2\n3\t3\n"
    "Name\tDescription\t" + "\t".join(SAMPLES) + "\n"
    "ENSG00000223972.5\tDDX11L1\t0\t0.1031\t0\n"
    "ENSG00000227232.5\tWASH7P\t4.521\t10.03\t7.2\n"
    "ENSG00000243485.5\tMIR1302-2HG\t0\t0\t1.5\n"
)
ATTRIBUTES = "SAMPID\tSMTS\tSMTSD\n" + "".join(
    f"{s}\t{t}\t{t} - detail\n" for s, t in zip(SAMPLES, ["Lung", "Liver", "Lung"])
)
XENA = (
    "Ensembl_ID\tTCGA-18-3406-01A\tTCGA-18-3406-11A\tTCGA-22-4593-01A\n"
    "ENSG00000000003.15\t4.5\t3.1\t5.0\n"
    "ENSG00000000005.6\t0\t0.2\t0\n"
    "ENSG00000000419.13\t7.25\t6.5\t7.0\n"
)
GMT = "SET_A\thttp://a\tTP53\tEGFR\tMYC\nSET_B\tna\tKRAS\tTP53\n"


# -- damages: kind -> (draw, lines, i) -> the damaged lines (i: a line drawn for it) --------------
def _drop(draw, lines, i):
    del lines[i]
    return lines


def _duplicate(draw, lines, i):
    lines.insert(i, lines[i])
    return lines


def _truncate(draw, lines, i):
    lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
    return lines


def _change_field(draw, lines, i, *, remove: bool):
    fields = lines[i].rstrip("\n").split("\t")
    j = draw(st.integers(0, len(fields) - 1))
    if remove:
        del fields[j]
    else:
        fields[j] = draw(st.sampled_from(["nan", "inf", "-1", "1e300", "x", "", "1,5"]))
    lines[i] = "\t".join(fields) + "\n"
    return lines


def _flip(draw, lines, i):
    blob = "".join(lines).encode()
    if blob:
        k = draw(st.integers(0, len(blob) - 1))
        blob = blob[:k] + bytes([draw(st.integers(0, 255))]) + blob[k + 1 :]
    return blob.decode("latin-1").splitlines(keepends=True)


def _cut(draw, lines, i):
    blob = "".join(lines)
    return [blob[: draw(st.integers(0, len(blob)))]]


DAMAGES = {
    "drop": _drop,
    "duplicate": _duplicate,
    "truncate": _truncate,
    "field": lambda draw, lines, i: _change_field(draw, lines, i, remove=True),
    "value": lambda draw, lines, i: _change_field(draw, lines, i, remove=False),
    "flip": _flip,
    "cut": _cut,
    "empty": lambda draw, lines, i: [],
}
#: the damages of one line, which need a line to damage
LINE_DAMAGES = {"drop", "duplicate", "truncate", "field", "value"}


@st.composite
def damaged(draw, text: str) -> bytes:
    """``text`` with one to three damages, as bytes (gzipped or not)."""
    lines = text.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(list(DAMAGES)))
        i = draw(st.integers(0, max(len(lines) - 1, 0))) if lines else 0
        if lines or kind not in LINE_DAMAGES:
            lines = DAMAGES[kind](draw, lines, i)
    data = "".join(lines).encode("latin-1", errors="replace")
    return gzip.compress(data) if draw(st.booleans()) else data


def _sentence(err: Exception) -> None:
    text = str(err.args[0]) if err.args else ""
    assert len(text) >= 25, f"unclear error {type(err).__name__}: {text!r}"
    assert " " in text, f"unclear error {type(err).__name__}: {text!r}"


def _sound(adata) -> None:
    X = np.asarray(adata.X)
    assert np.issubdtype(X.dtype, np.number)
    assert adata.obs_names.is_unique
    assert adata.var_names.is_unique


def _read(reader, *args, **kwargs):
    try:
        out = reader(*args, **kwargs)
    except ALLOWED as err:
        _sentence(err)
        return None
    _sound(out)
    return out


@SETTINGS
@given(expression=damaged(GCT), attributes=damaged(ATTRIBUTES), which=st.integers(0, 2))
def test_read_gtex_damaged(expression, attributes, which, tmp_path):
    gct, table = tmp_path / "expr.gct", tmp_path / "attributes.txt"
    gct.write_bytes(expression if which != 1 else GCT.encode())
    table.write_bytes(attributes if which != 0 else ATTRIBUTES.encode())
    _read(sgs.read_gtex, gct, table, missing="drop")


@SETTINGS
@given(matrix=damaged(XENA))
def test_read_tcga_xena_damaged(matrix, tmp_path):
    path = tmp_path / "TCGA-LUSC.star_counts.tsv"
    path.write_bytes(matrix)
    _read(sgs.read_tcga, path)


@SETTINGS
@given(text=damaged(GMT))
def test_read_gmt_damaged(text, tmp_path):
    path = tmp_path / "sets.gmt"
    path.write_bytes(text)
    try:
        sets = sgs.read_gmt(path)
    except ALLOWED as err:
        _sentence(err)
    else:
        assert all(isinstance(k, str) and k for k in sets)
        assert all(isinstance(g, str) and g for genes in sets.values() for g in genes)


def test_the_undamaged_files_read():
    # the mutations start from files the readers accept (else the tests above prove little)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        gct, table = Path(folder) / "expr.gct", Path(folder) / "attributes.txt"
        gct.write_text(GCT)
        table.write_text(ATTRIBUTES)
        assert sgs.read_gtex(gct, table).shape == (3, 3)
        xena = Path(folder) / "TCGA-LUSC.star_counts.tsv"
        xena.write_text(XENA)
        assert sgs.read_tcga(xena).shape == (3, 3)
        gmt = Path(folder) / "sets.gmt"
        gmt.write_text(GMT)
        assert sgs.read_gmt(gmt) == {"SET_A": ["TP53", "EGFR", "MYC"], "SET_B": ["KRAS", "TP53"]}


def test_a_stray_byte_in_the_gct_header_is_read(tmp_path):
    """Found by the fuzzing above: a non-UTF-8 byte in a sample id crashed the parser."""
    gct, table = tmp_path / "expr.gct", tmp_path / "attributes.txt"
    gct.write_bytes(GCT.encode().replace(b"\tGTEX-1117F-0226", b"\t\x80TEX-1117F-0226", 1))
    table.write_bytes(ATTRIBUTES.encode())
    adata = sgs.read_gtex(gct, table, missing="drop")
    assert adata.n_obs == GCT.splitlines()[2].count("GTEX") - 1  # the damaged id is dropped
