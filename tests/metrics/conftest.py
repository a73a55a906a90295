"""Real-data fixtures shared by the metric tests."""

from __future__ import annotations

import numpy as np
import pytest

import scgensynth as sgs


@pytest.fixture(scope="module")
def gtex():
    """The bundled GTEx set (520 samples, 26 tissues x 20), one per test module."""
    return sgs.datasets.gtex_tissues()


@pytest.fixture(scope="module")
def split(gtex):
    """Stratified GTEx split: train 16 per tissue (416), test 4 per tissue (104)."""
    rng = np.random.default_rng(0)
    tissue = gtex.obs["tissue"]
    test_idx = np.concatenate(
        [rng.choice(np.flatnonzero(tissue == t), 4, replace=False) for t in tissue.cat.categories]
    )
    train_idx = np.setdiff1d(np.arange(gtex.n_obs), test_idx)
    return gtex[train_idx].copy(), gtex[test_idx].copy()


@pytest.fixture(scope="module")
def shuffled(split):
    """The test split with each gene's column permuted independently (marginals kept)."""
    out = split[1].copy()
    out.X = np.random.default_rng(1).permuted(out.X, axis=0)
    return out
