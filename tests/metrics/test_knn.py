"""The chunked float32 neighbour engine equals a float64 brute force, ties included."""

from __future__ import annotations

import numpy as np
import pytest

from scgensynth.metrics import _knn


def _brute(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    A, B = A.astype(np.float64), B.astype(np.float64)
    return ((A[:, None, :] - B[None, :, :]) ** 2).sum(-1)


def _case(seed: int, ties: bool):
    rng = np.random.default_rng(seed)
    n, m, p = rng.integers(20, 150), rng.integers(20, 150), rng.integers(2, 300)
    if ties:
        # small integers far from 0: exact float64 arithmetic, many equal distances and copies
        A = rng.integers(0, 3, (n, p)).astype(np.float32) + 100
        B = rng.integers(0, 3, (m, p)).astype(np.float32) + 100
        h = min(n, m) // 2
        B[:h] = A[:h]
        A[1] = A[0]
    else:
        A = (rng.standard_normal((n, p)) * 3 + 10).astype(np.float32)
        B = (rng.standard_normal((m, p)) * 3 + 10.5).astype(np.float32)
    return A, B


def _check(A, B, *, k, block_rows, inflate=1.0, exact=True):
    a, b, scale = _knn.prepare(A, B, block_rows=block_rows)
    scale *= inflate
    DA, DB, DAB = _brute(A, A), _brute(B, B), _brute(A, B)
    np.fill_diagonal(DA, np.inf)
    np.fill_diagonal(DB, np.inf)
    rA = np.partition(DA, k - 1, 1)[:, k - 1]
    rB = np.partition(DB, k - 1, 1)[:, k - 1]
    rtol = 0 if exact else 1e-12
    np.testing.assert_allclose(_knn.knn_radii(a, k, scale), rA, rtol=rtol, atol=0)
    np.testing.assert_allclose(_knn.knn_radii(b, k, scale), rB, rtol=rtol, atol=0)
    np.testing.assert_allclose(_knn.knn_radii(a, k, scale, b), np.sort(DAB, 1)[:, k - 1],
                               rtol=rtol, atol=0)  # fmt: skip
    da, db = _knn.cross_nearest(a, b, scale)
    np.testing.assert_allclose(da, DAB.min(1), rtol=rtol, atol=0)
    np.testing.assert_allclose(db, DAB.min(0), rtol=rtol, atol=0)
    if not exact:  # ball tests against the engine's own radii (ties need exact arithmetic)
        rA, rB = _knn.knn_radii(a, k, scale), _knn.knn_radii(b, k, scale)
    res = _knn.ball_tests(a, b, scale, rB, rA)
    inside_b = rB[None, :] >= DAB
    inside_a = rA[:, None] >= DAB
    np.testing.assert_array_equal(res.a_in_b_balls, inside_b.any(1))
    np.testing.assert_array_equal(res.b_in_a_balls, inside_a.any(0))
    counted = _knn.ball_tests(a, b, scale, rB, counts=True)
    np.testing.assert_array_equal(counted.a_in_b_count, inside_b.sum(1))
    np.testing.assert_array_equal(counted.b_ball_hit, inside_b.any(0))
    return res


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ties", [False, True])
def test_engine_equals_brute_force(seed, ties):
    A, B = _case(seed, ties)
    _check(A, B, k=5, block_rows=17 + 7 * seed, exact=ties)


def test_engine_with_one_block_and_k_near_n():
    A, B = _case(7, True)
    _check(A, B, k=len(A) - 1 if len(A) < len(B) else len(B) - 1, block_rows=4096)


def test_rows_redone_over_all_samples_when_candidates_are_too_close():
    """A huge error bound makes every candidate list inconclusive: the full-row path runs."""
    A, B = _case(3, True)
    _check(A, B, k=3, block_rows=32, inflate=1e4)


def test_skipping_decided_pairs_changes_nothing():
    """Well-overlapping sets are decided early; results equal the brute force regardless."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((300, 20)).astype(np.float32)
    B = rng.standard_normal((300, 20)).astype(np.float32)
    res = _check(A, B, k=5, block_rows=40, exact=False)
    assert res.a_in_b_balls.mean() > 0.8  # the skipping path was exercised


def test_float32_error_bound_holds_on_wide_uncentred_data():
    """The bound the engine uses is far above the error it makes."""
    rng = np.random.default_rng(1)
    X = (rng.standard_normal((200, 5000)) * rng.uniform(0.1, 30, 5000) + 50).astype(np.float32)
    a, _, scale = _knn.prepare(X)
    x, sx = a.block(0)
    d32 = _knn._sqdist(x, sx, x, sx).double().numpy()
    Xc = X.astype(np.float64) - X.mean(0, dtype=np.float64)
    sq = (Xc**2).sum(1)
    exact = sq[:, None] + sq[None, :] - 2 * Xc @ Xc.T  # float64: ~1e-12 relative
    rel = np.abs(d32 - exact) / (a.sqnorm[:, None] + a.sqnorm[None, :])
    assert rel.max() < scale / 5


@pytest.mark.parametrize("offset", [1e4, 1e6])
def test_float64_input_far_from_zero_stays_exact(offset):
    """float64 rows are centred before rounding to float32, so a large offset is harmless."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((150, 40)) + offset
    B = rng.standard_normal((120, 40)) + offset
    a, _, scale = _knn.prepare(A, B, block_rows=64)
    DA = _brute(A - offset, A - offset)  # distances do not depend on the offset
    np.fill_diagonal(DA, np.inf)
    np.testing.assert_allclose(
        _knn.knn_radii(a, 5, scale), np.partition(DA, 4, 1)[:, 4], rtol=1e-9, atol=0
    )


def test_products_are_full_float32_even_when_tf32_is_allowed():
    import torch

    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        with _knn.exact_products():
            assert torch.get_float32_matmul_precision() == "highest"
        assert torch.get_float32_matmul_precision() == "medium"
    finally:
        torch.set_float32_matmul_precision(previous)
