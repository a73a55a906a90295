"""Metrics on large or backed synthetic sets: read in blocks, same values as in memory."""

from __future__ import annotations

import tracemalloc

import anndata as ad
import numpy as np
import pytest

import scgensynth as sgs
from scgensynth.metrics import _utils

M = sgs.metrics


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """GTEx (real) and a noisy copy three times its size, in memory and backed on disk."""
    real = sgs.datasets.gtex_tissues()
    rng = np.random.default_rng(0)
    rows = rng.integers(0, real.n_obs, 3 * real.n_obs)
    obs = real.obs.iloc[rows].reset_index(drop=True)
    obs.index = [f"s{i}" for i in range(len(rows))]
    noise = rng.normal(0, 0.3, (len(rows), real.n_vars)).astype(np.float32)
    synth = ad.AnnData(X=real.X[rows] + noise, obs=obs, var=real.var.copy())
    path = tmp_path_factory.mktemp("streaming") / "synth.h5ad"
    synth.write_h5ad(path)
    return real, synth, path


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of ~100 rows of 467 genes, so every synthetic set is read in many blocks."""
    monkeypatch.setattr(_utils, "BLOCK_BYTES", 100 * 467 * 8)


STREAMED = {
    "frechet_pca": lambda r, s: M.frechet_distance(r, s),
    "frechet_genes": lambda r, s: M.frechet_distance(r, s, embedding=None),
    "frechet_classifier": lambda r, s: M.frechet_distance(
        r, s, embedding="classifier", labels_key="tissue", classifier_kwargs={"epochs": 3}
    ),
    "rem_cv": lambda r, s: M.reconstruction_error(r, s, n_components=20)["synthetic"],
    "rem_no_cv": lambda r, s: M.reconstruction_error(r, s, n_components=20, cv=None)["synthetic"],
    "correlation_score": lambda r, s: M.correlation_score(r, s, max_genes=200),
    "s_dend": lambda r, s: M.s_dend(r, s, max_genes=200),
    "mean_correlation": lambda r, s: M.mean_correlation(r, s),
    "precision_recall_pca": lambda r, s: list(
        M.precision_recall(r, s, k=5, n_components=20).values()
    ),
}


@pytest.mark.parametrize("name", list(STREAMED))
def test_streamed_metrics_equal_their_in_memory_values(name, pair, monkeypatch):
    real, synth, path = pair
    expected = STREAMED[name](real, synth)  # one block: the in-memory computation
    monkeypatch.setattr(_utils, "BLOCK_BYTES", 100 * 467 * 8)
    backed = ad.read_h5ad(path, backed="r")
    np.testing.assert_allclose(STREAMED[name](real, backed), expected, rtol=1e-9, atol=1e-9)
    # genes in another order are matched by name, block by block
    shuffled = synth[:, np.random.default_rng(1).permutation(synth.n_vars)].copy()
    np.testing.assert_allclose(STREAMED[name](real, shuffled), expected, rtol=1e-9, atol=1e-9)


@pytest.fixture(scope="module")
def growing(tmp_path_factory):
    """Real (300 x 500) and backed synthetic sets of 12,000 and 24,000 x 500."""
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(5, 500))
    real = rng.normal(size=(300, 5)) @ basis + rng.normal(size=(300, 500))
    folder = tmp_path_factory.mktemp("growing")
    sets = []
    for n in (12_000, 24_000):
        synth = ad.AnnData(np.empty((n, 500), dtype=np.float32))
        for start in range(0, n, 4000):
            noise = rng.normal(size=(4000, 500))
            synth.X[start : start + 4000] = rng.normal(size=(4000, 5)) @ basis + noise
        synth.write_h5ad(folder / f"{n}.h5ad")
        sets.append(folder / f"{n}.h5ad")
    return real, sets


@pytest.mark.parametrize(
    "metric",
    [
        lambda r, s: M.frechet_distance(r, s),
        lambda r, s: M.frechet_distance(r, s, embedding=None),
        lambda r, s: M.reconstruction_error(r, s, n_components=5),
        lambda r, s: M.correlation_score(r, s, max_genes=100),
        lambda r, s: M.mean_correlation(r, s),
        lambda r, s: M.precision_recall(r, s, k=5, n_components=10),
    ],
    ids=["frechet_pca", "frechet_genes", "rem", "correlation_score", "mean", "pr_pca"],
)
def test_streamed_metrics_need_memory_for_blocks_not_for_the_matrix(metric, growing, monkeypatch):
    """A backed set read in 1 MB blocks: memory grows with per-sample numbers, not rows.

    Doubling it from 12,000 to 24,000 x 500 (+48 MB in float64, 4 KB a row) may add
    per-sample numbers (errors, a 10-d embedding and its neighbour search) but not the rows:
    less than 1 KB a sample (a row of 20,000 genes is 160 KB).
    """
    real, paths = growing
    monkeypatch.setattr(_utils, "BLOCK_BYTES", 2**20)
    peaks = []
    for path in paths:
        backed = ad.read_h5ad(path, backed="r")
        tracemalloc.start()
        metric(real, backed)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    added = 12_000 * 500 * 8
    assert (peaks[1] - peaks[0]) / 12_000 < 1024, peaks
    # loading it whole would have needed the matrix itself
    tracemalloc.start()
    _utils.get_values(backed)
    assert tracemalloc.get_traced_memory()[1] >= 2 * added
    tracemalloc.stop()


def test_evaluate_on_a_backed_set_equals_evaluate_in_memory(pair, small_blocks):
    real, synth, path = pair
    backed = ad.read_h5ad(path, backed="r")
    kw = {"labels_key": "tissue", "metrics": "fast", "seed": 0, "key_added": None}
    a = M.evaluate(real, backed, **kw)
    b = M.evaluate(real, synth, **kw)
    assert a[["metric", "group", "params"]].equals(b[["metric", "group", "params"]])
    np.testing.assert_allclose(a["value"], b["value"], rtol=1e-9)
    assert len(a) > 15


def test_a_bad_value_in_a_late_block_is_found_with_its_row(pair, small_blocks, tmp_path):
    real, synth, _ = pair
    bad = synth.copy()
    bad.X[1234, 5] = np.nan
    bad.X[1500, 7] = np.inf
    bad.write_h5ad(tmp_path / "bad.h5ad")
    backed = ad.read_h5ad(tmp_path / "bad.h5ad", backed="r")
    message = r"2 NaN or infinite values in 2 samples \(first rows: \[1234, 1500\]\)"
    for fn in (M.frechet_distance, M.mean_correlation, M.evaluate):
        with pytest.raises(ValueError, match=message):
            fn(real, backed)


def test_get_values_reads_backed_dense_and_sparse_without_changing_them(pair, tmp_path):
    from scipy import sparse

    _, synth, path = pair
    as_sparse = synth.copy()
    as_sparse.X = sparse.csr_matrix(np.where(synth.X > 1, synth.X, 0))
    as_sparse.write_h5ad(tmp_path / "sparse.h5ad")
    for file, expected in ((path, synth.X), (tmp_path / "sparse.h5ad", as_sparse.X.toarray())):
        backed = ad.read_h5ad(file, backed="r")
        for dtype in (np.float64, None):
            values = _utils.get_values(backed, dtype=dtype)
            assert values.dtype == (np.float32 if dtype is None else np.float64)
            np.testing.assert_array_equal(values, expected)
    # an in-memory float32 array of the right dtype is returned as it is, not copied
    X = np.asarray(synth.X)
    assert _utils.get_values(X, dtype=None) is X


def test_streamed_correlations_check_their_arguments_and_constant_genes(pair, monkeypatch):
    real, synth, path = pair
    # genes constant in the synthetic set are dropped as in memory (one block), across blocks
    flat = synth.copy()
    flat.X[:, :400] = 1.0
    expected = M.correlation_score(real, flat)
    flat.write_h5ad(path.parent / "flat.h5ad")
    monkeypatch.setattr(_utils, "BLOCK_BYTES", 100 * 467 * 8)
    streamed = M.correlation_score(real, ad.read_h5ad(path.parent / "flat.h5ad", backed="r"))
    np.testing.assert_allclose(streamed, expected, rtol=1e-9)
    backed = ad.read_h5ad(path, backed="r")
    for bad in (2, 2.5, "100", True):
        with pytest.raises(ValueError, match="max_genes must be None or an integer >= 3"):
            M.correlation_score(real, backed, max_genes=bad)
