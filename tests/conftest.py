"""Shared fixtures: bundled datasets, a small trained model, AnnData snapshots, log capture."""

from __future__ import annotations

import os

# numba (scanpy's Wilcoxon test, UMAP) resets torch's thread count to its own when it first
# runs in parallel; one numba thread keeps the one-thread setting below in force.
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import sparse
from threadpoolctl import threadpool_limits

import scgensynth as sgs

# Test data are small: with several threads, torch and BLAS (scikit-learn's logistic
# regressions) spend most of their time synchronising threads, 10-25x slower when other
# processes share the two CI cores. One thread each keeps the suite fast and steady.
torch.set_num_threads(1)
_BLAS_LIMITS = threadpool_limits(limits=1)

#: settings of every model trained for these tests (quality is tested elsewhere)
FAST = {"n_hidden": (64, 64), "enable_progress_bar": False}


# -- AnnData snapshots ------------------------------------------------------------------------
def _dense(X) -> np.ndarray:
    return X.toarray() if sparse.issparse(X) else np.asarray(X)


class AnnDataSnapshot:
    """A deep copy of an AnnData's user-visible parts, to check a call left them alone."""

    def __init__(self, adata: ad.AnnData):
        self.X_is_sparse = sparse.issparse(adata.X)
        self.X_format = adata.X.format if self.X_is_sparse else None
        self.X_dtype = None if adata.X is None else adata.X.dtype
        self.X = None if adata.X is None else _dense(adata.X).copy()
        self.obs = adata.obs.copy(deep=True)
        self.var = adata.var.copy(deep=True)
        self.obs_names = adata.obs_names.copy()
        self.var_names = adata.var_names.copy()
        self.layers = {k: _dense(v).copy() for k, v in adata.layers.items()}
        self.obsm = set(adata.obsm.keys())
        self.varm = set(adata.varm.keys())
        self.obsp = set(adata.obsp.keys())
        self.uns = set(adata.uns.keys())

    def assert_unchanged(self, adata: ad.AnnData, *, new_uns: tuple[str, ...] = ()) -> None:
        """Assert ``adata`` equals the snapshot; ``new_uns``: ``.uns`` keys allowed to appear."""
        assert adata.shape == (len(self.obs_names), len(self.var_names))
        assert sparse.issparse(adata.X) == self.X_is_sparse, "X changed between dense/sparse"
        if self.X_is_sparse:
            assert adata.X.format == self.X_format
        if self.X is None:
            assert adata.X is None
        else:
            assert adata.X.dtype == self.X_dtype
            np.testing.assert_array_equal(_dense(adata.X), self.X)  # NaN == NaN here
        pd.testing.assert_frame_equal(adata.obs, self.obs, check_exact=True)
        pd.testing.assert_frame_equal(adata.var, self.var, check_exact=True)
        pd.testing.assert_index_equal(adata.obs_names, self.obs_names)
        pd.testing.assert_index_equal(adata.var_names, self.var_names)
        assert set(adata.layers.keys()) == set(self.layers)
        for key, values in self.layers.items():
            np.testing.assert_array_equal(_dense(adata.layers[key]), values)
        assert set(adata.obsm.keys()) == self.obsm, "obsm keys changed"
        assert set(adata.varm.keys()) == self.varm, "varm keys changed"
        assert set(adata.obsp.keys()) == self.obsp, "obsp keys changed"
        assert set(adata.uns.keys()) == self.uns | set(new_uns), "uns keys changed"


@pytest.fixture
def fast() -> dict:
    """Keyword arguments of ``train_wgan`` for quick models (copy; add n_steps etc.)."""
    return dict(FAST)


@pytest.fixture
def snapshot():
    """``snap = snapshot(adata)`` ... ``snap.assert_unchanged(adata)``."""
    return AnnDataSnapshot


