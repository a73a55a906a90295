"""read_gtex on small files written in the GTEx portal's formats (GCT 1.2, annotation tables).

The files are synthetic (made-up values, real-looking ids) but laid out exactly as the GTEx v8
downloads: ``GTEx_Analysis_2017-06-05_v8_RNASeQCv1.1.9_gene_tpm.gct.gz`` (and ``_gene_reads``),
``GTEx_Analysis_v8_Annotations_SampleAttributesDS.txt`` and
``GTEx_Analysis_v8_Annotations_SubjectPhenotypesDS.txt``.
"""

from __future__ import annotations

import builtins
import gzip
import logging
import os
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from scgensynth.io import read_gtex

SAMPLES = [
    "GTEX-1117F-0226-SM-5GZZ7",
    "GTEX-1117F-0426-SM-5EGHI",
    "GTEX-111CU-1826-SM-5GZYN",
    "GTEX-111FC-0226-SM-5N9B8",
]
GENES = [  # (Ensembl id, Description); the two Y_RNA rows share a symbol as in GTEx
    ("ENSG00000223972.5", "DDX11L1"),
    ("ENSG00000227232.5", "WASH7P"),
    ("ENSG00000243485.5", "MIR1302-2HG"),
    ("ENSG00000207355.1", "Y_RNA"),
    ("ENSG00000252303.1", "Y_RNA"),
]
TPM = [  # genes x samples, as written in the file
    ["0", "0", "0.1031", "0"],
    ["4.521", "10.03", "7.2", "0.5"],
    ["0", "0", "0", "0"],
    ["1.5", "0", "2.25", "0.01234"],
    ["0", "3.125", "0", "1e-05"],
]
READS = [
    ["0", "0", "3", "0"],
    ["187", "415", "299", "12"],
    ["0", "0", "0", "0"],
    ["30", "0", "41", "1"],
    ["0", "77", "0", "0"],
]

