"""Checks of the paths generated samples are written to."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class NotEnoughDiskSpaceError(OSError, ValueError):
    """Too little free disk space for a file about to be written (checked before the work).

    A subclass of both ``OSError`` and ``ValueError``; the message names the needed and the
    free size.
    """


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _as_input_path(item: Any) -> Path | None:
    if item is None:
        return None
    if isinstance(item, str | os.PathLike):
        return Path(item)
    filename = getattr(item, "filename", None)  # an AnnData opened backed
    return Path(filename) if isinstance(filename, str | os.PathLike) else None


def open_hdf5_files() -> list[Path]:
    """The HDF5 files this process has open through h5py (e.g. AnnData objects read backed)."""
    import h5py

    paths = []
    for fid in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE):
        try:
            name = fid.name
        except Exception:  # a handle closing meanwhile is simply skipped
            continue
        if isinstance(name, bytes):
            name = os.fsdecode(name)
        if name:
            paths.append(Path(name))
    return paths


def check_output_path(
    filename: str | os.PathLike | None,
    *,
    overwrite: bool = False,
    inputs: Iterable[Any] = (),
) -> Path | None:
    """``filename`` as a Path, checked before any work is done (``None`` stays ``None``).

    Refused: a path that is not an ``.h5ad`` file name, a folder, a path in a folder that
    does not exist or that this user cannot write to (:class:`PermissionError`), one of the
    ``inputs`` (paths, or AnnData objects opened backed; writing would destroy an input), a
    file this process has open with h5py (an AnnData read backed from it, even with
    ``overwrite=True``: replacing it would pull the data from under that object), and an
    existing file unless ``overwrite=True`` (:class:`FileExistsError`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> check_output_path(folder / "synth.h5ad").name
    'synth.h5ad'
    >>> _ = (folder / "synth.h5ad").write_bytes(b"")
    >>> check_output_path(folder / "synth.h5ad")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileExistsError: ...synth.h5ad already exists; pass overwrite=True to replace it.
    """
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
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        msg = f"The folder of filename {str(path)!r}, {str(folder)!r}, is a file; give a folder."
        raise NotADirectoryError(msg)
    if not folder.is_dir():
        msg = f"The folder of filename {str(path)!r} does not exist; create it first."
        raise FileNotFoundError(msg)
    for item in inputs:
        source = _as_input_path(item)
        if source is not None and _same_file(path, source):
            msg = (
                f"filename {str(path)!r} is one of the inputs ({str(source)!r}); writing there "
                "would destroy it. Choose another path."
            )
            raise ValueError(msg)
    if path.exists() and any(_same_file(path, p) for p in open_hdf5_files()):
        msg = (
            f"filename {str(path)!r} is open in this session (e.g. an AnnData read with "
            "backed='r'); replacing it would destroy the data that object reads, even with "
            "overwrite=True. Close it first (`adata.file.close()`) or choose another path."
        )
        raise ValueError(msg)
    if (path.exists() or path.is_symlink()) and not overwrite:
        msg = f"{path} already exists; pass overwrite=True to replace it."
        raise FileExistsError(msg)
    if not os.access(folder, os.W_OK | os.X_OK):
        msg = (
            f"Cannot write {path.name} into the folder {str(folder)!r}: it is not writable by "
            "this user (permission denied). Choose a folder you can write to."
        )
        raise PermissionError(msg)
    return path


def _size(nbytes: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(nbytes) < 1024 or unit == "TiB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} PiB"  # pragma: no cover


def check_disk_space(path: str | os.PathLike, nbytes: int) -> None:
    """Refuse to start writing ``nbytes`` at ``path`` when its folder has less free space.

    ``path`` is the file to write (or a folder). The whole size is needed even when an
    existing file is replaced, since the new file is complete before the old one goes.
    Raises :class:`NotEnoughDiskSpaceError` naming the needed and the free size.

    Examples
    --------
    >>> import tempfile
    >>> check_disk_space(tempfile.gettempdir(), 1024)
    """
    target = Path(path)
    folder = target if target.is_dir() else target.parent
    free = shutil.disk_usage(folder).free
    if int(nbytes) > free:
        msg = (
            f"Writing {str(target)!r} needs about {_size(int(nbytes))}, but {str(folder)!r} has "
            f"only {_size(free)} free. Free some space, write to another disk, or generate "
            "fewer samples (or in several files)."
        )
        raise NotEnoughDiskSpaceError(msg)


__all__ = ["NotEnoughDiskSpaceError", "check_disk_space", "check_output_path"]
