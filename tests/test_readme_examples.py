"""README code blocks run as written against the bundled data."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import scanpy as sc

import scgensynth as sgs

matplotlib.use("Agg")

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(heading: str) -> str:
    """The first ```python block after ``heading`` in the README."""
    text = README.read_text()
    start = text.index(heading)
    match = re.search(r"```python\n(.*?)```", text[start:], flags=re.DOTALL)
    assert match, f"no python block after {heading!r}"
    return match.group(1)


def test_tspg_example_runs_as_written(monkeypatch):
    """The TSPG block: symbols of the bundled GTEx set match the gene set it names."""
    train_tspg = sgs.tl.train_tspg

    def shorter(*args, **kwargs):  # the same calls, with fewer steps (the suite's budget)
        kwargs.setdefault("classifier_steps", 150)
        kwargs.setdefault("n_steps", 150)
        kwargs.setdefault("enable_progress_bar", False)
        return train_tspg(*args, **kwargs)

    monkeypatch.setattr(sgs.tl, "train_tspg", shorter)
    namespace = {"sgs": sgs, "sc": sc}
    exec(readme_block("### TSPG: moving real samples"), namespace)
    liver, hepatic = namespace["liver"], namespace["hepatic_model"]
    assert set(liver.obs["source"]) == {"Lung", "Brain"}
    assert set(liver.var_names) == set(sgs.datasets.gtex_tissues().var_names)
    ranked = sc.get.rank_genes_groups_df(liver, "Lung")
    assert not ranked["names"].str.startswith("entrez_").any()  # symbols in rankings
    genes = ["HNF1A", "HNF4A", "FOXA1", "FOXA2", "ONECUT1", "NR1H4", "PROX1"]
    assert hepatic.gene_set_ == genes
