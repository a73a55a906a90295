"""Scaling: ``scaling="counts"`` on values that are not counts is said, with what to pass."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pytest
from scipy import sparse

import scgensynth as sgs

COUNTS_SET = "/work/shared/data/gtex_muscle_gwena.h5ad"
WARNING = "scaling='counts' expects raw counts"


@pytest.fixture(scope="module")
def counts():
    """30 samples x 500 expressed genes of GTEx muscle read counts."""
    adata = ad.read_h5ad(COUNTS_SET)[:30]
    X = np.asarray(adata.X)
    return adata[:, np.flatnonzero((X > 0).all(0))[:500]].copy()


def _log_normalised(adata: ad.AnnData) -> ad.AnnData:
    """What ``sc.pp.normalize_total(target_sum=1e4)`` then ``sc.pp.log1p`` give."""
    out = adata.copy()
    X = np.asarray(out.X, dtype=np.float64)
    out.X = np.log1p(X / X.sum(1, keepdims=True) * 1e4).astype(np.float32)
    return out


def _tpm_like(adata: ad.AnnData) -> ad.AnnData:
    out = adata.copy()
    X = np.asarray(out.X, dtype=np.float64)
    out.X = (X / X.sum(1, keepdims=True) * 1e6).astype(np.float32)
    return out


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if WARNING in r.getMessage()]


def test_counts_on_log_normalised_values_warn_and_say_what_to_pass(counts, caplog):
    logged = _log_normalised(counts)
    with caplog.at_level(logging.WARNING, logger="scgensynth"):
        stats = sgs.pp.fit_scaling(logged, "counts")
    (message,) = _warnings(caplog)
    assert "are not integers" in message
    assert "log-scale values" in message
    assert "scaling='standardize'" in message
    assert "largest value" in message
    assert stats["mode"] == "counts"  # a warning, not an error: the user chose it


def test_counts_on_tpm_like_values_point_to_log1p(counts, caplog):
    with caplog.at_level(logging.WARNING, logger="scgensynth"):
        sgs.pp.fit_scaling(_tpm_like(counts), "counts")
    (message,) = _warnings(caplog)
    assert "TPM" in message
    assert "scaling='log1p'" in message


def test_a_model_given_counts_for_log_values_warns_once_per_model(counts, caplog, tmp_path):
    logged = _log_normalised(counts)
    with caplog.at_level(logging.WARNING, logger="scgensynth"):
        model = sgs.tl.train(logged, scaling="counts")
        model.save(tmp_path / "m")
        for _ in range(2):  # loading rebuilds the scaling: it warned when it was trained
            type(model).load(tmp_path / "m", adata=logged)
    assert model.scaling_["mode"] == "counts"
    assert len(_warnings(caplog)) == 1


@pytest.mark.parametrize("scaling", ["counts", "auto"])
def test_raw_counts_do_not_warn(counts, caplog, scaling):
    with caplog.at_level(logging.WARNING, logger="scgensynth"):
        model = sgs.tl.train(counts, scaling=scaling)
        sgs.pp.fit_scaling(ad.AnnData(sparse.csr_matrix(counts.X)), "counts")
    assert model.scaling_["mode"] == "counts"
    assert _warnings(caplog) == []


def test_other_scalings_do_not_check_for_integers(counts, caplog):
    with caplog.at_level(logging.WARNING, logger="scgensynth"):
        sgs.pp.fit_scaling(_log_normalised(counts), "standardize")
        sgs.pp.fit_scaling(_tpm_like(counts), "log1p")
    assert _warnings(caplog) == []
