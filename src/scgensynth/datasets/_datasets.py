from __future__ import annotations

from importlib import resources

import anndata as ad

_FILES = {
    "gtex_tissues": "gtex_26tissues_sepira",
    "tcga_lusc": "tcga_lusc_sepira",
    "tcga_acc": "tcga_acc_mini",
}


def available() -> dict[str, str]:
    """Names of the bundled datasets and the first line of each one's source note.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> sorted(sgs.datasets.available())
    ['gtex_tissues', 'tcga_acc', 'tcga_lusc']
    """
    out = {}
    for name, stem in _FILES.items():
        note = resources.files(__package__).joinpath("data", f"{stem}.README.txt").read_text()
        out[name] = note.splitlines()[0]
    return out


def load(name: str) -> ad.AnnData:
    """Load a bundled dataset by name (see :func:`available`).

    Returns a fresh AnnData each call, so it can be modified freely.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> sgs.datasets.load("tcga_acc").shape
    (79, 198)
    """
    if name not in _FILES:
        msg = f"Unknown dataset {name!r}; bundled datasets are {sorted(_FILES)}."
        raise ValueError(msg)
    path = resources.files(__package__).joinpath("data", f"{_FILES[name]}.h5ad")
    with resources.as_file(path) as p:
        adata = ad.read_h5ad(p)
    adata.uns["sgs_dataset"] = name
    return adata


def gtex_tissues() -> ad.AnnData:
    """GTEx multi-tissue subset: 520 samples (20 from each of 26 tissues) x 467 genes.

    Values look like log2(RPKM + 1) (0-12.8); ``obs["tissue"]``. Genes (mostly
    transcription factors) are named by their HGNC symbols; ``var["entrez_id"]`` holds the
    NCBI Gene id and ``var["gene_ids"]`` the source's id (``entrez_<id>``). Source: the
    SEPIRA R package (GitHub YC3/SEPIRA, ``data/GeneExp.rda``), GPL-3.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> adata = sgs.datasets.gtex_tissues()
    >>> adata.shape
    (520, 467)
    """
    return load("gtex_tissues")


def tcga_lusc() -> ad.AnnData:
    """TCGA lung squamous cell carcinoma subset: 517 samples x 391 genes (per-gene z-scores).

    ``obs["cancer"]``: 472 ``"tumour"`` / 45 ``"normal"`` (from the barcode's sample-type
    code, also in ``obs["sample_type_code"]``). Genes by HGNC symbol, with ``var["entrez_id"]``
    and ``var["gene_ids"]`` as in :func:`gtex_tissues`. Source: SEPIRA
    (``data/LUSCexp.rda``), GPL-3.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> sgs.datasets.tcga_lusc().obs["cancer"].value_counts().to_dict()
    {'tumour': 472, 'normal': 45}
    """
    return load("tcga_lusc")


def tcga_acc() -> ad.AnnData:
    """TCGA adrenocortical carcinoma (miniACC): 79 tumours x 198 genes, with clinical covariates.

    Upper-quartile normalised RSEM values (not logged); ``obs`` has age
    (``years_to_birth``), ``gender``, ``race``, ``pathologic_stage``, ``vital_status`` and
    more; missing values are ``NaN`` (not an ``"NA"`` category). Genes by HGNC symbol, with
    ``var["entrez_id"]`` and ``var["gene_ids"]``. Source: Bioconductor MultiAssayExperiment
    (``miniACC``), Artistic-2.0.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> sgs.datasets.tcga_acc().shape
    (79, 198)
    """
    return load("tcga_acc")