# the v8 sample attributes header (SAMPID, then the SM* fields)
ATTRIBUTE_COLUMNS = [
    "SAMPID",
    "SMATSSCR",
    "SMCENTER",
    "SMPTHNTS",
    "SMRIN",
    "SMTS",
    "SMTSD",
    "SMUBRID",
    "SMTSISCH",
    "SMTSPAX",
    "SMNABTCH",
    "SMNABTCHT",
    "SMNABTCHD",
    "SMGEBTCH",
    "SMGEBTCHD",
    "SMGEBTCHT",
    "SMAFRZE",
    "SMGTC",
    "SME2MPRT",
    "SMCHMPRS",
    "SMNTRART",
    "SMNUMGPS",
    "SMMAPRT",
    "SMEXNCRT",
    "SM550NRM",
    "SMGNSDTC",
    "SMUNMPRT",
    "SM350NRM",
    "SMRDLGTH",
    "SMMNCPB",
    "SME1MMRT",
    "SMSFLGTH",
    "SMESTLBS",
    "SMMPPD",
    "SMNTERRT",
    "SMRRNANM",
    "SMRDTTL",
    "SMVQCFL",
    "SMMNCV",
    "SMTRSCPT",
    "SMMPPDPR",
    "SMCGLGTH",
    "SMGAPPCT",
    "SMUNPDRD",
    "SMNTRNRT",
    "SMMPUNRT",
    "SMEXPEFF",
    "SMMPPDUN",
    "SME2MMRT",
    "SME2ANTI",
    "SMALTALG",
    "SME2SNSE",
    "SMMFLGTH",
    "SME1ANTI",
    "SMSPLTRD",
    "SMBSMMRT",
    "SME1SNSE",
    "SME1PCTS",
    "SMRRNART",
    "SME1MPRT",
    "SMNUM5CD",
    "SMDPMPRT",
    "SME2PCTS",
]
ATTRIBUTES = [
    {
        "SAMPID": "GTEX-1117F-0003-SM-58Q7G",  # a blood DNA sample: not in the expression file
        "SMCENTER": "B1",
        "SMTS": "Blood",
        "SMTSD": "Whole Blood",
        "SMUBRID": "0013756",
        "SMAFRZE": "WGS",
    },
    {
        "SAMPID": SAMPLES[0],
        "SMATSSCR": "0",
        "SMCENTER": "B1",
        "SMPTHNTS": "2 pieces, ~15% vessel stroma, rep delineated",
        "SMRIN": "6.8",
        "SMTS": "Adipose Tissue",
        "SMTSD": "Adipose - Subcutaneous",
        "SMUBRID": "0002190",
        "SMTSISCH": "1214",
        "SMTSPAX": "1125",
        "SMNABTCH": "BP-43693",
        "SMNABTCHT": "RNA isolation_PAXgene Tissue miRNA",
        "SMNABTCHD": "10/18/2013",
        "SMGEBTCH": "LCSET-4822",
        "SMGEBTCHD": "12/04/2013",
        "SMGEBTCHT": "TruSeq.v1",
        "SMAFRZE": "RNASEQ",
        "SMMAPRT": "0.9921",
        "SMRDTTL": "76536956",
    },
    {
        "SAMPID": SAMPLES[1],
        "SMATSSCR": "0",
        "SMCENTER": "B1",
        "SMPTHNTS": "2 pieces; !5% fibrous connective tissue, delineated (rep)",
        "SMRIN": "8",
        "SMTS": "Muscle",
        "SMTSD": "Muscle - Skeletal",
        "SMUBRID": "0011907",
        "SMTSISCH": "1285",
        "SMTSPAX": "1081",
        "SMAFRZE": "RNASEQ",
        "SMMAPRT": "0.9897",
        "SMRDTTL": "81211744",
    },
    {
        "SAMPID": SAMPLES[2],
        "SMATSSCR": "1",
        "SMCENTER": "C1, A1",
        "SMRIN": "7.1",
        "SMTS": "Lung",
        "SMTSD": "Lung",
        "SMUBRID": "0008952",
        "SMTSISCH": "361",
        "SMAFRZE": "RNASEQ",
        "SMMAPRT": "0.9812",
        "SMRDTTL": "60222381",
    },
    {
        "SAMPID": SAMPLES[3],
        "SMATSSCR": "2",
        "SMCENTER": "B1",
        "SMRIN": "7.4",
        "SMTS": "Adipose Tissue",
        "SMTSD": "Adipose - Subcutaneous",
        "SMUBRID": "0002190",
        "SMTSISCH": "120",
        "SMAFRZE": "RNASEQ",
        "SMMAPRT": "0.9905",
        "SMRDTTL": "70012215",
    },
]
PHENOTYPES = (
    "SUBJID\tSEX\tAGE\tDTHHRDY\n"
    "GTEX-1117F\t2\t60-69\t4\n"
    "GTEX-111CU\t1\t50-59\t0\n"
    "GTEX-111FC\t1\t20-29\t\n"
    "GTEX-111VG\t1\t60-69\t3\n"
)


# -- writing the files -------------------------------------------------------------------------
def gct_text(values=TPM, samples=SAMPLES, genes=GENES, first="#1.2", sizes=None) -> str:
    sizes = sizes or f"{len(genes)}\t{len(samples)}"
    lines = [first, sizes, "\t".join(["Name", "Description", *samples])]
    lines += ["\t".join([g, d, *row]) for (g, d), row in zip(genes, values)]
    return "\n".join(lines) + "\n"


def attributes_text(rows=ATTRIBUTES) -> str:
    lines = ["\t".join(ATTRIBUTE_COLUMNS)]
    lines += ["\t".join(row.get(c, "") for c in ATTRIBUTE_COLUMNS) for row in rows]
    return "\n".join(lines) + "\n"


def write(path: Path, text: str, gz: bool = False) -> Path:
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.fixture
def files(tmp_path):
    """Plain TPM GCT, sample attributes and subject phenotypes in a folder."""
    folder = tmp_path / "gtex"
    folder.mkdir()
    return {
        "tpm": write(folder / "GTEx_gene_tpm.gct", gct_text()),
        "attributes": write(
            folder / "GTEx_Analysis_v8_Annotations_SampleAttributesDS.txt", attributes_text()
        ),
        "phenotypes": write(
            folder / "GTEx_Analysis_v8_Annotations_SubjectPhenotypesDS.txt", PHENOTYPES
        ),
    }


def expected_X(values=TPM) -> np.ndarray:
    return np.array([[np.float32(v) for v in row] for row in values], dtype=np.float32).T


