"""read_tcga on small files written in the GDC's and UCSC Xena's formats.

Synthetic values with real-looking ids, laid out as the real downloads: GDC STAR gene counts
(``<uuid>.rna_seq.augmented_star_gene_counts.tsv`` in per-file folders, as unpacked from a GDC
cart), the cart's ``gdc_sample_sheet.<date>.tsv`` and ``clinical.tsv``, Xena GDC-hub matrices
(``TCGA-LUSC.star_counts.tsv.gz``, ``TCGA-LUSC.htseq_counts.tsv.gz``) and phenotype tables
(``TCGA-LUSC.GDC_phenotype.tsv.gz``, ``TCGA-LUSC.clinical.tsv.gz``), and the legacy Xena hub's
``HiSeqV2`` with its ``LUSC_clinicalMatrix``.
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

from scgensynth.io import read_tcga, read_tcga_star, read_tcga_xena

# -- GDC STAR gene counts ----------------------------------------------------------------------
STAR_HEADER = (
    "gene_id\tgene_name\tgene_type\tunstranded\tstranded_first\tstranded_second\t"
    "tpm_unstranded\tfpkm_unstranded\tfpkm_uq_unstranded"
)
GENES = [  # (gene_id, gene_name, gene_type)
    ("ENSG00000000003.15", "TSPAN6", "protein_coding"),
    ("ENSG00000000005.6", "TNMD", "protein_coding"),
    ("ENSG00000000419.13", "DPM1", "protein_coding"),
    ("ENSG00000002586.20", "CD99", "protein_coding"),
    ("ENSG00000002586.20_PAR_Y", "CD99", "protein_coding"),
]
# per sample: unstranded counts and TPM of the five genes, and the N_* counters
STAR = {
    "TCGA-18-3406-01A": ([2858, 10, 1897, 5012, 0], [40.2858, 0.3626, 80.1745, 130.5, 0.0]),
    "TCGA-18-3406-11A": ([1402, 0, 2011, 3990, 0], [22.1048, 0.0, 95.3311, 118.25, 0.0]),
    "TCGA-22-4593-01A": ([977, 3, 1543, 6120, 0], [15.7702, 0.1210, 70.0001, 170.0, 0.0]),
}
COUNTERS = {
    "TCGA-18-3406-01A": (2474958, 3712428, 1896226, 2791480),
    "TCGA-18-3406-11A": (1901345, 2807712, 1654320, 2011234),
    "TCGA-22-4593-01A": (2211007, 3100042, 1702113, 2400876),
}
COUNTER_NAMES = ("N_unmapped", "N_multimapping", "N_noFeature", "N_ambiguous")
# sample sheet rows: (File ID, File Name, Sample ID, Sample Type); the sheet's order is not
# the File IDs' sorted order
SHEET = [
    (
        "f8a1c2d3-0b9e-4c11-9d4e-6a7b8c9d0e1f",
        "2c7f1a6e-93b1-4d0a-8f3b-1e2d3c4b5a69.rna_seq.augmented_star_gene_counts.tsv",
        "TCGA-22-4593-01A",
        "Primary Tumor",
    ),
    (
        "0b3e5d7f-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
        "9d0e8f7a-6b5c-4d3e-a2f1-0e9d8c7b6a54.rna_seq.augmented_star_gene_counts.tsv",
        "TCGA-18-3406-01A",
        "Primary Tumor",
    ),
    (
        "5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f",
        "47e1b2c3-d4e5-4f60-8a71-b2c3d4e5f607.rna_seq.augmented_star_gene_counts.tsv",
        "TCGA-18-3406-11A",
        "Solid Tissue Normal",
    ),
]
SHEET_ORDER = [row[2] for row in SHEET]


def star_text(sample: str, model: str = "GENCODE v36", genes=GENES) -> str:
    counts, tpm = STAR[sample]
    lines = [f"# gene-model: {model}", STAR_HEADER]
    for name, value in zip(COUNTER_NAMES, COUNTERS[sample]):
        lines.append(f"{name}\t\t\t{value}\t{value}\t{value}\t\t\t")  # only counts filled
    for (gene_id, name, kind), count, t in zip(genes, counts, tpm):
        first, second = count // 2, count - count // 2
        fpkm = round(t / 3.1, 4)
        lines.append(
            f"{gene_id}\t{name}\t{kind}\t{count}\t{first}\t{second}\t{t:.4f}\t{fpkm:.4f}\t"
            f"{fpkm * 1.1:.4f}"
        )
    return "\n".join(lines) + "\n"


def sheet_text(rows=SHEET) -> str:
    lines = [
        "File ID\tFile Name\tData Category\tData Type\tProject ID\tCase ID\tSample ID\tSample Type"
    ]
    for file_id, file_name, sample, sample_type in rows:
        case = sample[:12] if "," not in sample else ", ".join(s[:12] for s in sample.split(", "))
        lines.append(
            f"{file_id}\t{file_name}\tTranscriptome Profiling\tGene Expression Quantification\t"
            f"TCGA-LUSC\t{case}\t{sample}\t{sample_type}"
        )
    return "\n".join(lines) + "\n"


@pytest.fixture
def gdc(tmp_path):
    """An unpacked GDC download (per-file folders, MANIFEST.txt) and its sample sheet."""
    folder = tmp_path / "gdc_download_20240101"
    folder.mkdir()
    files = {}
    for file_id, file_name, sample, _ in SHEET:
        (folder / file_id).mkdir()
        files[sample] = folder / file_id / file_name
        files[sample].write_text(star_text(sample))
    (folder / SHEET[0][0] / "annotations.txt").write_text("id\tsubmitter_id\tnotes\n")
    (folder / "MANIFEST.txt").write_text(
        "id\tfilename\tmd5\tsize\tstate\n"
        + "".join(f"{r[0]}\t{r[0]}/{r[1]}\t0\t0\treleased\n" for r in SHEET)
    )
    sheet = tmp_path / "gdc_sample_sheet.2024-01-01.tsv"
    sheet.write_text(sheet_text())
    return {"folder": folder, "files": files, "sheet": sheet}


CLINICAL_COLUMNS = [
    "case_id",
    "case_submitter_id",
    "project_id",
    "age_at_index",
    "age_is_obfuscated",
    "days_to_birth",
    "ethnicity",
    "gender",
    "race",
    "vital_status",
    "ajcc_pathologic_stage",
    "primary_diagnosis",
    "treatment_or_therapy",
    "treatment_type",
]
CLINICAL_ROWS = [  # one row per treatment, as the GDC cart's clinical.tsv
    [
        "7e6b3a8e-4c4e-4d9b-9e0c-1f1a2b3c4d5e",
        "TCGA-18-3406",
        "TCGA-LUSC",
        "67",
        "'--",
        "-24708",
        "not hispanic or latino",
        "male",
        "white",
        "Dead",
        "Stage IB",
        "Squamous cell carcinoma, NOS",
        "yes",
        "Pharmaceutical Therapy, NOS",
    ],
    [
        "7e6b3a8e-4c4e-4d9b-9e0c-1f1a2b3c4d5e",
        "TCGA-18-3406",
        "TCGA-LUSC",
        "67",
        "'--",
        "-24708",
        "not hispanic or latino",
        "male",
        "white",
        "Dead",
        "Stage IB",
        "Squamous cell carcinoma, NOS",
        "no",
        "Radiation Therapy, NOS",
    ],
    [
        "2a1b0c9d-8e7f-4a6b-9c5d-4e3f2a1b0c9d",
        "TCGA-22-4593",
        "TCGA-LUSC",
        "'--",
        "'--",
        "-20454",
        "'--",
        "female",
        "not reported",
        "Alive",
        "Stage IIA",
        "Squamous cell carcinoma, NOS",
        "no",
        "Pharmaceutical Therapy, NOS",
    ],
]


def clinical_text(rows=CLINICAL_ROWS) -> str:
    return "\n".join("\t".join(r) for r in [CLINICAL_COLUMNS, *rows]) + "\n"


def expected_star_X(samples, column=0) -> np.ndarray:
    return np.array([STAR[s][column] for s in samples], dtype=np.float32)


# -- Xena --------------------------------------------------------------------------------------
XENA_SAMPLES = ["TCGA-18-3406-01A", "TCGA-18-3406-11A", "TCGA-22-4593-01A", "TCGA-85-8580-01A"]
XENA_LOG = [  # genes x samples, log2(count + 1)
    ["11", "10", "3", "0"],
    ["0", "1", "0", "2"],
    ["9.5", "10.25", "12", "8"],
]
XENA_GENES = ["ENSG00000000003.15", "ENSG00000000005.6", "ENSG00000000419.13"]


def xena_text(first="Ensembl_ID", samples=XENA_SAMPLES, genes=XENA_GENES, values=XENA_LOG):
    lines = ["\t".join([first, *samples])]
    lines += ["\t".join([g, *row]) for g, row in zip(genes, values)]
    return "\n".join(lines) + "\n"


def gz(path: Path, text: str) -> Path:
    path.write_bytes(gzip.compress(text.encode()))
    return path


PHENOTYPE = (  # Xena GDC hub TCGA-LUSC.GDC_phenotype.tsv.gz (a few of its columns)
    "submitter_id.samples\tadditional_pharmaceutical_therapy\t"
    "age_at_initial_pathologic_diagnosis\tdisease_type\tgender.demographic\tproject_id\t"
    "sample_type.samples\tsample_type_id.samples\tsubmitter_id\ttobacco_smoking_history\n"
    "TCGA-18-3406-01A\tNO\t67\tSquamous Cell Neoplasms\tmale\tTCGA-LUSC\tPrimary Tumor\t1\t"
    "TCGA-18-3406\t4\n"
    "TCGA-18-3406-11A\tNO\t67\tSquamous Cell Neoplasms\tmale\tTCGA-LUSC\t"
    "Solid Tissue Normal\t11\tTCGA-18-3406\t4\n"
    "TCGA-22-4593-01A\t\t\tSquamous Cell Neoplasms\tfemale\tTCGA-LUSC\tPrimary Tumor\t1\t"
    "TCGA-22-4593\t2\n"
    "TCGA-85-8580-01A\tYES\t71\tSquamous Cell Neoplasms\tnot reported\tTCGA-LUSC\t"
    "Primary Tumor\t1\tTCGA-85-8580\t\n"
    "TCGA-99-9999-01A\tNO\t50\tSquamous Cell Neoplasms\tmale\tTCGA-LUSC\tPrimary Tumor\t1\t"
    "TCGA-99-9999\t1\n"
)


@pytest.fixture
def xena(tmp_path):
    folder = tmp_path / "xena"
    folder.mkdir()
    return {
        "matrix": gz(folder / "TCGA-LUSC.star_counts.tsv.gz", xena_text()),
        "phenotype": gz(folder / "TCGA-LUSC.GDC_phenotype.tsv.gz", PHENOTYPE),
    }


# -- GDC STAR ----------------------------------------------------------------------------------
def test_star_directory_with_sample_sheet(gdc):
    adata = read_tcga(gdc["folder"], sample_sheet=gdc["sheet"])

    assert adata.obs_names.tolist() == SHEET_ORDER  # the sample sheet's order
    assert adata.X.dtype == np.float32
    np.testing.assert_array_equal(adata.X, expected_star_X(SHEET_ORDER))
    # the N_* rows are not genes; the _PAR_Y copy is
    assert adata.var_names.tolist() == [g for g, _, _ in GENES]
    assert adata.var["gene_symbol"].tolist() == [n for _, n, _ in GENES]
    assert adata.var["gene_type"].tolist() == ["protein_coding"] * 5
    assert adata.var["gene_id"].tolist() == [g for g, _, _ in GENES]

    obs = adata.obs
    assert obs.columns.tolist() == [
        "project",
        "sample_type",
        "sample_type_code",
        "cancer",
        "patient_id",
        "age",
        "gender",
        *COUNTER_NAMES,
    ]
    assert obs["project"].tolist() == ["TCGA-LUSC"] * 3
    assert obs["sample_type"].tolist() == ["Primary Tumor", "Primary Tumor", "Solid Tissue Normal"]
    assert obs["sample_type_code"].tolist() == ["01", "01", "11"]
    assert obs["cancer"].tolist() == ["tumour", "tumour", "normal"]
    assert obs["cancer"].cat.categories.tolist() == ["normal", "tumour"]
    assert obs["patient_id"].tolist() == ["TCGA-22-4593", "TCGA-18-3406", "TCGA-18-3406"]
    assert obs["age"].isna().all()  # no clinical table
    assert obs["gender"].isna().all()
    assert obs["N_noFeature"].tolist() == [COUNTERS[s][2] for s in SHEET_ORDER]
    assert adata.uns["sgs_reader"] == {
        "reader": "read_tcga",
        "format": "gdc_star",
        "expression": "3 STAR files",
        "values": "counts",
        "column": "unstranded",
        "gene_model": "GENCODE v36",
    }
    from scgensynth.pp import detect_scaling

    assert detect_scaling(adata) == "counts"


def test_star_tpm_column_and_file_list_order(gdc):
    order = ["TCGA-18-3406-11A", "TCGA-22-4593-01A"]
    adata = read_tcga(
        [gdc["files"][s] for s in order], sample_sheet=gdc["sheet"], value="tpm_unstranded"
    )
    assert adata.obs_names.tolist() == order  # the list's order
    np.testing.assert_array_equal(adata.X, expected_star_X(order, column=1))
    assert adata.uns["sgs_reader"]["values"] == "continuous"
    assert "N_unmapped" not in adata.obs  # counters are counts, not TPM

    one = read_tcga(gdc["files"]["TCGA-18-3406-01A"], sample_sheet=gdc["sheet"])
    assert one.obs_names.tolist() == ["TCGA-18-3406-01A"]
    assert one.uns["sgs_reader"]["expression"] == SHEET[1][1]

    symbols = read_tcga(
        gdc["folder"], sample_sheet=gdc["sheet"], var_names="gene_symbol", genes=["CD99", "TNMD"]
    )
    assert symbols.var_names.tolist() == ["TNMD", "CD99", "CD99-1"]  # the _PAR_Y copy
    assert symbols.var["gene_id"].tolist() == [g for g, _, _ in GENES[1:2] + GENES[3:]]
    np.testing.assert_array_equal(symbols.X, expected_star_X(SHEET_ORDER)[:, [1, 3, 4]])

    with pytest.raises(ValueError, match=r"value must be one of \['unstranded'"):
        read_tcga(gdc["folder"], sample_sheet=gdc["sheet"], value="tpm")


def test_star_with_gdc_clinical_per_case(gdc, tmp_path, sgs_logs):
    clinical = tmp_path / "clinical.tsv"
    clinical.write_text(clinical_text())
    with sgs_logs() as logs:
        adata = read_tcga(gdc["folder"], clinical, sample_sheet=gdc["sheet"])
    obs = adata.obs
    # 22-4593 has no age_at_index ('--): its age comes from days_to_birth (-20454 days)
    np.testing.assert_allclose(obs["age"].to_numpy(), [20454 / 365.25, 67, 67])
    assert obs["age"].dtype == np.float64
    assert obs["gender"].tolist() == ["female", "male", "male"]
    assert obs["project"].tolist() == ["TCGA-LUSC"] * 3
    # case-level columns kept; those varying across a case's rows (treatments) and empty ones
    # ('--) left out; the id and the sources of the covariates are not repeated
    extra = obs.columns[obs.columns.get_loc("gender") + 1 : obs.columns.get_loc("N_unmapped")]
    assert extra.tolist() == [
        "case_id",
        "ethnicity",
        "race",
        "vital_status",
        "ajcc_pathologic_stage",
        "primary_diagnosis",
    ]
    assert obs["race"].tolist() == ["not reported", "white", "white"]
    assert pd.isna(obs["ethnicity"].iloc[0])
    assert adata.uns["sgs_reader"]["clinical"] == "clinical.tsv"
    assert adata.uns["sgs_reader"]["clinical_columns"] == {
        "project": "project_id",
        "age": "age_at_index, days_to_birth",
        "gender": "gender",
    }
    messages = " ".join(r.getMessage() for r in logs)
    assert "left out 2 that differ ('treatment_or_therapy', 'treatment_type')" in messages


def test_star_files_missing_from_sheet(gdc, tmp_path):
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text(sheet_text(SHEET[:2]))
    with pytest.raises(
        ValueError, match=r"1 of the 3 STAR files in the expression data are not in sheet\.tsv"
    ):
        read_tcga(gdc["folder"], sample_sheet=sheet)
    dropped = read_tcga(gdc["folder"], sample_sheet=sheet, missing="drop")
    assert dropped.obs_names.tolist() == SHEET_ORDER[:2]
    np.testing.assert_array_equal(dropped.X, expected_star_X(SHEET_ORDER[:2]))
    kept = read_tcga(gdc["folder"], sample_sheet=sheet, missing="keep")
    assert kept.obs_names.tolist() == [*SHEET_ORDER[:2], SHEET[2][1]]  # named by its file
    assert pd.isna(kept.obs["cancer"].iloc[2])
    np.testing.assert_array_equal(kept.X, expected_star_X(SHEET_ORDER))


def test_star_matched_by_file_id_folder(gdc, tmp_path):
    """Renamed files are still found through their folder, named by the File ID."""
    for path in gdc["files"].values():
        path.rename(path.with_name("renamed.augmented_star_gene_counts.tsv"))
    adata = read_tcga(gdc["folder"], sample_sheet=gdc["sheet"])
    assert adata.obs_names.tolist() == SHEET_ORDER


def test_star_needs_one_sample_per_file_and_one_file_per_sample(gdc, tmp_path):
    with pytest.raises(
        ValueError, match="GDC STAR files are named by UUID: pass the sample sheet"
    ):
        read_tcga(gdc["folder"])
    multi = [*SHEET[:2], (*SHEET[2][:2], "TCGA-18-3406-11A, TCGA-18-3406-10A", "x, y")]
    sheet = tmp_path / "multi.tsv"
    sheet.write_text(sheet_text(multi))
    with pytest.raises(
        ValueError, match=r"lists .* with several samples \(TCGA-18-3406-11A, TCGA-18-3406-10A\)"
    ):
        read_tcga(gdc["folder"], sample_sheet=sheet)
    same = [*SHEET[:2], (*SHEET[2][:2], "TCGA-18-3406-01A", "Primary Tumor")]
    sheet = tmp_path / "twice.tsv"
    sheet.write_text(sheet_text(same))
    with pytest.raises(
        ValueError, match=r"1 sample\(s\) have more than one STAR file \(TCGA-18-3406-01A: "
    ):
        read_tcga(gdc["folder"], sample_sheet=sheet)


def test_star_sample_sheet_columns_checked(gdc, tmp_path):
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text(sheet_text().replace("Sample ID", "Sample"))
    with pytest.raises(
        ValueError,
        match=r"sheet\.tsv has no column 'Sample ID', which a GDC sample sheet needs; its "
        r"columns are \['File ID', 'File Name'",
    ):
        read_tcga(gdc["folder"], sample_sheet=sheet)
    other = tmp_path / "other.tsv"
    other.write_text(sheet_text([("a", "b.tsv", "TCGA-01-0001-01A", "Primary Tumor")]))
    with pytest.raises(ValueError, match=r"None of the 3 STAR files is in other\.tsv"):
        read_tcga(gdc["folder"], sample_sheet=other)


def test_star_mixed_gene_models_and_gene_lists(gdc):
    path = gdc["files"]["TCGA-18-3406-11A"]
    path.write_text(star_text("TCGA-18-3406-11A", model="GENCODE v22"))
    with pytest.raises(
        ValueError, match=r"different gene models: .* is 'GENCODE v36', .* 'GENCODE v22'"
    ):
        read_tcga(gdc["folder"], sample_sheet=gdc["sheet"])
    other = [("ENSG00000000003.14", *GENES[0][1:]), *GENES[1:]]
    path.write_text(star_text("TCGA-18-3406-11A", genes=other))
    with pytest.raises(
        ValueError, match=r"does not have the genes of .*'ENSG00000000003\.14'.*gene models"
    ):
        read_tcga(gdc["folder"], sample_sheet=gdc["sheet"])


def test_star_rows_in_another_order_are_aligned(gdc):
    path = gdc["files"]["TCGA-18-3406-11A"]
    lines = star_text("TCGA-18-3406-11A").splitlines()
    path.write_text("\n".join(lines[:6] + lines[6:][::-1]) + "\n")  # genes reversed
    adata = read_tcga(gdc["folder"], sample_sheet=gdc["sheet"])
    np.testing.assert_array_equal(adata.X, expected_star_X(SHEET_ORDER))


def test_star_gzip_and_bad_files(gdc, tmp_path):
    path = gdc["files"]["TCGA-18-3406-11A"]
    gz(path, star_text("TCGA-18-3406-11A"))  # gzipped content, same name
    adata = read_tcga(gdc["folder"], sample_sheet=gdc["sheet"])
    np.testing.assert_array_equal(adata.X, expected_star_X(SHEET_ORDER))

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="No GDC STAR gene-count file"):
        read_tcga(empty, sample_sheet=gdc["sheet"])
    with pytest.raises(ValueError, match="must be GDC STAR gene-count files"):
        read_tcga([path, gz(tmp_path / "m.tsv.gz", xena_text())], sample_sheet=gdc["sheet"])
    with pytest.raises(ValueError, match="unlog=True is for Xena matrices"):
        read_tcga(gdc["folder"], sample_sheet=gdc["sheet"], unlog=True)


# -- Xena --------------------------------------------------------------------------------------
def test_xena_gdc_hub_matrix_with_phenotype(xena):
    adata = read_tcga(xena["matrix"], xena["phenotype"])
    assert adata.obs_names.tolist() == XENA_SAMPLES
    assert adata.var_names.tolist() == XENA_GENES
    assert adata.var.columns.tolist() == ["gene_id"]
    expected = np.array(XENA_LOG, dtype=np.float32).T
    np.testing.assert_array_equal(adata.X, expected)  # kept as log2(x + 1)
    obs = adata.obs
    assert obs["project"].tolist() == ["TCGA-LUSC"] * 4
    assert obs["sample_type"].tolist() == [
        "Primary Tumor",
        "Solid Tissue Normal",
        "Primary Tumor",
        "Primary Tumor",
    ]
    assert obs["cancer"].tolist() == ["tumour", "normal", "tumour", "tumour"]
    np.testing.assert_array_equal(obs["age"].to_numpy(), [67, 67, np.nan, 71])
    assert obs["gender"].tolist()[:3] == ["male", "male", "female"]
    assert pd.isna(obs["gender"].iloc[3])  # "not reported"
    assert obs["gender"].cat.categories.tolist() == ["female", "male"]
    assert obs["additional_pharmaceutical_therapy"].tolist()[:2] == ["NO", "NO"]
    assert obs["tobacco_smoking_history"].tolist()[:3] == [4, 4, 2]
    assert adata.uns["sgs_reader"]["values"] == "log2(x+1)"
    assert adata.uns["sgs_reader"]["format"] == "xena_matrix"
    assert adata.uns["sgs_reader"]["clinical_columns"] == {
        "project": "project_id",
        "sample_type": "sample_type.samples",
        "age": "age_at_initial_pathologic_diagnosis",
        "gender": "gender.demographic",
    }

    unlogged = read_tcga(xena["matrix"], xena["phenotype"], unlog=True)
    np.testing.assert_allclose(unlogged.X, np.exp2(expected.astype(np.float64)) - 1, rtol=1e-6)
    assert unlogged.X[0, 0] == 2047  # 2**11 - 1
    assert unlogged.uns["sgs_reader"]["values"] == "unlogged (2**x - 1)"


def test_xena_project_from_file_name_and_argument(xena):
    adata = read_tcga(xena["matrix"])
    assert adata.obs["project"].tolist() == ["TCGA-LUSC"] * 4
    assert adata.obs["sample_type"].tolist()[1] == "Solid Tissue Normal"  # from the code
    assert read_tcga(xena["matrix"], project="TCGA-X").obs["project"].tolist() == ["TCGA-X"] * 4


def test_xena_htseq_counters_and_probemap(tmp_path):
    genes = [*XENA_GENES, "__no_feature", "__ambiguous", "__too_low_aQual", "__not_aligned"]
    values = [*XENA_LOG, *[["20.1", "19.8", "20.5", "20.0"]] * 4]
    matrix = gz(tmp_path / "TCGA-LUSC.htseq_counts.tsv.gz", xena_text(genes=genes, values=values))
    probemap = tmp_path / "gencode.v22.annotation.gene.probeMap"
    probemap.write_text(
        "id\tgene\tchrom\tchromStart\tchromEnd\tstrand\n"
        "ENSG00000000003.15\tTSPAN6\tchrX\t100627109\t100639991\t-\n"
        "ENSG00000000005.6\tTNMD\tchrX\t100584802\t100599885\t+\n"
        "ENSG00000000419.13\tDPM1\tchr20\t50934867\t50958555\t-\n"
    )
    adata = read_tcga(matrix, probemap=probemap, var_names="gene_symbol")
    assert adata.var_names.tolist() == ["TSPAN6", "TNMD", "DPM1"]
    assert adata.var.columns.tolist() == [
        "gene_id",
        "gene_symbol",
        "chrom",
        "chromStart",
        "chromEnd",
        "strand",
    ]
    assert adata.var["chromStart"].tolist() == [100627109, 100584802, 50934867]
    np.testing.assert_array_equal(adata.X, np.array(XENA_LOG, dtype=np.float32).T)

    picked = read_tcga(matrix, probemap=probemap, genes=["DPM1", "ENSG00000000003"])
    assert picked.var_names.tolist() == ["ENSG00000000003.15", "ENSG00000000419.13"]
    with pytest.raises(ValueError, match="names genes by Ensembl id only; pass its Xena probe"):
        read_tcga(matrix, var_names="gene_symbol")


def test_xena_legacy_hiseqv2_with_clinical_matrix(tmp_path):
    samples = [s[:15] for s in XENA_SAMPLES]  # legacy barcodes: no vial letter
    matrix = tmp_path / "HiSeqV2"
    matrix.write_text(xena_text(first="sample", samples=samples, genes=["TSPAN6", "TNMD", "DPM1"]))
    clinical = tmp_path / "LUSC_clinicalMatrix"
    clinical.write_text(
        "sampleID\t_PATIENT\tage_at_initial_pathologic_diagnosis\tgender\tsample_type\n"
        "TCGA-18-3406-01\tTCGA-18-3406\t67\tMALE\tPrimary Tumor\n"
        "TCGA-18-3406-11\tTCGA-18-3406\t67\tMALE\tSolid Tissue Normal\n"
        "TCGA-22-4593-01\tTCGA-22-4593\t[Not Available]\tFEMALE\tPrimary Tumor\n"
        "TCGA-85-8580-01\tTCGA-85-8580\t71\tMALE\tPrimary Tumor\n"
    )
    adata = read_tcga(matrix, clinical)
    assert adata.var_names.tolist() == ["TSPAN6", "TNMD", "DPM1"]
    assert adata.var.columns.tolist() == ["gene_symbol"]
    assert adata.obs_names.tolist() == samples
    assert adata.obs["gender"].tolist() == ["male", "male", "female", "male"]
    np.testing.assert_array_equal(adata.obs["age"].to_numpy(), [67, 67, np.nan, 71])
    assert adata.obs["_PATIENT"].tolist()[0] == "TCGA-18-3406"
    assert adata.obs["sample_type_code"].tolist() == ["01", "11", "01", "01"]
    assert adata.obs["project"].isna().all()

    # legacy barcodes also find a GDC hub table's vial-lettered ones
    gdc_style = gz(tmp_path / "TCGA-LUSC.GDC_phenotype.tsv.gz", PHENOTYPE)
    joined = read_tcga(matrix, gdc_style)
    np.testing.assert_array_equal(joined.obs["age"].to_numpy(), [67, 67, np.nan, 71])


def test_xena_newer_clinical_table(xena, tmp_path):
    clinical = tmp_path / "TCGA-LUSC.clinical.tsv"
    clinical.write_text(
        "sample\tid\tage_at_index.demographic\tgender.demographic\tsample_type.samples\t"
        "project_id.project\n"
        "TCGA-18-3406-01A\t1\t67\tmale\tPrimary Tumor\tTCGA-LUSC\n"
        "TCGA-18-3406-11A\t2\t67\tmale\tSolid Tissue Normal\tTCGA-LUSC\n"
        "TCGA-22-4593-01A\t3\t56\tfemale\tPrimary Tumor\tTCGA-LUSC\n"
        "TCGA-85-8580-01A\t4\t71\tmale\tPrimary Tumor\tTCGA-LUSC\n"
    )
    adata = read_tcga(xena["matrix"], clinical)
    np.testing.assert_array_equal(adata.obs["age"].to_numpy(), [67, 67, 56, 71])
    assert adata.uns["sgs_reader"]["clinical_columns"]["project"] == "project_id.project"
    assert adata.obs["id"].tolist() == [1, 2, 3, 4]


def test_cancer_from_sample_type_codes(tmp_path):
    samples = [
        "TCGA-AB-2803-03A",  # primary blood derived cancer
        "TCGA-18-3406-06A",  # metastatic
        "TCGA-18-3406-10A",  # blood derived normal
        "TCGA-18-3406-11A",  # solid tissue normal
        "TCGA-18-3406-20A",  # control analyte
        "TCGA-18-3406-50A",  # cell line
        "TCGA-18-3406-01A-11R-A29S-07",  # a whole aliquot barcode
    ]
    matrix = tmp_path / "m.tsv"
    matrix.write_text(xena_text(samples=samples, values=[["1"] * 7] * 3))
    obs = read_tcga(matrix).obs
    assert obs["sample_type_code"].tolist() == ["03", "06", "10", "11", "20", "50", "01"]
    assert obs["cancer"].tolist()[:5] == ["tumour", "tumour", "normal", "normal", "control"]
    assert pd.isna(obs["cancer"].iloc[5])
    assert obs["cancer"].iloc[6] == "tumour"
    assert obs["sample_type"].tolist()[:3] == [
        "Primary Blood Derived Cancer - Peripheral Blood",
        "Metastatic",
        "Blood Derived Normal",
    ]
    assert obs["patient_id"].tolist()[0] == "TCGA-AB-2803"


def test_samples_missing_from_clinical(xena, tmp_path, sgs_logs):
    phenotype = gz(
        tmp_path / "pheno.tsv.gz",
        "".join(line + "\n" for line in PHENOTYPE.splitlines() if "8580" not in line),
    )
    with pytest.raises(
        ValueError,
        match=r"1 of the 4 samples in the expression data are not in pheno\.tsv\.gz "
        r"\(column 'submitter_id\.samples'\): 'TCGA-85-8580-01A'.*missing='drop'",
    ):
        read_tcga(xena["matrix"], phenotype)
    dropped = read_tcga(xena["matrix"], phenotype, missing="drop")
    assert dropped.obs_names.tolist() == XENA_SAMPLES[:3]
    np.testing.assert_array_equal(dropped.X, np.array(XENA_LOG, dtype=np.float32).T[:3])
    kept = read_tcga(xena["matrix"], phenotype, missing="keep")
    assert kept.obs_names.tolist() == XENA_SAMPLES
    assert np.isnan(kept.obs["age"].iloc[3])
    assert kept.obs["cancer"].iloc[3] == "tumour"  # from the barcode all the same


def test_star_samples_missing_from_clinical_are_dropped_before_reading(gdc, tmp_path):
    clinical = tmp_path / "clinical.tsv"
    clinical.write_text(clinical_text(CLINICAL_ROWS[:2]))  # no TCGA-22-4593
    adata = read_tcga(gdc["folder"], clinical, sample_sheet=gdc["sheet"], missing="drop")
    assert adata.obs_names.tolist() == SHEET_ORDER[1:]
    np.testing.assert_array_equal(adata.X, expected_star_X(SHEET_ORDER[1:]))
    assert adata.obs["N_unmapped"].tolist() == [COUNTERS[s][0] for s in SHEET_ORDER[1:]]


def test_clinical_id_column(xena, tmp_path):
    table = tmp_path / "table.tsv"
    table.write_text("barcode\tage\nTCGA-18-3406-01A\t67\n")
    with pytest.raises(
        ValueError, match=r"table\.tsv has no sample or case id column: expected one of"
    ):
        read_tcga(xena["matrix"], table)
    adata = read_tcga(xena["matrix"], table, id_column="barcode", missing="keep")
    assert adata.obs["age_clinical"].tolist()[0] == 67  # 'age' is taken by the covariate
    assert adata.obs["age"].isna().all()  # a column named 'age' is not a known age column
    other = tmp_path / "other.tsv"
    other.write_text("barcode\tage\nTCGA-01-0001-01A\t50\n")
    with pytest.raises(
        ValueError,
        match=r"None of the 4 expression samples is in other\.tsv \(joined by sample on column "
        r"'barcode'\)\. Expression ids look like 'TCGA-18-3406-01A'",
    ):
        read_tcga(xena["matrix"], other, id_column="barcode", missing="keep")


def test_xena_bad_input(tmp_path, xena, gdc):
    twice = tmp_path / "twice.tsv"
    twice.write_text(xena_text(samples=[*XENA_SAMPLES[:3], XENA_SAMPLES[0]]))
    with pytest.raises(ValueError, match=r"1 duplicated sample column\(s\): 'TCGA-18-3406-01A'"):
        read_tcga(twice)
    transposed = tmp_path / "t.tsv"
    transposed.write_text(
        "sample\tENSG00000000003.15\tENSG00000000005.6\nTCGA-18-3406-01A\t1\t2\n"
    )
    with pytest.raises(ValueError, match="its columns are genes"):
        read_tcga(transposed)
    one = tmp_path / "one.csv"
    one.write_text("Ensembl_ID,TCGA-18-3406-01A\nENSG00000000003.15,1\n")
    with pytest.raises(ValueError, match="has one column"):
        read_tcga(one)
    text = tmp_path / "text.tsv"
    text.write_text(xena_text().replace("9.5", "high"))
    with pytest.raises(ValueError, match="could not read the values as numbers"):
        read_tcga(text)
    negative = tmp_path / "neg.tsv"
    negative.write_text(xena_text().replace("9.5", "-9.97"))
    with pytest.raises(ValueError, match=r"negative values, so it is not log2\(x \+ 1\)"):
        read_tcga(negative, unlog=True)
    with pytest.raises(ValueError, match="value= picks a column of GDC STAR files"):
        read_tcga(xena["matrix"], value="unstranded")
    with pytest.raises(ValueError, match="sample_sheet= maps GDC STAR files"):
        read_tcga(xena["matrix"], sample_sheet=gdc["sheet"])
    with pytest.raises(FileNotFoundError, match="No expression file at"):
        read_tcga(tmp_path / "absent.tsv")


# -- side effects ------------------------------------------------------------------------------
def _listing(folder: Path) -> dict:
    return {
        p.relative_to(folder): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_reader_writes_nothing(gdc, xena, tmp_path, monkeypatch):
    clinical = tmp_path / "clinical.tsv"
    clinical.write_text(clinical_text())
    before = _listing(tmp_path)
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
        read_tcga(gdc["folder"], clinical, sample_sheet=gdc["sheet"])
        read_tcga(xena["matrix"], xena["phenotype"], missing="drop", unlog=True)
    finally:
        os.chdir(cwd)
    monkeypatch.undo()
    assert _listing(tmp_path) == before


def test_tables_as_dataframes_are_not_modified(xena):
    phenotype = pd.read_csv(xena["phenotype"], sep="\t")
    before = phenotype.copy()
    adata = read_tcga(xena["matrix"], phenotype, missing="drop")
    pd.testing.assert_frame_equal(phenotype, before)
    assert adata.obs["gender"].tolist()[:3] == ["male", "male", "female"]


def test_result_writes_to_h5ad(gdc, tmp_path):
    clinical = tmp_path / "clinical.tsv"
    clinical.write_text(clinical_text())
    adata = read_tcga(gdc["folder"], clinical, sample_sheet=gdc["sheet"])
    path = tmp_path / "out.h5ad"
    adata.write_h5ad(path)
    back = ad.read_h5ad(path)
    np.testing.assert_array_equal(back.X, adata.X)
    pd.testing.assert_frame_equal(back.obs, adata.obs)
    assert back.uns["sgs_reader"]["gene_model"] == "GENCODE v36"


def test_logs_what_it_read(xena, sgs_logs):
    with sgs_logs() as logs:
        read_tcga(xena["matrix"])
    messages = [r.getMessage() for r in logs if r.levelno == logging.INFO]
    assert "Read 4 samples x 3 genes from TCGA-LUSC.star_counts.tsv.gz (log2(x+1))." in messages


# -- real data ---------------------------------------------------------------------------------
def test_real_lusc_barcodes_give_the_cancer_labels(tmp_path):
    """517 real TCGA-LUSC legacy barcodes: the code-derived labels match the bundled set's."""
    import scgensynth as sgs

    real = sgs.datasets.tcga_lusc()
    matrix = pd.DataFrame(real.X.T, index=real.var_names, columns=real.obs_names)
    path = tmp_path / "HiSeqV2.gz"
    with gzip.open(path, "wt") as handle:
        matrix.to_csv(handle, sep="\t", index_label="sample", float_format="%.9g")
    adata = read_tcga(path)
    assert adata.obs_names.tolist() == real.obs_names.tolist()
    np.testing.assert_array_equal(adata.X, real.X)
    assert adata.obs["cancer"].tolist() == real.obs["cancer"].tolist()
    assert adata.obs["sample_type_code"].tolist() == real.obs["sample_type_code"].tolist()
    assert adata.obs["sample_type"].value_counts().to_dict() == {
        "Primary Tumor": 472,
        "Solid Tissue Normal": 45,
    }


