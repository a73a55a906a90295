"""Fixtures shared by the model tests."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

import scgensynth as sgs


@pytest.fixture(scope="module")
def gtex_split():
    """The bundled GTEx set split 70/30, stratified by tissue (seed 0), rows in input order."""
    adata = sgs.datasets.gtex_tissues()
    idx_train, idx_test = train_test_split(
        np.arange(adata.n_obs), test_size=0.3, stratify=adata.obs["tissue"], random_state=0
    )
    return adata[np.sort(idx_train)].copy(), adata[np.sort(idx_test)].copy()
