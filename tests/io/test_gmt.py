"""GMT gene-set files: the bundled fixture, the format's corners, and malformed lines."""

from __future__ import annotations

import doctest
import gzip
from pathlib import Path

import pytest

import scgensynth as sgs
from scgensynth.io import _gmt

FIXTURE = Path(__file__).parents[1] / "data" / "tspg_gene_sets.gmt"


def test_reads_the_fixture():
    sets = sgs.read_gmt(FIXTURE)
    assert sgs.io.read_gmt is sgs.read_gmt
    assert list(sets) == ["GTEX_FIRST_40", "GTEX_WITH_2_MISSING", "ONE_GTEX_GENE"]
    genes = list(sgs.datasets.gtex_tissues().var_names)
    assert sets["GTEX_FIRST_40"] == genes[:40]  # the description is not a gene
    assert sets["GTEX_WITH_2_MISSING"] == [*genes[40:50], "entrez_0", "NOT_A_GENE"]
    assert sets["ONE_GTEX_GENE"] == [genes[0], "NOT_A_GENE"]  # trailing tab ignored


def test_format_corners(tmp_path):
    path = tmp_path / "corners.gmt"
    path.write_bytes(
        b"\xef\xbb\xbfA\tdesc\tg1\tg2\tg1\r\n"  # BOM, CRLF, a duplicated gene
        b"\n"
        b"   \n"
        b"B\t\tg3\t\tg4\t\n"  # empty description and empty fields
    )
    assert sgs.read_gmt(path) == {"A": ["g1", "g2"], "B": ["g3", "g4"]}
    packed = tmp_path / "corners.gmt.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    assert sgs.read_gmt(str(packed)) == {"A": ["g1", "g2"], "B": ["g3", "g4"]}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("A desc g1 g2\n", r"bad\.gmt, line 1 is not a GMT line.*tab-separated"),
        ("A\tdesc\tg1\nB\tdesc\n", r"line 2: gene set 'B' lists no genes"),
        ("A\tdesc\tg1\n\nA\tdesc\tg2\n", r"line 3: gene set 'A' is defined twice"),
        ("\tdesc\tg1\n", r"line 1: the gene set has no name"),
    ],
)
def test_malformed_lines(tmp_path, text, match):
    path = tmp_path / "bad.gmt"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        sgs.read_gmt(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="No GMT file at"):
        sgs.read_gmt(tmp_path / "nope.gmt")


def test_docstring_example():
    result = doctest.testmod(_gmt, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0
