"""Exact nearest-neighbour distances and ball tests from chunked float32 products in torch.

Every distance-based metric reduces to three primitives over two matrices of samples:

- :func:`knn_radii`: the distance of each sample to its ``k``-th nearest other sample;
- :func:`cross_nearest`: each sample's distance to its nearest sample of the other set (both
  directions from one pass);
- :func:`ball_tests`: which samples fall inside which neighbourhood balls (precision, recall,
  density, coverage).

Squared distances come from ``|a|^2 + |b|^2 - 2 a.b`` with the matrix product in float32,
block by block (never an n x n matrix), on data centred on one shared mean (which keeps the
cancellation error small). Each float32 value carries an error bound; every decision that
lies within that bound -- which sample is the k-th neighbour, whether a point is inside a
ball, ties -- is settled again from the float64 data, so results equal an exact float64
computation. Self-neighbour searches use each block for both of its row and column sets.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

logger = logging.getLogger(__name__)

_EPS32 = float(np.finfo(np.float32).eps)
#: float32 bytes of one block of rows (two such blocks and their product are in memory);
#: blocks hold 1,024 to 4,096 rows: small enough that self-searches skip most of the lower
#: triangle and ball tests skip decided pairs, large enough for efficient products
_BLOCK_BYTES = 64 * 2**20
_MIN_BLOCK_ROWS, _MAX_BLOCK_ROWS = 1024, 4096
#: float64 bytes used at once when recomputing distances exactly
_EXACT_BYTES = 64 * 2**20
#: largest matrix (float32 bytes) kept whole during a search
_CACHE_BYTES = 2**30


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``: CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        msg = "device='cuda' was asked for but CUDA is not available; use device='cpu'."
        raise ValueError(msg)
    return device


class Samples:
    """A samples x features matrix served as centred float32 blocks on a device.

    Blocks are converted when used; inside ``with samples.cached():`` the whole centred
    float32 matrix is converted once and kept (when it fits in :data:`_CACHE_BYTES`), so
    searches that visit each block many times do not convert it again. Float64 rows are read
    from the original matrix for exact recomputation.
    """

    def __init__(self, X: np.ndarray, centre: np.ndarray, device: torch.device, rows: int):
        self.X = X
        self.n, self.p = X.shape
        self.device = device
        self.rows = rows
        self.centre = torch.as_tensor(centre, dtype=torch.float32, device=device)
        self._centre64 = np.asarray(centre, dtype=np.float64)
        self._cache: torch.Tensor | None = None
        # squared norms of the float32 centred rows the products use, summed in float64
        sq = torch.empty(self.n, dtype=torch.float64, device=device)
        for start in self.starts():
            x = self._convert(start)
            sq[start : start + x.shape[0]] = torch.sum(x * x, dim=1, dtype=torch.float64)
        self.sqnorm = sq.cpu().numpy()
        self.sq32 = sq.to(torch.float32)

    @contextlib.contextmanager
    def cached(self):
        """Keep the centred float32 matrix while the block is active, if it fits."""
        if self._cache is not None or self.n * self.p * 4 > _CACHE_BYTES:
            yield self
            return
        cache = torch.empty((self.n, self.p), dtype=torch.float32, device=self.device)
        for start in self.starts():
            cache[start : start + self.rows] = self._convert(start)
        self._cache = cache
        try:
            yield self
        finally:
            self._cache = None

    def _convert(self, start: int) -> torch.Tensor:
        return self._centred(self.X[start : min(start + self.rows, self.n)])

    def _centred(self, rows: np.ndarray) -> torch.Tensor:
        if rows.dtype == np.float64:
            # centre before rounding to float32: rounding is then relative to the centred
            # values (what the error bound assumes), not to a possibly large offset
            return torch.as_tensor((rows - self._centre64).astype(np.float32)).to(self.device)
        return torch.as_tensor(rows).to(self.device, torch.float32) - self.centre

    def starts(self) -> range:
        return range(0, self.n, self.rows)

    def block(self, start: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Centred float32 rows ``start:start+rows`` and their squared norms."""
        stop = min(start + self.rows, self.n)
        if self._cache is not None:
            return self._cache[start:stop], self.sq32[start:stop]
        return self._convert(start), self.sq32[start:stop]

    def subset(self, rows: np.ndarray) -> Samples:
        """The given rows (a copy of them) as a new :class:`Samples`."""
        return Samples(self.X[rows], self._centre64, self.device, self.rows)