# -- content -----------------------------------------------------------------------------------
def test_reads_values_annotations_and_genes(files):
    adata = read_gtex(files["tpm"], files["attributes"], files["phenotypes"])

    assert adata.shape == (4, 5)
    assert adata.obs_names.tolist() == SAMPLES  # the file's column order
    assert adata.X.dtype == np.float32
    assert adata.X.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(adata.X, expected_X())
    assert adata.X[2, 0] == np.float32(0.1031)  # sample GTEX-111CU-1826, gene DDX11L1

    assert adata.var_names.tolist() == [g for g, _ in GENES]
    assert adata.var["gene_id"].tolist() == [g for g, _ in GENES]
    assert adata.var["gene_symbol"].tolist() == [d for _, d in GENES]

    obs = adata.obs
    assert obs.columns[:6].tolist() == [
        "tissue",
        "tissue_detail",
        "subject_id",
        "sex",
        "age",
        "hardy_scale",
    ]
    assert obs["tissue"].tolist() == ["Adipose Tissue", "Muscle", "Lung", "Adipose Tissue"]
    assert obs["tissue"].cat.categories.tolist() == ["Adipose Tissue", "Lung", "Muscle"]
    assert obs["tissue_detail"].tolist() == [
        "Adipose - Subcutaneous",
        "Muscle - Skeletal",
        "Lung",
        "Adipose - Subcutaneous",
    ]
    assert obs["subject_id"].tolist() == ["GTEX-1117F", "GTEX-1117F", "GTEX-111CU", "GTEX-111FC"]
    assert obs["sex"].tolist() == ["female", "female", "male", "male"]
    assert obs["sex"].cat.categories.tolist() == ["female", "male"]
    assert obs["age"].tolist() == ["60-69", "60-69", "50-59", "20-29"]
    assert obs["age"].cat.ordered
    assert obs["age"].cat.categories.tolist() == ["20-29", "50-59", "60-69"]
    assert obs["hardy_scale"].tolist()[:3] == ["4", "4", "0"]
    assert pd.isna(obs["hardy_scale"].iloc[3])  # empty DTHHRDY
    assert not obs["hardy_scale"].cat.ordered
    assert obs["hardy_scale"].cat.categories.tolist() == ["0", "4"]
    for column in ("tissue", "tissue_detail", "subject_id", "sex", "age", "hardy_scale"):
        assert isinstance(obs[column].dtype, pd.CategoricalDtype), column

    # every other attribute column is kept under its own name, numbers as numbers
    others = [c for c in ATTRIBUTE_COLUMNS if c not in ("SAMPID", "SMTS", "SMTSD")]
    assert obs.columns[6:].tolist() == others
    assert "SEX" not in obs
    assert "SMTS" not in obs
    assert obs["SMRIN"].dtype == np.float64
    assert obs["SMRIN"].tolist() == [6.8, 8.0, 7.1, 7.4]
    assert obs["SMTSISCH"].tolist() == [1214, 1285, 361, 120]
    assert obs["SMRDTTL"].tolist() == [76536956, 81211744, 60222381, 70012215]
    assert obs["SMUBRID"].tolist() == ["0002190", "0011907", "0008952", "0002190"]  # zeros kept
    assert obs["SMCENTER"].tolist() == ["B1", "B1", "C1, A1", "B1"]
    assert obs["SMPTHNTS"].iloc[0] == "2 pieces, ~15% vessel stroma, rep delineated"
    assert obs["SMGTC"].isna().all()
    assert adata.uns["sgs_reader"] == {
        "reader": "read_gtex",
        "expression": "GTEx_gene_tpm.gct",
        "values": "continuous",
    }


def test_gzip_is_recognised_by_content_not_name(files, tmp_path):
    plain = read_gtex(files["tpm"], files["attributes"], files["phenotypes"])
    text = gct_text()
    for name, gz in [("a.gct.gz", True), ("b.gct", True), ("c.gct.gz", False)]:
        path = write(tmp_path / name, text, gz=gz)
        adata = read_gtex(
            path,
            write(tmp_path / f"{name}.attr.txt.gz", attributes_text(), gz=True),
            files["phenotypes"],
        )
        np.testing.assert_array_equal(adata.X, plain.X)
        pd.testing.assert_frame_equal(adata.obs, plain.obs)
        pd.testing.assert_frame_equal(adata.var, plain.var)