def test_real_acc_aliquot_barcodes_with_gdc_clinical(tmp_path):
    """79 real TCGA-ACC aliquot barcodes joined per case to a clinical.tsv of their covariates."""
    import scgensynth as sgs

    real = sgs.datasets.tcga_acc()
    matrix = pd.DataFrame(real.X.T, index=real.var_names, columns=real.obs_names)
    path = tmp_path / "TCGA-ACC.matrix.tsv"
    matrix.to_csv(path, sep="\t", index_label="gene", float_format="%.9g")
    cases = pd.DataFrame(
        {
            "case_id": [f"uuid-{i}" for i in range(real.n_obs)],
            "case_submitter_id": real.obs["patientID"].astype(str).to_numpy(),
            "project_id": "TCGA-ACC",
            "age_at_index": real.obs["years_to_birth"].to_numpy(),
            "gender": real.obs["gender"].astype(str).to_numpy(),
            "race": real.obs["race"]
            .astype(object)
            .where(real.obs["race"].notna(), "'--")
            .to_numpy(),
        }
    )
    clinical = tmp_path / "clinical.tsv"
    cases.iloc[::-1].to_csv(clinical, sep="\t", index=False)
    adata = read_tcga(path, clinical)
    np.testing.assert_array_equal(adata.X, real.X)
    assert adata.obs["patient_id"].tolist() == real.obs["patientID"].tolist()
    assert adata.obs["age"].tolist() == real.obs["years_to_birth"].astype(float).tolist()
    assert adata.obs["gender"].tolist() == real.obs["gender"].tolist()
    assert adata.obs["project"].unique().tolist() == ["TCGA-ACC"]
    assert (adata.obs["cancer"] == "tumour").all()
    assert adata.obs["race"].isna().sum() == real.obs["race"].isna().sum() == 11