def prepare(
    A: np.ndarray,
    B: np.ndarray | None = None,
    *,
    device: str | torch.device | None = None,
    block_rows: int | None = None,
) -> tuple[Samples, Samples | None, float]:
    """Wrap one or two matrices (same features) centred on ``A``'s mean."""
    device = resolve_device(device)
    p = A.shape[1]
    centre = _column_mean(A)
    rows = block_rows or int(min(_MAX_BLOCK_ROWS, max(_MIN_BLOCK_ROWS, _BLOCK_BYTES // (4 * p))))
    a = Samples(A, centre, device, rows)
    b = None if B is None else Samples(B, centre, device, rows)
    # Relative error of a float32 squared distance from the blocked product: measured at most
    # ~8 eps (relative to |a|^2 + |b|^2) for p from 50 to 20,000 on centred data; this bound is
    # about 10x that, growing like sqrt(p) as the accumulation error can.
    scale = _EPS32 * (16.0 + 0.5 * math.sqrt(p))
    return a, b, scale


def _column_mean(X: np.ndarray) -> np.ndarray:
    total = np.zeros(X.shape[1])
    step = max(1, _EXACT_BYTES // (8 * X.shape[1]))
    for start in range(0, X.shape[0], step):
        total += X[start : start + step].sum(0, dtype=np.float64)
    return total / X.shape[0]


@contextlib.contextmanager
def exact_products():
    """Full float32 matrix products while active (no TF32 or bfloat16 shortcuts).

    ``torch.set_float32_matmul_precision("high")`` (which Lightning suggests) lets CUDA use
    TF32, ~1e-3 relative error: far beyond the error bound the exact settling relies on.
    """
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def _sqdist(x: torch.Tensor, sx: torch.Tensor, y: torch.Tensor, sy: torch.Tensor):
    d = torch.addmm(sx[:, None] + sy[None, :], x, y.T, beta=1.0, alpha=-2.0)
    return d.clamp_(min=0.0)


def exact_sqdist(A: np.ndarray, ia: np.ndarray, B: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """Float64 squared distances of the row pairs ``(A[ia[t]], B[ib[t]])``."""
    out = np.empty(len(ia))
    step = max(1, _EXACT_BYTES // (8 * A.shape[1]))
    for start in range(0, len(ia), step):
        sl = slice(start, start + step)
        diff = A[ia[sl]].astype(np.float64) - B[ib[sl]].astype(np.float64)
        out[sl] = np.einsum("ij,ij->i", diff, diff)
    return out


# -- k nearest neighbours ----------------------------------------------------------------------
class _Candidates:
    """Per-row nearest candidates collected block by block, merged once at the end."""

    def __init__(self, n: int, c: int, device: torch.device):
        self.n, self.c, self.device = n, c, device
        self.parts: list[tuple[int, torch.Tensor, torch.Tensor]] = []

    def add(self, row0: int, d: torch.Tensor, col0: int) -> None:
        vals, idx = torch.topk(d, min(self.c, d.shape[1]), dim=1, largest=False)
        self.parts.append((row0, vals, idx + col0))

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Float64 squared distances and indices, ``n x c``, nearest first (-1: none)."""
        by_row: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        for row0, vals, idx in self.parts:
            by_row.setdefault(row0, []).append((vals, idx))
        best_d = np.full((self.n, self.c), np.inf)
        best_i = np.full((self.n, self.c), -1, dtype=np.int64)
        for row0, parts in by_row.items():
            vals = torch.cat([v for v, _ in parts], 1)
            idx = torch.cat([i for _, i in parts], 1)
            cc = min(self.c, vals.shape[1])
            v, order = torch.topk(vals, cc, dim=1, largest=False)
            rows = slice(row0, row0 + v.shape[0])
            best_d[rows, :cc] = v.cpu().numpy()
            best_i[rows, :cc] = torch.gather(idx, 1, order).cpu().numpy()
        return best_d, best_i


def _candidates(a: Samples, b: Samples | None, c: int):
    """The ``c`` nearest candidates (float32 squared distance, index) of every row of ``a``.

    ``b=None``: among ``a``'s other rows, using each block for both triangles.
    """
    self_search = b is None
    other = a if self_search else b
    found = _Candidates(a.n, c, a.device)
    with other.cached():
        for i0 in a.starts():
            x, sx = a.block(i0)
            for j0 in other.starts():
                if self_search and j0 < i0:
                    continue
                y, sy = (x, sx) if (self_search and j0 == i0) else other.block(j0)
                d = _sqdist(x, sx, y, sy)
                if self_search and j0 == i0:
                    d.fill_diagonal_(float("inf"))
                found.add(i0, d, j0)
                if self_search and j0 > i0:
                    found.add(j0, d.T, i0)
    return found.result()


def _kth_exact(
    a: Samples,
    b: Samples | None,
    k: int,
    d32: np.ndarray,
    idx: np.ndarray,
    scale: float,
    *,
    complete: bool = False,
) -> np.ndarray:
    """Exact k-th smallest squared distance per row from its float32 nearest candidates.

    Every true distance lies within ``tol`` of its float32 value, so the k-th one lies within
    ``tol`` of the float32 k-th; only candidates within ``2 tol`` of that are recomputed in
    float64. Candidates below are surely nearer; if the last candidate is not surely farther
    (``complete=False``), the row is redone over all samples.
    """
    other = a if b is None else b
    n_avail = other.n - (1 if b is None else 0)
    c = d32.shape[1]
    tol = 2.0 * scale * (a.sqnorm[:, None] + other.sqnorm.max())
    kth = d32[:, k - 1 : k]
    lo, hi = kth - tol, kth + tol
    below = (d32 < lo).sum(1)
    ok = np.full(a.n, True) if complete or c >= n_avail else d32[:, -1] > hi[:, 0]
    ambiguous = (d32 >= lo) & (d32 <= hi) & (idx >= 0)
    rows, cols = np.nonzero(ambiguous & ok[:, None])
    exact = exact_sqdist(a.X, rows, other.X, idx[rows, cols])
    out = np.empty(a.n)
    # group the ambiguous candidates by row: order statistic k - below within them
    order = np.lexsort((exact, rows))
    rows_sorted, exact_sorted = rows[order], exact[order]
    first = np.searchsorted(rows_sorted, np.arange(a.n))
    good = np.flatnonzero(ok)
    out[good] = exact_sorted[first[good] + (k - 1 - below[good])]
    bad = np.flatnonzero(~ok)
    if len(bad):
        # the candidates were too close together to be sure: redo these rows over every sample
        logger.debug("%d rows need all their distances", len(bad))
        for start in range(0, len(bad), 256):
            rows = bad[start : start + 256]
            d_all, i_all = _full_rows(a, other, rows, self_search=b is None)
            out[rows] = _kth_exact(a.subset(rows), other, k, d_all, i_all, scale, complete=True)
    return out


def _full_rows(a: Samples, other: Samples, rows: np.ndarray, *, self_search: bool):
    """Float32 squared distances of ``a``'s ``rows`` to all of ``other``, sorted per row."""
    dev = a.device
    x = a._centred(a.X[rows])
    sx = a.sq32[torch.as_tensor(rows, device=dev)]
    parts = []
    for j0 in other.starts():
        y, sy = other.block(j0)
        parts.append(_sqdist(x, sx, y, sy))
    d = torch.cat(parts, 1)
    if self_search:
        d[torch.arange(len(rows), device=dev), torch.as_tensor(rows, device=dev)] = float("inf")
    d, order = torch.sort(d, dim=1)
    return d.cpu().numpy().astype(np.float64), order.cpu().numpy()


def knn_radii(a: Samples, k: int, scale: float, b: Samples | None = None) -> np.ndarray:
    """Exact squared distance of each row of ``a`` to its ``k``-th nearest neighbour.

    Among ``a``'s other rows when ``b`` is None (a sample is not its own neighbour; exact
    duplicates are, at distance 0), else among ``b``'s rows.
    """
    other = a if b is None else b
    n_avail = other.n - (1 if b is None else 0)
    c = int(min(n_avail, k + max(8, k // 4)))
    d32, idx = _candidates(a, b, c)
    return _kth_exact(a, b, k, d32, idx, scale)


def cross_nearest(a: Samples, b: Samples, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact squared distance of each row of ``a`` to its nearest in ``b``, and back."""
    found_a = _Candidates(a.n, int(min(b.n, 4)), a.device)
    found_b = _Candidates(b.n, int(min(a.n, 4)), a.device)
    with b.cached():
        for i0 in a.starts():
            x, sx = a.block(i0)
            for j0 in b.starts():
                y, sy = b.block(j0)
                d = _sqdist(x, sx, y, sy)
                found_a.add(i0, d, j0)
                found_b.add(j0, d.T, i0)
    da = _kth_exact(a, b, 1, *found_a.result(), scale)
    db = _kth_exact(b, a, 1, *found_b.result(), scale)
    return da, db


# -- ball tests ---------------------------------------------------------------------------------
@dataclass
class BallResult:
    """Which points fall inside which balls, rows of ``a`` against rows of ``b``."""

    #: per row of ``a``: inside at least one ``b`` ball (precision)
    a_in_b_balls: np.ndarray
    #: per row of ``a``: number of ``b`` balls containing it (density); None when not asked
    a_in_b_count: np.ndarray | None
    #: per row of ``b``: at least one ``a`` point inside its ball (coverage); None when
    #: ``r_a`` is given without ``counts`` (not tracked then)
    b_ball_hit: np.ndarray | None
    #: per row of ``b``: inside at least one ``a`` ball (recall); None without ``a`` radii
    b_in_a_balls: np.ndarray | None


def _inside(d, tol, r2, r2_exact, along, rows, cols, a: Samples, b: Samples):
    """``d <= r2`` for a block, settled from float64 data wherever it is within ``tol``.

    ``r2`` (a float32 tensor) and ``r2_exact`` (float64, indexed by ``rows``/``cols``) are the
    squared radii along ``along`` ("rows" or "cols").
    """
    limit = r2[None, :] if along == "cols" else r2[:, None]
    diff = d - limit
    inside = diff < -tol
    amb = diff.abs_() <= tol
    if bool(amb.any()):
        rr, cc = torch.nonzero(amb, as_tuple=True)
        ri, ci = rows[rr.cpu().numpy()], cols[cc.cpu().numpy()]
        ex = exact_sqdist(a.X, ri, b.X, ci)
        lim = r2_exact[ci] if along == "cols" else r2_exact[ri]
        inside[rr, cc] = torch.as_tensor(ex <= lim, device=d.device)
    return inside


def ball_tests(
    a: Samples,
    b: Samples,
    scale: float,
    r2_b: np.ndarray,
    r2_a: np.ndarray | None = None,
    *,
    counts: bool = False,
) -> BallResult:
    """Test rows of ``a`` against balls of squared radius ``r2_b`` around rows of ``b``.

    With ``r2_a``, rows of ``b`` are also tested against balls of squared radius ``r2_a``
    around rows of ``a``. Squared radii from :func:`knn_radii` make ties exact: a point at
    exactly a ball's radius is inside. Without ``counts``, pairs whose answers are already
    known are skipped: once a row of ``a`` is inside some ball and a row of ``b`` inside some
    ball, later blocks leave them out, which saves most of the work when the sets overlap.
    """
    dev = a.device
    r2b = np.asarray(r2_b, dtype=np.float64)
    r2a = None if r2_a is None else np.asarray(r2_a, dtype=np.float64)
    r2b_t = torch.as_tensor(r2b, dtype=torch.float32, device=dev)
    r2a_t = None if r2a is None else torch.as_tensor(r2a, dtype=torch.float32, device=dev)
    a_in = np.zeros(a.n, dtype=bool)
    a_count = np.zeros(a.n, dtype=np.int64) if counts else None
    b_hit = np.zeros(b.n, dtype=bool)
    b_in = None if r2a is None else np.zeros(b.n, dtype=bool)
    with b.cached():
        _ball_loop(a, b, scale, r2b, r2a, r2b_t, r2a_t, a_in, a_count, b_hit, b_in, counts)
    track_hit = counts or b_in is None
    return BallResult(a_in, a_count, b_hit if track_hit else None, b_in)


def _ball_loop(a, b, scale, r2b, r2a, r2b_t, r2a_t, a_in, a_count, b_hit, b_in, counts):
    dev = a.device
    all_a, all_b = np.arange(a.n), np.arange(b.n)
    for i0 in a.starts():
        x, sx = a.block(i0)
        rows = all_a[i0 : i0 + x.shape[0]]
        for j0 in b.starts():
            ncols = min(b.rows, b.n - j0)
            cols = all_b[j0 : j0 + ncols]
            need_rows = rows if counts else rows[~a_in[rows]]
            col_done = b_hit[cols] if b_in is None or counts else b_in[cols]
            need_cols = cols[~col_done]
            if len(need_rows) == 0 and len(need_cols) == 0:
                continue
            y, sy = b.block(j0)
            share = len(need_rows) / len(rows) + len(need_cols) / len(cols)
            if counts or share >= 0.75:
                parts = [(rows, cols, x, sx, y, sy)]
            else:
                parts = []
                if len(need_rows):
                    sel = torch.as_tensor(need_rows - i0, device=dev)
                    parts.append((need_rows, cols, x[sel], sx[sel], y, sy))
                if len(need_cols):
                    sel = torch.as_tensor(need_cols - j0, device=dev)
                    parts.append((rows, need_cols, x, sx, y[sel], sy[sel]))
            for r_idx, c_idx, xx, sxx, yy, syy in parts:
                d = _sqdist(xx, sxx, yy, syy)
                base_tol = scale * (sxx[:, None] + syy[None, :])
                rb = r2b_t[torch.as_tensor(c_idx, device=dev)]
                tol = base_tol + 4 * _EPS32 * rb[None, :]
                m = _inside(d, tol, rb, r2b, "cols", r_idx, c_idx, a, b)
                a_in[r_idx] |= m.any(1).cpu().numpy()
                b_hit[c_idx] |= m.any(0).cpu().numpy()
                if counts:
                    a_count[r_idx] += m.sum(1).cpu().numpy()
                if r2a_t is not None:
                    ra = r2a_t[torch.as_tensor(r_idx, device=dev)]
                    tol = base_tol + 4 * _EPS32 * ra[:, None]
                    m = _inside(d, tol, ra, r2a, "rows", r_idx, c_idx, a, b)
                    b_in[c_idx] |= m.any(0).cpu().numpy()