def test_crlf_line_ends(files, tmp_path):
    path = tmp_path / "crlf.gct"
    path.write_bytes(gct_text().replace("\n", "\r\n").encode())
    pheno = tmp_path / "pheno.txt"
    pheno.write_bytes(PHENOTYPES.replace("\n", "\r\n").encode())
    adata = read_gtex(path, files["attributes"], pheno)
    np.testing.assert_array_equal(adata.X, expected_X())
    assert pd.isna(adata.obs["hardy_scale"].iloc[3])
    assert adata.obs_names[-1] == SAMPLES[-1]


def test_read_counts_stay_integer_counts(tmp_path, files):
    path = write(tmp_path / "gene_reads.gct.gz", gct_text(READS), gz=True)
    adata = read_gtex(path)
    np.testing.assert_array_equal(adata.X, expected_X(READS))
    assert adata.X.dtype == np.float32
    assert adata.uns["sgs_reader"]["values"] == "counts"
    assert list(adata.obs.columns) == ["subject_id"]  # no tables, no covariates
    from scgensynth.pp import detect_scaling

    assert detect_scaling(adata) == "counts"


def test_large_counts_warn_in_float32_and_are_exact_in_float64(tmp_path, sgs_logs):
    big = [row[:] for row in READS]
    big[1][0] = "16777217"  # 2**24 + 1: not a float32
    path = write(tmp_path / "reads.gct", gct_text(big))
    with sgs_logs() as logs:
        single = read_gtex(path)
    assert single.X[0, 1] == np.float32(16777216)
    assert any("dtype='float64'" in r.getMessage() for r in logs if r.levelname == "WARNING")
    double = read_gtex(path, dtype="float64")
    assert double.X.dtype == np.float64
    assert double.X[0, 1] == 16777217


def test_tissue_filter_reads_only_those_samples(files):
    lung = read_gtex(files["tpm"], files["attributes"], files["phenotypes"], tissues="Lung")
    assert lung.obs_names.tolist() == [SAMPLES[2]]
    np.testing.assert_array_equal(lung.X, expected_X()[[2]])

    adipose_muscle = read_gtex(
        files["tpm"], files["attributes"], tissues=["Adipose - Subcutaneous", "Muscle"]
    )
    assert adipose_muscle.obs_names.tolist() == [SAMPLES[0], SAMPLES[1], SAMPLES[3]]
    np.testing.assert_array_equal(adipose_muscle.X, expected_X()[[0, 1, 3]])
    # categories are those present after the choice
    assert adipose_muscle.obs["tissue"].cat.categories.tolist() == ["Adipose Tissue", "Muscle"]


def test_tissue_filter_uses_usecols(files, monkeypatch):
    """Only the chosen samples' columns are handed to the parser."""
    seen = {}
    original = pd.read_csv

    def spy(*args, **kwargs):
        seen["usecols"] = kwargs.get("usecols")
        return original(*args, **kwargs)

    monkeypatch.setattr(pd, "read_csv", spy)
    read_gtex(files["tpm"], files["attributes"], tissues="Muscle")
    assert seen["usecols"] == ["Name", "Description", SAMPLES[1]]


def test_tissue_errors(files):
    with pytest.raises(ValueError, match=r"Unknown tissue\(s\) 'Liver'.*'Adipose Tissue'"):
        read_gtex(files["tpm"], files["attributes"], tissues="Liver")
    with pytest.raises(ValueError, match="tissues= needs the sample attributes table"):
        read_gtex(files["tpm"], tissues="Lung")
    with pytest.raises(ValueError, match=r"No sample of GTEx_gene_tpm\.gct is of tissue 'Blood'"):
        read_gtex(files["tpm"], files["attributes"], tissues="Blood")  # only the DNA sample


