"""Generated samples written straight to disk: an ``.h5ad`` filled a batch at a time."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anndata as ad
import h5py

from ._files import atomic_write

if TYPE_CHECKING:
    import pandas as pd
    from anndata import AnnData

#: bytes of one HDF5 chunk of the written matrix (whole rows; about 1 MiB reads well both
#: row by row and in blocks)
CHUNK_BYTES = 2**20


def check_output_path(filename: str | os.PathLike | None) -> Path | None:
    """``filename`` as a Path, checked before any work is done (``None`` stays ``None``)."""
    if filename is None:
        return None
    if not isinstance(filename, str | os.PathLike):
        msg = f"filename must be a path (str or os.PathLike), not {type(filename).__name__}."
        raise TypeError(msg)
    path = Path(filename)
    if path.suffix != ".h5ad":
        msg = (
            f"filename must end in .h5ad (the samples are written as an AnnData file), got "
            f"{str(path)!r}."
        )
        raise ValueError(msg)
    if path.is_dir():
        msg = f"filename {str(path)!r} is a directory; give the path of the .h5ad file."
        raise IsADirectoryError(msg)
    if not path.parent.is_dir():
        msg = f"The folder of filename {str(path)!r} does not exist; create it first."
        raise FileNotFoundError(msg)
    return path


def write_backed(
    path: Path,
    obs: pd.DataFrame,
    var: pd.DataFrame,
    uns: Mapping[str, Any],
    fill: Callable[[h5py.Dataset], None],
) -> AnnData:
    """Write an ``.h5ad`` whose ``X`` (float32, dense) ``fill`` writes in row slices.

    ``obs``, ``var`` and ``uns`` are written by anndata; ``X`` is created empty in the same
    file, with anndata's dense-array encoding, and ``fill(dataset)`` assigns its rows. The
    file is built beside ``path`` and moved into place when complete (:func:`atomic_write`),
    so a failure leaves any earlier file at ``path`` as it was. Returns the file opened
    backed, read-only.
    """
    n, m = len(obs), len(var)

    def write(tmp: str) -> None:
        ad.AnnData(obs=obs, var=var, uns=dict(uns)).write_h5ad(tmp)
        with h5py.File(tmp, "r+") as f:
            rows = max(1, min(n, CHUNK_BYTES // max(1, 4 * m)))
            chunks = (rows, m) if n and m else None
            dataset = f.create_dataset("X", shape=(n, m), dtype="float32", chunks=chunks)
            dataset.attrs["encoding-type"] = "array"
            dataset.attrs["encoding-version"] = "0.2.0"
            fill(dataset)

    atomic_write(path, write)
    return ad.read_h5ad(path, backed="r")


__all__ = ["check_output_path", "write_backed"]