# -- log capture ------------------------------------------------------------------------------
# The 'scgensynth' logger propagates (caplog sees its records too), but until
# ``sgs.settings.verbosity`` is set it logs warnings only: the capture lowers it to INFO.
class _ListHandler(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def capture_sgs_logs() -> Iterator[list[logging.LogRecord]]:
    """Collect the records of the 'scgensynth' logger (and its children) in a list.

    Records INFO and up (DEBUG too where a test asked for it), whatever the verbosity.
    """
    handler = _ListHandler()
    logger = logging.getLogger("scgensynth")
    level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def sgs_logs():
    """The :func:`capture_sgs_logs` context manager."""
    return capture_sgs_logs


# -- datasets (fresh objects per test: tests may modify them) ---------------------------------
@pytest.fixture
def gtex() -> ad.AnnData:
    return sgs.datasets.gtex_tissues()


@pytest.fixture
def bladderbatch() -> ad.AnnData:
    """57 bladder samples x 22,283 probe sets (tests/data/README.md), obs cancer/outcome/batch."""
    from pathlib import Path

    return ad.read_h5ad(Path(__file__).parent / "data" / "bladderbatch.h5ad")


@pytest.fixture(scope="module")
def three_tissues() -> ad.AnnData:
    """GTEx's Liver, Lung and Blood samples (60), for short training runs."""
    gtex = sgs.datasets.gtex_tissues()
    small = gtex[gtex.obs["tissue"].isin(["Liver", "Lung", "Blood"])].copy()
    small.obs["tissue"] = small.obs["tissue"].cat.remove_unused_categories()
    return small


@pytest.fixture
def tcga_lusc() -> ad.AnnData:
    return sgs.datasets.tcga_lusc()


@pytest.fixture
def tcga_acc() -> ad.AnnData:
    return sgs.datasets.tcga_acc()


@pytest.fixture
def pbmc() -> ad.AnnData:
    """Log-normalised PBMCs shipped with scanpy: sparse CSR, non-negative (700 x 765)."""
    import scanpy as sc

    return sc.datasets.pbmc68k_reduced().raw.to_adata()


# -- one small trained model shared by the session --------------------------------------------
@pytest.fixture(scope="session")
def gtex_model():
    """WGAN-GP trained briefly on the bundled GTEx set, conditioned on tissue.

    Returns a namespace with ``model``, ``adata`` (the AnnData it was trained on, after
    training), ``before`` (an :class:`AnnDataSnapshot` taken before training) and ``logs``
    (the 'scgensynth' log records emitted while training).
    """
    adata = sgs.datasets.gtex_tissues()
    before = AnnDataSnapshot(adata)
    with capture_sgs_logs() as logs:
        model = sgs.tl.train_wgan(
            adata, categorical_covariate_keys=["tissue"], n_steps=200, seed=0, **FAST
        )
    return SimpleNamespace(model=model, adata=adata, before=before, logs=list(logs))


@pytest.fixture(scope="session")
def gtex_model_dir(gtex_model, tmp_path_factory):
    """The session model saved to a folder."""
    path = tmp_path_factory.mktemp("gtex_model") / "model"
    gtex_model.model.save(str(path))
    return path


class SafetensorsHeader:
    """Read and rewrite the JSON header of a ``.safetensors`` model file (damaged-file tests)."""

    @staticmethod
    def read(path) -> tuple[dict, bytes]:
        """``(header, the bytes after it)``."""
        import json
        import struct

        raw = Path(path).read_bytes()
        (n,) = struct.unpack("<Q", raw[:8])
        return json.loads(raw[8 : 8 + n]), raw[8 + n :]

    @staticmethod
    def write(path, header: dict, data: bytes) -> None:
        """Write ``header`` (padded to 8 bytes, as safetensors does) followed by ``data``."""
        import json
        import struct

        blob = json.dumps(header).encode()
        blob += b" " * (-len(blob) % 8)
        Path(path).write_bytes(struct.pack("<Q", len(blob)) + blob + data)


@pytest.fixture(scope="session")
def safetensors_header() -> type[SafetensorsHeader]:
    """Reading and rewriting a model file's header, shared by the damaged-file tests."""
    return SafetensorsHeader