def test_samples_and_genes_filters(files, sgs_logs):
    adata = read_gtex(
        files["tpm"],
        files["attributes"],
        samples=[SAMPLES[3], SAMPLES[0]],
        genes=["WASH7P", "ENSG00000223972", "ENSG00000252303.1", "NOT_A_GENE"],
    )
    assert adata.obs_names.tolist() == [SAMPLES[0], SAMPLES[3]]  # file order
    assert adata.var_names.tolist() == [
        "ENSG00000223972.5",
        "ENSG00000227232.5",
        "ENSG00000252303.1",
    ]
    np.testing.assert_array_equal(adata.X, expected_X()[np.ix_([0, 3], [0, 1, 4])])

    with sgs_logs() as logs:
        read_gtex(files["tpm"], genes=["WASH7P", "NOT_A_GENE"])
    assert any("NOT_A_GENE" in r.getMessage() for r in logs)
    with pytest.raises(ValueError, match="None of the 1 requested genes"):
        read_gtex(files["tpm"], genes=["NOT_A_GENE"])
    with pytest.raises(ValueError, match=r"1 requested sample\(s\) are not in GTEx_gene_tpm.gct"):
        read_gtex(files["tpm"], samples=["GTEX-XXXX-0001-SM-00000"])


def test_var_names_gene_symbol_made_unique(files):
    adata = read_gtex(files["tpm"], var_names="gene_symbol")
    assert adata.var_names.tolist() == ["DDX11L1", "WASH7P", "MIR1302-2HG", "Y_RNA", "Y_RNA-1"]
    assert adata.var["gene_id"].tolist() == [g for g, _ in GENES]
    assert adata.var["gene_symbol"].tolist() == [d for _, d in GENES]
    with pytest.raises(ValueError, match="var_names must be 'gene_id' or 'gene_symbol'"):
        read_gtex(files["tpm"], var_names="symbol")


def test_per_tissue_file_with_id_column(tmp_path):
    lines = gct_text().splitlines()
    lines[2] = "id\t" + lines[2]
    lines[3:] = [f"{i}\t{line}" for i, line in enumerate(lines[3:])]
    path = write(tmp_path / "gene_tpm_v8_lung.gct", "\n".join(lines) + "\n")
    adata = read_gtex(path)
    np.testing.assert_array_equal(adata.X, expected_X())
    assert adata.var_names[0] == "ENSG00000223972.5"


def test_tables_as_dataframes_are_not_modified(files):
    attributes = pd.read_csv(files["attributes"], sep="\t", dtype=str)
    phenotypes = pd.read_csv(files["phenotypes"], sep="\t")
    before = (attributes.copy(), phenotypes.copy())
    adata = read_gtex(files["tpm"], attributes, phenotypes)
    pd.testing.assert_frame_equal(attributes, before[0])
    pd.testing.assert_frame_equal(phenotypes, before[1])
    assert adata.obs["sex"].tolist() == ["female", "female", "male", "male"]
    assert adata.obs["hardy_scale"].tolist()[:3] == ["4", "4", "0"]  # 4.0 read as a float


# -- missing samples ---------------------------------------------------------------------------
def test_samples_missing_from_attributes(files, tmp_path, sgs_logs):
    rows = [r for r in ATTRIBUTES if r["SAMPID"] != SAMPLES[1]]
    attributes = write(tmp_path / "attributes.txt", attributes_text(rows))
    with pytest.raises(
        ValueError,
        match=r"1 of the 4 samples in the expression data are not in attributes.txt: "
        r"'GTEX-1117F-0426-SM-5EGHI'.*missing='drop'",
    ):
        read_gtex(files["tpm"], attributes)

    with sgs_logs() as logs:
        dropped = read_gtex(files["tpm"], attributes, missing="drop")
    assert dropped.obs_names.tolist() == [SAMPLES[0], SAMPLES[2], SAMPLES[3]]
    np.testing.assert_array_equal(dropped.X, expected_X()[[0, 2, 3]])
    assert any("left out" in r.getMessage() for r in logs)

    kept = read_gtex(files["tpm"], attributes, files["phenotypes"], missing="keep")
    assert kept.obs_names.tolist() == SAMPLES
    assert pd.isna(kept.obs["tissue"].iloc[1])
    assert np.isnan(kept.obs["SMRIN"].iloc[1])
    assert kept.obs["sex"].iloc[1] == "female"  # the subject is known


