"""Writing files without losing what the user had (not public API; any layer may import it).

- **checks before any work**: :func:`check_output_path` (a file about to be written: not a
  folder, not one of the inputs, not open in this session, not replaced unasked),
  :func:`check_folder` (a folder about to be written into), :func:`check_disk_space`;
- **atomic writes**: :func:`atomic_write` writes beside the final path and moves the file
  into place with ``os.replace``, so a crash leaves the previous file intact; the next write
  removes the temporary a killed process left (:func:`remove_stale_temporaries`). Files get
  the usual permissions (``0o666`` less the umask, or those of the file they replace).

Only the standard library is imported here (h5py when :func:`open_hdf5_files` is called),
so the command line can use these checks without loading the heavy libraries.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any


class ModelFileError(ValueError):
    """A saved model that cannot be loaded safely: not ours, tampered, or incompatible.

    A subclass of ``ValueError``; its message says what is wrong with the file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import scgensynth as sgs
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "model.pt").write_bytes(b"a pickle")
    >>> try:
    ...     sgs.model.load_model(folder, adata=sgs.datasets.gtex_tissues())
    ... except sgs.model.ModelFileError as err:
    ...     print("pickle" in str(err))
    True
    """


class NotEnoughDiskSpaceError(OSError, ValueError):
    """Too little free disk space for a file about to be written (checked before the work).

    A subclass of both ``OSError`` and ``ValueError``; the message names the needed and the
    free size.
    """


# -- folders ---------------------------------------------------------------------------------
def check_writable(folder: Path, refusal: str, *, probe: bool = False) -> None:
    """Refuse a folder this user cannot create files in, with ``refusal`` as the message.

    ``refusal`` says what cannot be written and ends before the reason, e.g. ``"Cannot write
    x.h5ad into the folder '/data': it is not writable"``. The folder's permissions are asked
    first; with ``probe``, a file is also created (and removed) in it, which also catches
    what permissions do not tell (access control lists, network file systems).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> check_writable(pathlib.Path(tempfile.mkdtemp()), "Cannot write here", probe=True)
    """
    if not os.access(folder, os.W_OK | os.X_OK):
        msg = f"{refusal} by this user (permission denied). Choose a folder you can write to."
        raise PermissionError(msg)
    if not probe:
        return
    try:
        fd, name = tempfile.mkstemp(prefix=".scgensynth-write-test-", dir=folder)
    except OSError as err:
        msg = (
            f"{refusal} by this user: creating a file there failed ({err}). Choose a folder "
            "you can write to."
        )
        raise PermissionError(msg) from err
    os.close(fd)
    os.unlink(name)


def _nearest_existing(folder: Path, what: str) -> Path:
    """``folder``, or the nearest of its parents that exists (a broken link is refused)."""
    existing = folder
    while not existing.exists():
        if existing.is_symlink():
            msg = f"{what} {str(folder)!r} cannot be created: {existing} is a broken link."
            raise NotADirectoryError(msg)
        if existing.parent == existing:
            break
        existing = existing.parent
    return existing


def check_folder(
    dir_path: str | os.PathLike,
    what: str = "dir_path",
    *,
    parents: bool = True,
    probe: bool = False,
) -> Path:
    """``dir_path`` as a Path, refused at once if it cannot be a folder written to.

    A path that is a file, a path below a file, and a folder (or the nearest existing folder
    it would be created in) that this user cannot write to give a clear error before any
    work is done; ``what`` names the path in the messages. Without ``parents``, the folder
    ``dir_path`` would be created in must exist. ``probe`` is passed to
    :func:`check_writable`. The folder is not created here (:func:`make_folder` does).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> check_folder(folder / "results", "--out").name
    'results'
    >>> check_folder(folder / "missing" / "results", "--out", parents=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: The folder ... that --out ... would be created in does not exist; ...
    """
    folder = Path(dir_path)
    if folder.exists() and not folder.is_dir():
        msg = (
            f"{what} {str(folder)!r} is a file, not a folder: that path is a file; give a "
            "folder (it is created if needed)."
        )
        raise NotADirectoryError(msg)
    existing = _nearest_existing(folder, what)
    if existing.exists() and not existing.is_dir():
        msg = (
            f"{what} {str(folder)!r} cannot be created: {existing} is a file, not a folder; "
            "give a folder."
        )
        raise NotADirectoryError(msg)
    if not parents and existing not in (folder, folder.parent):
        msg = (
            f"The folder {str(folder.parent)!r} that {what} {str(folder)!r} would be created "
            "in does not exist; create it first."
        )
        raise FileNotFoundError(msg)
    if existing.exists():
        refusal = (
            f"Cannot write into {what} {str(folder)!r}: the folder {str(existing)!r} is not "
            "writable"
        )
        check_writable(existing, refusal, probe=probe)
    return folder


def make_folder(folder: Path) -> None:
    """Create ``folder`` (and its parents), with a clear error when that is not allowed."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except PermissionError as err:
        msg = (
            f"Cannot create the folder {str(folder)!r}: permission denied. Choose a folder you "
            "can write to."
        )
        raise PermissionError(msg) from err
    except (FileExistsError, NotADirectoryError) as err:
        msg = f"Cannot create the folder {str(folder)!r}: a file is in the way ({err})."
        raise NotADirectoryError(msg) from err


# -- files about to be written ---------------------------------------------------------------
def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file (links and relative paths included)."""
    a, b = Path(a), Path(b)
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


def _output_file(filename: Any, suffix: str | None, what: str) -> Path:
    """``filename`` as a Path if it is a path, ends in ``suffix`` and is not a folder."""
    if not isinstance(filename, str | os.PathLike):
        msg = f"{what} must be a path (str or os.PathLike), not {type(filename).__name__}."
        raise TypeError(msg)
    path = Path(filename)
    if suffix is not None and path.suffix != suffix:
        why = " (the samples are written as an AnnData file)" if suffix == ".h5ad" else ""
        msg = f"{what} must end in {suffix}{why}, got {str(path)!r}."
        raise ValueError(msg)
    if path.is_dir():
        kind = f"the {suffix} file" if suffix else "a file"
        msg = f"{what} {str(path)!r} is a directory; give the path of {kind}."
        raise IsADirectoryError(msg)
    return path


def _check_parent_folder(path: Path, what: str) -> None:
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        msg = f"The folder of {what} {str(path)!r}, {str(folder)!r}, is a file; give a folder."
        raise NotADirectoryError(msg)
    if not folder.is_dir():
        msg = f"The folder of {what} {str(path)!r} does not exist; create it first."
        raise FileNotFoundError(msg)


def _check_not_an_input(path: Path, inputs: Iterable[Any] | Mapping[str, Any], what: str) -> None:
    """Refuse ``path`` if it is one of ``inputs`` (named by their keys if a mapping)."""
    named = inputs.items() if isinstance(inputs, Mapping) else ((None, i) for i in inputs)
    for name, item in named:
        source = _as_input_path(item)
        if source is not None and same_file(path, source):
            which = f"the input {name}" if name else "one of the inputs"
            msg = (
                f"{what} {str(path)!r} is {which} ({str(source)!r}); writing there would "
                "destroy it. Choose another path."
            )
            raise ValueError(msg)


def _check_not_open(path: Path, what: str) -> None:
    if path.exists() and any(same_file(path, p) for p in open_hdf5_files()):
        msg = (
            f"{what} {str(path)!r} is open in this session (e.g. an AnnData read with "
            "backed='r'); replacing it would destroy the data that object reads, even with "
            "overwrite=True. Close it first (`adata.file.close()`) or choose another path."
        )
        raise ValueError(msg)


def check_output_path(
    filename: str | os.PathLike | None,
    *,
    overwrite: bool = False,
    inputs: Iterable[Any] | Mapping[str, Any] = (),
    suffix: str | None = ".h5ad",
    what: str = "filename",
    overwrite_hint: str = "overwrite=True",
    probe: bool = False,
) -> Path | None:
    """``filename`` as a Path, checked before any work is done (``None`` stays ``None``).

    Refused: a path that does not end in ``suffix`` (any name if ``None``), a folder, a path
    in a folder that does not exist or that this user cannot write to
    (:class:`PermissionError`; ``probe`` is passed to :func:`check_writable`), one of the
    ``inputs`` (paths, or AnnData objects opened backed; writing would destroy an input; a
    mapping names each input by its key), a file this process has open with h5py (an
    AnnData read backed from it, even with ``overwrite=True``: replacing it would pull the
    data from under that object), and an existing file unless ``overwrite=True``
    (:class:`FileExistsError`). The messages name the path ``what`` (e.g. ``"--out"`` on
    the command line) and tell to pass ``overwrite_hint`` to replace a file.

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
    >>> check_output_path(folder / "synth.h5ad", inputs={"--adata": folder / "synth.h5ad"},
    ...                   what="--out", overwrite=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: --out '...synth.h5ad' is the input --adata (...); writing there would ...
    """
    if filename is None:
        return None
    path = _output_file(filename, suffix, what)
    _check_parent_folder(path, what)
    _check_not_an_input(path, inputs, what)
    _check_not_open(path, what)
    if (path.exists() or path.is_symlink()) and not overwrite:
        msg = f"{path} already exists; pass {overwrite_hint} to replace it."
        raise FileExistsError(msg)
    refusal = f"Cannot write {path.name} into the folder {str(path.parent)!r}: it is not writable"
    check_writable(path.parent, refusal, probe=probe)
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


# -- atomic writes ---------------------------------------------------------------------------
#: a temporary of today's naming whose writer died is removed by the next write of its target;
#: one of the earlier naming (``.{name}.XXXXXXXX.tmp``, no owner in the name) once this old
LEGACY_TEMPORARY_AGE_S = 3600.0
_LEGACY_TEMPORARY = re.compile(r"[a-z0-9_]{8}")
_RANDOM = re.compile(r"[0-9a-f]{8}")


def _owner_token() -> str:
    """The machine (and PID namespace) as named in temporary files."""
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"
    try:  # processes of another container with the same host name are not ours to judge
        namespace = "".join(ch for ch in os.readlink("/proc/self/ns/pid") if ch.isdigit())
    except OSError:
        namespace = ""
    return f"{host}-{namespace}" if namespace else host


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not a process we can judge: keep its file
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, under another user
        return True
    return True


def _is_stale(entry: os.DirEntry, rest: str, owner: str, now: float) -> bool:
    """Whether the temporary ``entry`` (``rest``: its name less prefix and ``.tmp``) is debris."""
    if not entry.is_file(follow_symlinks=False):
        return False
    parts = rest.rsplit(".", 2)
    if len(parts) == 3 and parts[0] == owner and parts[1].isdigit():
        return _RANDOM.fullmatch(parts[2]) is not None and not _process_alive(int(parts[1]))
    if _LEGACY_TEMPORARY.fullmatch(rest):
        return now - entry.stat(follow_symlinks=False).st_mtime > LEGACY_TEMPORARY_AGE_S
    return False


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporary files an interrupted :func:`atomic_write` of ``path`` left.

    A temporary is named ``.{name}.{host}.{pid}.{random}.tmp``; it is removed when it was
    written on this machine by a process that no longer runs. Temporaries of the earlier
    naming, ``.{name}.XXXXXXXX.tmp``, are removed once not modified for
    :data:`LEGACY_TEMPORARY_AGE_S`. A temporary of a running process (a concurrent save) is
    never touched. Returns the removed paths.
    """
    prefix, owner, now = f".{path.name}.", _owner_token(), time.time()
    removed = []
    try:
        with os.scandir(path.parent) as listing:
            entries = [e for e in listing if e.name.startswith(prefix)]
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.endswith(".tmp"):
            continue
        try:
            if _is_stale(entry, entry.name[len(prefix) : -len(".tmp")], owner, now):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # gone meanwhile, or not ours to remove: leave it
            continue
    return removed


def _umask() -> int:
    """The process's umask, read without changing it where the system says it."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _new_temporary(path: Path) -> Path:
    owner, pid = _owner_token(), os.getpid()
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{owner}.{pid}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        except PermissionError as err:
            msg = (
                f"Cannot write {path.name} into the folder {str(path.parent)!r}: permission "
                "denied (the folder is not writable by this user). Choose a folder you can "
                "write to."
            )
            raise PermissionError(msg) from err
        os.close(fd)
        return tmp
    msg = f"Could not create a temporary file beside {path}."  # pragma: no cover
    raise FileExistsError(msg)  # pragma: no cover


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """``write(tmp)`` a file beside ``path``, flush it to disk, then move it into place.

    A crash at any point leaves ``path`` as it was; an exception leaves no temporary file
    behind, and the temporary of a killed process is removed by the next write of ``path``
    (:func:`remove_stale_temporaries`). The file gets the permissions of a newly created
    file (``0o666`` less the umask), or keeps those of the file it replaces.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
    >>> atomic_write(path, lambda tmp: pathlib.Path(tmp).write_text("kept"))
    >>> path.read_text(), [p.name for p in path.parent.iterdir()]
    ('kept', ['notes.txt'])
    """
    path = Path(path)
    if path.is_dir():
        msg = f"{path} is a folder; remove or rename it, or choose another path."
        raise IsADirectoryError(msg)
    remove_stale_temporaries(path)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    tmp = _new_temporary(path)
    try:
        write(str(tmp))
        os.chmod(tmp, mode)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


__all__ = [
    "LEGACY_TEMPORARY_AGE_S",
    "NotEnoughDiskSpaceError",
    "atomic_write",
    "check_disk_space",
    "check_folder",
    "check_output_path",
    "check_writable",
    "make_folder",
    "open_hdf5_files",
    "remove_stale_temporaries",
    "same_file",
]