# -- the per-format readers --------------------------------------------------------------------
def _same_result(left: ad.AnnData, right: ad.AnnData) -> None:
    np.testing.assert_array_equal(left.X, right.X)
    pd.testing.assert_frame_equal(left.obs, right.obs)
    pd.testing.assert_frame_equal(left.var, right.var)
    records = [{**a.uns["sgs_reader"], "reader": None} for a in (left, right)]
    assert records[0] == records[1]


def test_star_reader_reads_what_read_tcga_reads(gdc, tmp_path):
    clinical = tmp_path / "clinical.tsv"
    clinical.write_text(clinical_text())
    options = {"sample_sheet": gdc["sheet"], "genes": ["TSPAN6", "ENSG00000000419"]}
    star = read_tcga_star(gdc["folder"], clinical, **options)
    _same_result(star, read_tcga(gdc["folder"], clinical, **options))
    assert star.uns["sgs_reader"]["reader"] == "read_tcga_star"
    assert star.var_names.tolist() == ["ENSG00000000003.15", "ENSG00000000419.13"]
    one = read_tcga_star(gdc["files"]["TCGA-18-3406-11A"], sample_sheet=gdc["sheet"])
    assert one.obs_names.tolist() == ["TCGA-18-3406-11A"]


def test_xena_reader_reads_what_read_tcga_reads(xena):
    xena_only = read_tcga_xena(xena["matrix"], xena["phenotype"], missing="drop", unlog=True)
    both = read_tcga(xena["matrix"], xena["phenotype"], missing="drop", unlog=True)
    _same_result(xena_only, both)
    assert xena_only.uns["sgs_reader"]["reader"] == "read_tcga_xena"
    assert xena_only.uns["sgs_reader"]["values"] == "unlogged (2**x - 1)"


