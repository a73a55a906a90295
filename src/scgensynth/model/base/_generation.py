"""The rows of a generation, built and written a batch at a time.

Everything random in a generation is keyed by the seed and the sample's row number, in
blocks of :data:`~scgensynth._utils._random.ROW_BLOCK` rows: the covariate rows resampled
from the training data, the library sizes of count models and the modules' noise
(:class:`~scgensynth._utils._random.RowNoise`); a count model's integer counts are made
with a stream of their own per row (:func:`round_counts`, :func:`draw_counts`). So the same
seed gives the same samples whatever the ``batch_size``, in memory or written to a file,
and a file of a billion samples never holds more than a batch of them (values or
covariates) in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anndata as ad
import h5py
import numpy as np
import pandas as pd
from scipy import special

from scgensynth._utils._files import atomic_write
from scgensynth._utils._random import ROW_BLOCK, stream_seed

if TYPE_CHECKING:
    from anndata import AnnData

#: stream keys of the covariate rows, library sizes and integer counts (the noise uses draw
#: numbers 0, 1, ...)
_ROWS_STREAM = 2**32 + 1
_LIBRARY_STREAM = 2**32 + 2
_COUNTS_STREAM = 2**32 + 3
#: values whose counts are drawn at a time (bounds the float64 temporaries to a few MiB)
_COUNTS_CHUNK = 2**18

#: what ``generate(counts=...)`` takes for a model trained on raw counts: integer counts made
#: from the generated mean by unbiased random rounding (the default), Poisson counts drawn
#: around it, or the mean itself (expected counts, floats)
COUNTS_OPTIONS = ("sample", "poisson", "mean")

#: bytes of one HDF5 chunk of the written matrix (whole rows; about 1 MiB reads well both
#: row by row and in blocks)
CHUNK_BYTES = 2**20


def _blocks(start: int, stop: int):
    """``(block, lo, hi)``: the blocks of ROW_BLOCK rows that ``start:stop`` covers."""
    for block in range(start // ROW_BLOCK, -(-stop // ROW_BLOCK)):
        lo = max(start - block * ROW_BLOCK, 0)
        hi = min(stop - block * ROW_BLOCK, ROW_BLOCK)
        yield block, lo, hi


def _keyed_integers(seed: int, stream: int, high: int, start: int, stop: int) -> np.ndarray:
    """Integers in ``[0, high)`` for the rows ``start:stop``, keyed by seed and row."""
    parts = [
        np.random.default_rng(stream_seed(seed, stream, block)).integers(0, high, ROW_BLOCK)[lo:hi]
        for block, lo, hi in _blocks(start, stop)
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


class GenerationRows:
    """The covariates of the samples of one generation, built a block of rows at a time.

    Either an explicit ``frame`` (one row per sample, with the training ``rows`` each one
    comes from, if any), or ``n`` rows resampled with replacement from ``table`` (the
    training covariates), optionally only from the rows in ``pool``.

    Examples
    --------
    >>> table = pd.DataFrame({"tissue": pd.Categorical(["a", "b", "b"])})
    >>> plan = GenerationRows.resampled(table, 1000)
    >>> frame, rows = plan.block(10, 12, seed=0)
    >>> frame_all, rows_all = plan.block(0, 1000, seed=0)
    >>> bool((rows_all[10:12] == rows).all())
    True
    """

    def __init__(
        self,
        n: int,
        *,
        frame: pd.DataFrame | None = None,
        rows: np.ndarray | None = None,
        table: pd.DataFrame | None = None,
        pool: np.ndarray | None = None,
    ):
        self.n = int(n)
        self.frame = frame
        self.rows = None if rows is None else np.asarray(rows)
        self.table = table
        self.pool = None if pool is None else np.asarray(pool)

    @classmethod
    def explicit(cls, frame: pd.DataFrame, rows: np.ndarray | None = None) -> GenerationRows:
        """The rows of ``frame`` (reindexed from 0), from the training ``rows`` if given."""
        return cls(len(frame), frame=frame.reset_index(drop=True), rows=rows)

    @classmethod
    def resampled(
        cls, table: pd.DataFrame, n: int, pool: np.ndarray | None = None
    ) -> GenerationRows:
        """``n`` rows of ``table`` drawn with replacement (from ``pool`` only, if given)."""
        return cls(n, table=table, pool=pool)

    def columns(self) -> pd.DataFrame:
        """An empty frame with the covariates' columns and dtypes."""
        source = self.frame if self.frame is not None else self.table
        return source.iloc[:0].reset_index(drop=True)

    def block(self, start: int, stop: int, seed: int) -> tuple[pd.DataFrame, np.ndarray | None]:
        """Covariates of the samples ``start:stop`` and the training rows they come from."""
        if self.frame is not None:
            rows = None if self.rows is None else self.rows[start:stop]
            return self.frame.iloc[start:stop].reset_index(drop=True), rows
        size = len(self.table) if self.pool is None else len(self.pool)
        picks = _keyed_integers(seed, _ROWS_STREAM, size, start, stop)
        rows = picks if self.pool is None else self.pool[picks]
        return self.table.iloc[rows].reset_index(drop=True), rows

    @staticmethod
    def library_sizes(
        library_size: np.ndarray, rows: np.ndarray | None, start: int, stop: int, seed: int
    ) -> np.ndarray:
        """Library sizes of the samples ``start:stop``: their training rows', or resampled."""
        if rows is None:
            rows = _keyed_integers(seed, _LIBRARY_STREAM, len(library_size), start, stop)
        return np.asarray(library_size, dtype=np.float32)[rows]