def test_subject_missing_from_phenotypes(files, tmp_path):
    samples = [*SAMPLES[:2], "K-562-SM-26GMQ"]  # the cell line has no subject phenotypes
    gct = write(tmp_path / "k562.gct", gct_text([r[:3] for r in TPM], samples=samples))
    with pytest.raises(ValueError, match=r"1 of the 2 subjects .* 'K-562'"):
        read_gtex(gct, subject_phenotypes=files["phenotypes"])
    kept = read_gtex(gct, subject_phenotypes=files["phenotypes"], missing="keep")
    assert kept.obs["subject_id"].tolist() == ["GTEX-1117F", "GTEX-1117F", "K-562"]
    assert kept.obs["sex"].tolist()[:2] == ["female", "female"]
    assert pd.isna(kept.obs["sex"].iloc[2])
    dropped = read_gtex(gct, subject_phenotypes=files["phenotypes"], missing="drop")
    assert dropped.obs_names.tolist() == samples[:2]


def test_no_sample_in_common_shows_both_id_styles(files, tmp_path):
    rows = [dict(r, SAMPID=r["SAMPID"].replace("-", ".")) for r in ATTRIBUTES]  # R-mangled ids
    attributes = write(tmp_path / "attributes.txt", attributes_text(rows))
    with pytest.raises(
        ValueError,
        match=r"None of the 4 expression samples is in attributes.txt.*"
        r"'GTEX-1117F-0226-SM-5GZZ7'.*'GTEX.1117F.0003.SM.58Q7G'",
    ):
        read_gtex(files["tpm"], attributes, missing="drop")
    with pytest.raises(ValueError, match="missing must be 'raise', 'drop' or 'keep'"):
        read_gtex(files["tpm"], missing="ignore")


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        (gct_text(first="#1.3"), r"first line should be '#1.2', not '#1.3'.*GCT 1.3"),
        (gct_text().split("\n", 1)[1], r"first line should be '#1.2', not '5\\t4'"),
        ("#1.2\n5\t4\n", "ends before its header line"),
        (gct_text(sizes="5 4"), "line 2 should give the numbers of genes and samples"),
        (gct_text(sizes="5\t3"), "line 2 declares 3 samples but the header names 4"),
        (gct_text(sizes="6\t4"), "has 5 data rows but its header declares 6"),
        (gct_text(sizes="4\t4"), "more data rows than the 4 its header declares"),
        (gct_text().replace("Name\tDescription", "gene_id\tgene_name"), "should start with"),
        (gct_text(samples=[*SAMPLES[:3], SAMPLES[0]]), "1 duplicated sample column"),
        (gct_text().replace("4.521", "n/a"), "could not read the values as numbers"),
    ],
)
def test_malformed_gct(tmp_path, text, message):
    path = write(tmp_path / "bad.gct", text)
    with pytest.raises(ValueError, match=message):
        read_gtex(path)


def test_missing_file_and_wrong_kind_of_file(tmp_path, files):
    with pytest.raises(FileNotFoundError, match="No GCT expression file at"):
        read_gtex(tmp_path / "absent.gct")
    with pytest.raises(ValueError, match="is a directory"):
        read_gtex(tmp_path)
    zipped = tmp_path / "tpm.gct"
    zipped.write_bytes(b"PK\x03\x04 rest of a zip archive")
    with pytest.raises(ValueError, match=r"tpm\.gct is a zip archive; unzip it"):
        read_gtex(zipped)


def test_attribute_and_phenotype_columns_are_checked(files, tmp_path):
    no_smts = write(tmp_path / "attr.txt", attributes_text().replace("\tSMTS\t", "\tTISSUE\t"))
    with pytest.raises(
        ValueError,
        match=r"attr.txt has no column 'SMTS', which a GTEx sample attributes table needs; "
        r"its columns are \['SAMPID', 'SMATSSCR'",
    ):
        read_gtex(files["tpm"], no_smts)
    csv = write(tmp_path / "attr.csv", "SAMPID,SMTS,SMTSD\nGTEX-1,Lung,Lung\n")
    with pytest.raises(ValueError, match="looks comma-separated"):
        read_gtex(files["tpm"], csv)
    no_subject = write(tmp_path / "pheno.txt", PHENOTYPES.replace("SUBJID", "SUBJECT"))
    with pytest.raises(ValueError, match="has no column 'SUBJID'"):
        read_gtex(files["tpm"], subject_phenotypes=no_subject)