def test_each_reader_refuses_the_other_kind_of_file(gdc, xena):
    star_file = gdc["files"]["TCGA-18-3406-01A"]
    with pytest.raises(ValueError, match="is a GDC STAR gene-count file, not a Xena matrix"):
        read_tcga_xena(star_file)
    with pytest.raises(ValueError, match="is not a GDC STAR gene-count file"):
        read_tcga_star(xena["matrix"], sample_sheet=gdc["sheet"])
    with pytest.raises(ValueError, match="must be GDC STAR gene-count files"):
        read_tcga_star([star_file, xena["matrix"]], sample_sheet=gdc["sheet"])
    with pytest.raises(ValueError, match="pass the sample sheet of the same GDC cart"):
        read_tcga_star(gdc["folder"], sample_sheet=None)
    with pytest.raises(TypeError, match="sample_sheet"):
        read_tcga_star(gdc["folder"])  # a required keyword: no STAR file reads without it
    with pytest.raises(ValueError, match="missing must be"):
        read_tcga_xena(xena["matrix"], missing="ignore")


def test_per_format_readers_are_public():
    import scgensynth as sgs

    assert sgs.io.read_tcga_star is read_tcga_star
    assert sgs.io.read_tcga_xena is read_tcga_xena
    assert {"read_tcga_star", "read_tcga_xena"} <= set(sgs.io.__all__)