def poisson_quantiles(u: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """The smallest ``k`` with ``P(Poisson(mean) <= k) >= u``, elementwise (float64).

    Exact inverse of the Poisson distribution function: a Cornish-Fisher guess (right for
    about 99 % of values), corrected up and down against :func:`scipy.special.pdtr`. A count
    drawn so moves only where a tiny change of ``mean`` carries ``u`` across a step of the
    distribution function, never through a whole row.

    Examples
    --------
    >>> poisson_quantiles(np.array([0.3, 0.5, 0.99]), np.array([0.0, 4.0, 4.0]))
    array([0., 4., 9.])
    """
    u = np.clip(np.asarray(u, dtype=np.float64), 2.0**-54, 1 - 2.0**-54)
    mean = np.asarray(mean, dtype=np.float64)
    z = special.ndtri(u)
    k = np.maximum(np.floor(mean + np.sqrt(mean) * z + (z * z - 1) / 6 + 0.5), 0.0)
    k[mean == 0] = 0.0
    cdf = special.pdtr(k, mean)
    todo = np.flatnonzero((cdf < u) & (mean > 0))
    while todo.size:  # up while the distribution function is below u
        k.flat[todo] += 1
        todo = todo[special.pdtr(k.flat[todo], mean.flat[todo]) < u.flat[todo]]
    # down while the count below still reaches u: F(k - 1) = F(k) - P(k), P from logs
    positive = (k > 0) & (cdf >= u)
    log_pmf = k * np.log(np.where(positive, mean, 1.0)) - mean - special.gammaln(k + 1)
    todo = np.flatnonzero(positive & (cdf - np.exp(log_pmf) >= u))
    while todo.size:
        k.flat[todo] -= 1
        todo = todo[k.flat[todo] > 0]
        todo = todo[special.pdtr(k.flat[todo] - 1, mean.flat[todo]) >= u.flat[todo]]
    return k


def draw_counts(means: np.ndarray, seed: int, start: int) -> np.ndarray:
    """Poisson counts around ``means``, the samples ``start:start + len(means)``, keyed by row.

    Each value is the Poisson quantile (:func:`poisson_quantiles`) of a uniform number drawn
    from the stream of its sample's row, ``(seed, row)``: the counts of a sample do not
    depend on how the samples are batched, and where a batch changes the mean by float
    rounding a count changes only in the rare case that this crosses a step of the
    distribution function (by one).

    Returns
    -------
    float32 (integer-valued, as scanpy's readers and scVI take counts), one row per sample.

    Examples
    --------
    >>> means = np.array([[0.5, 2.5, 700.0], [10.0, 0.0, 0.0]])
    >>> counts = draw_counts(means, seed=0, start=0)
    >>> bool((counts == np.rint(counts)).all()), counts[1, 1:].tolist()
    (True, [0.0, 0.0])
    >>> bool((draw_counts(means[1:], seed=0, start=1) == counts[1:]).all())
    True
    """
    return _keyed_counts(means, seed, start, poisson_quantiles)


def round_counts(means: np.ndarray, seed: int, start: int) -> np.ndarray:
    """``means`` rounded to integers at random without bias (stochastic rounding), keyed by row.

    Each value is ``floor(m) + (u < m - floor(m))`` for a uniform ``u`` from its sample's row
    stream, ``(seed, row)``, as in :func:`draw_counts`: the expected value is ``m`` and the
    added variance is at most 1/4, against ``m`` for a Poisson draw. For generators whose
    samples already carry the count noise of the data they learned (the expected counts vary
    as much as real counts do), so that a Poisson draw would add that noise twice.

    Returns
    -------
    float32 (integer-valued), one row per sample.

    Examples
    --------
    >>> means = np.array([[0.25, 2.0, 700.5], [10.0, 0.0, 0.0]])
    >>> counts = round_counts(means, seed=0, start=0)
    >>> bool((np.abs(counts - means) < 1).all()), counts[1].tolist()
    (True, [10.0, 0.0, 0.0])
    """
    return _keyed_counts(means, seed, start, _stochastic_rounding)


def _stochastic_rounding(u: np.ndarray, means: np.ndarray) -> np.ndarray:
    floor = np.floor(means)
    return floor + (u < means - floor)


def _keyed_counts(means: np.ndarray, seed: int, start: int, make: Callable) -> np.ndarray:
    """``make(u, means)`` in chunks, ``u`` uniform numbers from each sample's row stream."""
    means = np.asarray(means, dtype=np.float64)
    if not np.isfinite(means).all() or (means < 0).any():
        msg = (
            "The model generated expected counts that are negative or not finite, so no "
            "counts can be drawn around them; the model is not trained well enough (train "
            "it longer), or pass counts='mean' to inspect the values it generates."
        )
        raise ValueError(msg)
    out = np.empty(means.shape, dtype=np.float32)
    rows = max(1, _COUNTS_CHUNK // max(1, means.shape[1]))  # float64 temporaries stay small
    for lo in range(0, len(means), rows):
        hi = min(lo + rows, len(means))
        u = np.stack([
            np.random.default_rng(stream_seed(seed, _COUNTS_STREAM, start + i)).random(
                means.shape[1]
            )
            for i in range(lo, hi)
        ])  # fmt: skip
        out[lo:hi] = make(u, means[lo:hi])
    return out


#: ``generate(counts=...)``'s integer outputs: the function that makes them from the means
INTEGER_COUNTS: dict[str, Callable] = {"sample": round_counts, "poisson": draw_counts}


def obs_names(start: int, stop: int) -> pd.Index:
    """Names of the synthetic samples ``start:stop``."""
    return pd.Index([f"synth_{i}" for i in range(start, stop)])


#: writes the samples ``start:start + len(values)``: ``sink(start, values, obs)``
Sink = Callable[[int, np.ndarray, pd.DataFrame], None]


def collect_in_memory(
    n: int,
    var: pd.DataFrame,
    uns: Mapping[str, Any],
    columns: pd.DataFrame,
    fill: Callable[[Sink], None],
) -> AnnData:
    """An in-memory AnnData whose rows ``fill(sink)`` passes to ``sink`` a batch at a time."""
    X = np.empty((n, len(var)), dtype=np.float32)
    frames = []

    def sink(start: int, values: np.ndarray, obs: pd.DataFrame) -> None:
        X[start : start + len(values)] = values
        frames.append(obs)

    fill(sink)
    obs = pd.concat(frames, ignore_index=True) if frames else columns.copy()
    obs.index = obs_names(0, n)
    out = ad.AnnData(X=X, obs=obs, var=var)
    out.uns.update(dict(uns))
    return out


def _full_length(group: h5py.Group, name: str, n: int) -> h5py.Dataset:
    """Replace the empty dataset ``group[name]`` by one of ``n`` rows (same dtype, attrs)."""
    old = group[name]
    dtype, attrs = old.dtype, dict(old.attrs)
    del group[name]
    chunks = (max(1, min(n, 2**16)),) if n else None
    new = group.create_dataset(name, shape=(n,), dtype=dtype, chunks=chunks)
    for key, value in attrs.items():
        new.attrs[key] = value
    return new


def write_backed(
    path: Path,
    n: int,
    var: pd.DataFrame,
    uns: Mapping[str, Any],
    columns: pd.DataFrame,
    fill: Callable[[Sink], None],
) -> AnnData:
    """Write an ``.h5ad`` of ``n`` samples whose rows ``fill(sink)`` passes a batch at a time.

    ``var``, ``uns`` and the structure of ``obs`` (``columns``: its columns and dtypes, no
    rows) are written by anndata; ``X`` (float32, dense, anndata's array encoding) and the
    ``obs`` columns and names are then created at full length and filled batch by batch, so
    neither the values nor the covariates of all samples are ever in memory. The file is
    built beside ``path`` and moved into place when complete (:func:`atomic_write`): a
    failure leaves any earlier file at ``path`` as it was. Returns the file opened backed,
    read-only.
    """
    m = len(var)
    template = columns.copy()
    template.index = obs_names(0, 0)

    def write(tmp: str) -> None:
        ad.AnnData(obs=template, var=var, uns=dict(uns)).write_h5ad(tmp)
        with h5py.File(tmp, "r+") as f:
            rows = max(1, min(n, CHUNK_BYTES // max(1, 4 * m)))
            chunks = (rows, m) if n and m else None
            X = f.create_dataset("X", shape=(n, m), dtype="float32", chunks=chunks)
            X.attrs["encoding-type"] = "array"
            X.attrs["encoding-version"] = "0.2.0"
            group = f["obs"]
            index = _full_length(group, group.attrs["_index"], n)
            targets = {}
            for key in columns.columns:
                if isinstance(columns[key].dtype, pd.CategoricalDtype):
                    targets[key] = _full_length(group[key], "codes", n)
                else:
                    targets[key] = _full_length(group, key, n)

            def sink(start: int, values: np.ndarray, obs: pd.DataFrame) -> None:
                stop = start + len(values)
                X[start:stop] = values
                index[start:stop] = np.asarray(obs_names(start, stop), dtype=object)
                for key, dataset in targets.items():
                    col = obs[key]
                    if isinstance(col.dtype, pd.CategoricalDtype):
                        dataset[start:stop] = col.cat.codes.to_numpy().astype(dataset.dtype)
                    else:
                        dataset[start:stop] = col.to_numpy(dtype=dataset.dtype)

            fill(sink)

    atomic_write(path, write)
    return ad.read_h5ad(path, backed="r")


def bytes_needed(n: int, n_vars: int, n_columns: int) -> int:
    """About how many bytes a file of ``n`` generated samples takes (values, names, obs)."""
    return int(n) * (4 * int(n_vars) + 32 + 8 * int(n_columns))


#: bytes of memory per sample that anndata's backed mode takes to hold a generated file's
#: obs (sample name and covariates; measured about 135 with two covariates)
OBS_BYTES_PER_SAMPLE = 160


def _available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux), or None where unknown."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_fits_in_memory(n: int, n_vars: int, n_columns: int, what: str) -> None:
    """Refuse an in-memory result of ``n`` samples that could not fit in the memory left."""
    need = int(n) * (4 * int(n_vars) + OBS_BYTES_PER_SAMPLE + 8 * int(n_columns))
    available = _available_memory()
    if available is not None and need > available:
        msg = (
            f"{what}: {n:,} samples x {n_vars:,} genes need about {need / 2**30:,.1f} GiB of "
            f"memory, and {available / 2**30:,.1f} GiB is available. Ask for fewer samples, "
            "or write them to disk a batch at a time with generate(..., filename='x.h5ad')."
        )
        raise MemoryError(msg)


def check_backed_obs_fits(n: int, n_columns: int) -> None:
    """Refuse a file whose ``obs`` could not be held in memory when it is opened backed.

    The samples are written a batch at a time, but anndata's backed mode reads a file's
    ``obs`` whole: a set of billions of samples would be written for hours, then fail.
    """
    need = int(n) * (OBS_BYTES_PER_SAMPLE + 8 * max(0, int(n_columns) - 2))
    available = _available_memory()
    if available is not None and need > available:
        msg = (
            f"{n:,} samples would be written, but opening the file backed reads its obs "
            f"(names and covariates, about {need / 2**30:,.1f} GiB) into memory, and "
            f"{available / 2**30:,.1f} GiB is available. Generate the set in parts (several "
            "files with fewer samples each, e.g. with seeds 0, 1, ...)."
        )
        raise MemoryError(msg)


__all__ = [
    "CHUNK_BYTES",
    "COUNTS_OPTIONS",
    "INTEGER_COUNTS",
    "GenerationRows",
    "bytes_needed",
    "check_backed_obs_fits",
    "check_fits_in_memory",
    "collect_in_memory",
    "draw_counts",
    "obs_names",
    "poisson_quantiles",
    "round_counts",
    "write_backed",
]