def test_duplicates_and_bad_codes_in_tables(files, tmp_path):
    attributes = write(tmp_path / "attr.txt", attributes_text([*ATTRIBUTES, ATTRIBUTES[2]]))
    with pytest.raises(ValueError, match=r"lists 1 SAMPID value\(s\) more than once"):
        read_gtex(files["tpm"], attributes)
    sex = write(tmp_path / "sex.txt", PHENOTYPES.replace("GTEX-111CU\t1", "GTEX-111CU\tM"))
    with pytest.raises(ValueError, match=r"Unexpected SEX value\(s\) 'm'.*1 \(male\)"):
        read_gtex(files["tpm"], subject_phenotypes=sex)
    hardy = write(tmp_path / "hardy.txt", PHENOTYPES.replace("50-59\t0", "50-59\t7"))
    with pytest.raises(ValueError, match=r"Unexpected DTHHRDY value\(s\) '7'"):
        read_gtex(files["tpm"], subject_phenotypes=hardy)


# -- side effects ------------------------------------------------------------------------------
def _listing(folder: Path) -> dict:
    return {
        p.relative_to(folder): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_reader_writes_nothing(files, monkeypatch, tmp_path):
    folder = files["tpm"].parent
    write(folder / "tpm.gct.gz", gct_text(), gz=True)
    before = _listing(folder)
    real_open = builtins.open

    def read_only_open(file, mode="r", *args, **kwargs):
        if any(flag in mode for flag in "wax+"):
            msg = f"the reader opened {file!r} for writing"
            raise AssertionError(msg)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", read_only_open)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for expression in (files["tpm"], folder / "tpm.gct.gz"):
            read_gtex(expression, files["attributes"], files["phenotypes"], tissues="Lung")
    finally:
        os.chdir(cwd)
    monkeypatch.undo()
    assert _listing(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gtex"]


def test_result_writes_to_h5ad(files, tmp_path):
    adata = read_gtex(files["tpm"], files["attributes"], files["phenotypes"])
    path = tmp_path / "out.h5ad"
    adata.write_h5ad(path)
    back = ad.read_h5ad(path)
    np.testing.assert_array_equal(back.X, adata.X)
    pd.testing.assert_frame_equal(back.obs, adata.obs)
    assert back.obs["age"].cat.ordered


def test_logs_what_it_read(files, sgs_logs):
    with sgs_logs() as logs:
        read_gtex(files["tpm"])
    messages = [r.getMessage() for r in logs if r.levelno == logging.INFO]
    assert "Read 4 samples x 5 genes from GTEx_gene_tpm.gct (continuous)." in messages


# -- real data ---------------------------------------------------------------------------------
def test_real_gtex_values_round_trip(tmp_path):
    """The bundled GTEx set (520 samples x 467 genes, 26 tissues) written as GCT + attributes."""
    import scgensynth as sgs

    real = sgs.datasets.gtex_tissues()
    genes = pd.DataFrame(real.X.T, index=real.var_names, columns=real.obs_names)
    genes.insert(0, "Description", [f"SYMBOL{i % 400}" for i in range(real.n_vars)])  # dups
    path = tmp_path / "gene_rpkm.gct.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(f"#1.2\n{real.n_vars}\t{real.n_obs}\n")
        genes.to_csv(handle, sep="\t", index_label="Name", float_format="%.9g")
    attributes = pd.DataFrame(
        {
            "SAMPID": real.obs_names,
            "SMTS": real.obs["tissue"].astype(str).to_numpy(),
            "SMTSD": real.obs["tissue"].astype(str).to_numpy(),
        }
    )
    attributes_path = tmp_path / "attributes.txt"
    attributes.iloc[::-1].to_csv(attributes_path, sep="\t", index=False)  # another order

    adata = read_gtex(path, attributes_path)
    assert adata.obs_names.tolist() == real.obs_names.tolist()
    assert adata.var_names.tolist() == real.var_names.tolist()
    np.testing.assert_array_equal(adata.X, real.X)  # float32 values exactly
    assert adata.obs["tissue"].tolist() == real.obs["tissue"].tolist()
    assert adata.obs["tissue"].cat.categories.tolist() == sorted(real.obs["tissue"].unique())
    assert adata.uns["sgs_reader"]["values"] == "continuous"

    brain = read_gtex(path, attributes_path, tissues="Brain", var_names="gene_symbol")
    assert brain.n_obs == 20
    np.testing.assert_array_equal(brain.X, real[real.obs["tissue"] == "Brain"].X)
    assert brain.var_names[400] == "SYMBOL0-1"
