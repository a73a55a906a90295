"""Model files that cannot run code when loaded.

A saved model is one file, ``model.safetensors``: the module's weights as safetensors
tensors, and everything else (class, versions, genes, the scvi-tools registry, fitted
attributes such as the scaling and the training history) as JSON in the safetensors
header. Neither format can carry code, and the JSON is decoded into a closed set of types
(numbers, strings, lists, dicts, NumPy arrays, pandas Series/DataFrames/Categoricals), so
loading a file never imports or calls anything named in it. scvi-tools' own ``model.pt``
is a pickle (it is loaded with ``torch.load(weights_only=False)``); such files are refused,
never unpickled.

The file is written beside its final path and moved into place with ``os.replace``, so a
crash while saving leaves the previous model intact; the next save removes the temporary
file a killed process left. Files get the usual permissions (``0o666`` less the umask, or
those of the file they replace).
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

FORMAT = "scgensynth-model"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
LEGACY_FILE = "model.pt"
_TAG = "__sgs_"
_SCALARS = (type(None), bool, int, float, str)


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


# -- JSON encoding of attributes -------------------------------------------------------------
def _encode_array(arr: np.ndarray, where: str) -> dict:
    if arr.dtype.kind in "biuf":
        data = arr.ravel().tolist()
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():  # JSON has no NaN/inf
            data = [v if math.isfinite(v) else repr(v) for v in data]
        return {
            f"{_TAG}ndarray__": {"dtype": arr.dtype.str, "shape": list(arr.shape), "data": data}
        }
    if arr.dtype.kind in "OUS":
        flat = arr.ravel().tolist()
        bad = [type(v).__name__ for v in flat if not isinstance(v, str | type(None))]
        if bad:
            msg = f"Cannot save {where}: an object array holding {bad[0]} (only strings)."
            raise TypeError(msg)
        return {f"{_TAG}strarray__": {"shape": list(arr.shape), "data": flat}}
    msg = f"Cannot save {where}: arrays of dtype {arr.dtype} are not supported."
    raise TypeError(msg)


def _encode_values(values: Any, where: str) -> Any:
    if isinstance(values, pd.Categorical) or isinstance(values.dtype, pd.CategoricalDtype):
        cat = pd.Categorical(values)
        return {
            f"{_TAG}categorical__": {
                "categories": _encode_values(pd.Index(cat.categories), where),
                "codes": _encode_array(np.asarray(cat.codes), where),
                "ordered": bool(cat.ordered),
            }
        }
    arr = np.asarray(values)
    if arr.dtype.kind == "O":
        kinds = {type(v) for v in arr.ravel()}
        if kinds <= {bool, np.bool_}:
            arr = arr.astype(bool)
    return _encode_array(arr, where)


def encode(value: Any, where: str = "value") -> Any:
    """``value`` as JSON-ready data, or a TypeError naming what cannot be saved safely."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, _SCALARS):
        if isinstance(value, float) and not math.isfinite(value):
            return {f"{_TAG}float__": repr(value)}
        return value
    if isinstance(value, list):
        return [encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {f"{_TAG}tuple__": [encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith(_TAG) for k in value):
            return {k: encode(v, f"{where}[{k!r}]") for k, v in value.items()}
        items = [
            [encode(k, f"{where} key"), encode(v, f"{where}[{k!r}]")] for k, v in value.items()
        ]
        return {f"{_TAG}dict__": items}
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return _encode_array(value, where)
    if isinstance(value, pd.Index):
        return {
            f"{_TAG}index__": {
                "values": _encode_values(value, where),
                "name": encode(value.name, where),
            }
        }
    if isinstance(value, pd.Series):
        return {
            f"{_TAG}series__": {
                "values": _encode_values(value, where),
                "index": encode(value.index, f"{where}.index"),
                "name": encode(value.name, f"{where}.name"),
            }
        }
    if isinstance(value, pd.DataFrame):
        if not value.columns.is_unique:
            msg = f"Cannot save {where}: a DataFrame with duplicated column names."
            raise TypeError(msg)
        return {
            f"{_TAG}dataframe__": {
                "index": encode(value.index, f"{where}.index"),
                "columns": encode(value.columns, f"{where}.columns"),
                "data": [_encode_values(value[c], f"{where}[{c!r}]") for c in value.columns],
            }
        }
    msg = (
        f"Cannot save {where} of type {type(value).__name__} in a model file; only numbers, "
        "strings, lists, dicts, NumPy arrays and pandas objects are stored (never pickles)."
    )
    raise TypeError(msg)


def _decode_array(spec: dict) -> np.ndarray:
    dtype = np.dtype(spec["dtype"])
    if dtype.kind not in "biuf":
        msg = f"array dtype {spec['dtype']!r} is not allowed"
        raise ModelFileError(msg)
    data = spec["data"]
    if not isinstance(data, list):
        msg = "array data must be a list"
        raise ModelFileError(msg)
    special = [v for v in data if isinstance(v, str)]
    if special and (dtype.kind != "f" or not set(special) <= {"nan", "inf", "-inf"}):
        msg = f"array data holds {special[0]!r}"
        raise ModelFileError(msg)
    try:
        return np.asarray(data, dtype=dtype).reshape(spec["shape"])
    except (TypeError, ValueError) as err:
        msg = f"malformed array ({err})"
        raise ModelFileError(msg) from err


def _decode_values(obj: Any) -> Any:
    if not isinstance(obj, dict) or len(obj) != 1:
        msg = "malformed column"
        raise ModelFileError(msg)
    ((tag, spec),) = obj.items()
    if tag == f"{_TAG}categorical__":
        categories = decode(spec["categories"])
        codes = _decode_array(spec["codes"][f"{_TAG}ndarray__"])
        return pd.Categorical.from_codes(
            codes, categories=categories, ordered=bool(spec["ordered"])
        )
    return decode(obj)


def decode(obj: Any) -> Any:
    """Inverse of :func:`encode`; builds only plain data, NumPy and pandas objects."""
    if isinstance(obj, _SCALARS):
        return obj
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    if not isinstance(obj, dict):
        msg = f"unexpected JSON value of type {type(obj).__name__}"
        raise ModelFileError(msg)
    tagged = [k for k in obj if k.startswith(_TAG)]
    if not tagged:
        return {k: decode(v) for k, v in obj.items()}
    if len(obj) != 1:
        msg = f"malformed tagged value {sorted(obj)[:3]}"
        raise ModelFileError(msg)
    ((tag, spec),) = obj.items()
    if tag == f"{_TAG}float__":
        if spec not in ("nan", "inf", "-inf"):
            msg = f"bad float {spec!r}"
            raise ModelFileError(msg)
        return float(spec)
    if tag == f"{_TAG}tuple__":
        return tuple(decode(v) for v in spec)
    if tag == f"{_TAG}dict__":
        return {_hashable(decode(k)): decode(v) for k, v in spec}
    if tag == f"{_TAG}ndarray__":
        return _decode_array(spec)
    if tag == f"{_TAG}strarray__":
        if not all(isinstance(v, str | type(None)) for v in spec["data"]):
            msg = "a string array holds non-strings"
            raise ModelFileError(msg)
        return np.asarray(spec["data"], dtype=object).reshape(spec["shape"])
    if tag == f"{_TAG}index__":
        return pd.Index(_decode_values(spec["values"]), name=decode(spec["name"]))
    if tag == f"{_TAG}series__":
        return pd.Series(
            _decode_values(spec["values"]), index=decode(spec["index"]), name=decode(spec["name"])
        )
    if tag == f"{_TAG}dataframe__":
        index, columns = decode(spec["index"]), decode(spec["columns"])
        data = [_decode_values(v) for v in spec["data"]]
        if len(data) != len(columns):
            msg = "a DataFrame's columns and data differ in length"
            raise ModelFileError(msg)
        frame = pd.DataFrame({i: d for i, d in enumerate(data)}, index=index)
        frame.columns = columns
        return frame
    if tag == f"{_TAG}categorical__":
        return _decode_values(obj)
    msg = f"unknown tag {tag!r}"
    raise ModelFileError(msg)


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, list | tuple) else key


# -- versions --------------------------------------------------------------------------------
def _release(version: str) -> tuple[int, ...]:
    parts = []
    for piece in str(version).split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit()) if piece[:1].isdigit() else ""
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts) or (0,)


def check_versions(saved: str, installed: str, where: str) -> None:
    """Refuse a file written by a newer or an incompatible release of scgensynth.

    Compatible means the same major version (for 0.x releases: the same minor version, as
    semantic versioning treats 0.x minor releases as breaking).
    """
    s, i = _release(saved), _release(installed)
    s3, i3 = (*s, 0, 0, 0)[:3], (*i, 0, 0, 0)[:3]
    same_series = s3[0] == i3[0] and (s3[0] > 0 or s3[1] == i3[1])
    if s3 > i3:
        msg = (
            f"{where} was saved by scgensynth {saved}, newer than the installed {installed}. "
            f"Upgrade: pip install 'scgensynth>={saved}'."
        )
        raise ModelFileError(msg)
    if not same_series:
        msg = (
            f"{where} was saved by scgensynth {saved}, whose model files the installed "
            f"{installed} does not read. Load it with scgensynth=={saved} and retrain, or "
            "install that version to use it."
        )
        raise ModelFileError(msg)


# -- folders and atomic writes ---------------------------------------------------------------
#: a temporary of today's naming whose writer died is removed by the next write of its target;
#: one of the earlier naming (``.{name}.XXXXXXXX.tmp``, no owner in the name) once this old
LEGACY_TEMPORARY_AGE_S = 3600.0
_LEGACY_TEMPORARY = re.compile(r"[a-z0-9_]{8}")
_RANDOM = re.compile(r"[0-9a-f]{8}")


def check_folder(dir_path: str | os.PathLike, what: str = "dir_path") -> Path:
    """``dir_path`` as a Path, refused at once if it cannot be a folder written to.

    A path that is a file, a path below a file, and a folder (or the nearest existing folder
    it would be created in) that this user cannot write to give a clear error before any
    work is done. The folder is not created here.
    """
    folder = Path(dir_path)
    if folder.exists() and not folder.is_dir():
        msg = f"{what} {str(folder)!r} is a file; give a folder (it is created if needed)."
        raise NotADirectoryError(msg)
    existing = folder
    while not existing.exists():
        if existing.is_symlink():
            msg = f"{what} {str(folder)!r} cannot be created: {existing} is a broken link."
            raise NotADirectoryError(msg)
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        msg = (
            f"{what} {str(folder)!r} cannot be created: {existing} is a file, not a folder; "
            "give a folder."
        )
        raise NotADirectoryError(msg)
    if existing.exists() and not os.access(existing, os.W_OK | os.X_OK):
        msg = (
            f"Cannot write into {what} {str(folder)!r}: the folder {str(existing)!r} is not "
            "writable by this user (permission denied). Choose a folder you can write to."
        )
        raise PermissionError(msg)
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
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        rest = name[len(prefix) : -len(".tmp")]
        parts = rest.rsplit(".", 2)
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if len(parts) == 3 and parts[0] == owner and parts[1].isdigit():
                stale = _RANDOM.fullmatch(parts[2]) is not None and not _process_alive(
                    int(parts[1])
                )
            elif _LEGACY_TEMPORARY.fullmatch(rest):
                age = now - entry.stat(follow_symlinks=False).st_mtime
                stale = age > LEGACY_TEMPORARY_AGE_S
            else:
                stale = False
            if stale:
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


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """``write(tmp)`` a file beside ``path``, flush it to disk, then move it into place.

    A crash at any point leaves ``path`` as it was; an exception leaves no temporary file
    behind, and the temporary of a killed process is removed by the next write of ``path``
    (:func:`remove_stale_temporaries`). The file gets the permissions of a newly created
    file (``0o666`` less the umask), or keeps those of the file it replaces.
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
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- reading and writing ---------------------------------------------------------------------
def model_file(dir_path: str | os.PathLike, prefix: str | None = None) -> Path:
    """Path of the model file in ``dir_path``."""
    return Path(dir_path) / f"{prefix or ''}{WEIGHTS_FILE}"


def write_model_file(
    dir_path: str | os.PathLike,
    state_dict: dict[str, torch.Tensor],
    metadata: dict[str, Any],
    *,
    overwrite: bool = False,
    prefix: str | None = None,
) -> Path:
    """Write weights and JSON metadata to one safetensors file, atomically."""
    from safetensors.torch import save_file

    folder = check_folder(dir_path)
    path = model_file(folder, prefix)
    if path.is_dir():
        msg = f"{path} is a folder; remove or rename it, or save into another folder."
        raise IsADirectoryError(msg)
    if (path.exists() or path.is_symlink()) and not overwrite:
        msg = f"{path} already exists; pass overwrite=True to replace it."
        raise FileExistsError(msg)
    tensors = {}
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            msg = f"State entry {key!r} is a {type(value).__name__}, not a tensor."
            raise TypeError(msg)
        # a private contiguous copy: safetensors refuses tensors that share memory
        tensors[key] = value.detach().to("cpu", copy=True).contiguous()
    header = {"format": FORMAT, "sgs_metadata": json.dumps(metadata, allow_nan=False)}
    make_folder(folder)
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=header))
    return path


def _unreadable(path: Path) -> PermissionError:
    msg = (
        f"{path} is not readable by this user (permission denied); the file itself may be "
        "fine. Ask its owner for read access (e.g. `chmod a+r`) or load a copy you can read."
    )
    return PermissionError(msg)


def read_model_file(
    dir_path: str | os.PathLike, prefix: str | None = None, *, weights: bool = True
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read ``(metadata, state_dict)`` of a saved model without running any of its content.

    With ``weights=False`` only the header is read and the state dict is empty.
    """
    from safetensors import SafetensorError, safe_open

    path = model_file(dir_path, prefix)
    legacy = Path(dir_path) / f"{prefix or ''}{LEGACY_FILE}"
    if Path(dir_path).exists() and not Path(dir_path).is_dir():
        folder = Path(dir_path).parent if Path(dir_path).name.endswith(WEIGHTS_FILE) else None
        hint = f" (here {str(folder)!r})" if folder is not None else ""
        msg = (
            f"{dir_path} is a file; give the folder model.save() wrote, which holds "
            f"{WEIGHTS_FILE}{hint}."
        )
        raise NotADirectoryError(msg)
    if not path.exists():
        if legacy.exists():
            msg = (
                f"{dir_path} holds {legacy.name}, a pickle (scvi-tools' format, or an early "
                "scgensynth one). Pickles can run arbitrary code when loaded, so scgensynth "
                f"does not open them. Save the model again with scgensynth to get {WEIGHTS_FILE}."
            )
            raise ModelFileError(msg)
        msg = (
            f"{dir_path} holds no saved model ({path.name} not found); save one with model.save()."
        )
        raise FileNotFoundError(msg)
    if path.is_dir():
        msg = f"{path} is a folder, not a model file."
        raise ModelFileError(msg)
    try:  # safetensors reports an unreadable file as "not found": ask the system first
        with open(path, "rb"):
            pass
    except PermissionError as err:
        raise _unreadable(path) from err
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            header = handle.metadata() or {}
            names = list(handle.keys()) if weights else []
            tensors = {k: handle.get_tensor(k) for k in names}
    except PermissionError as err:
        raise _unreadable(path) from err
    except (SafetensorError, OSError, ValueError) as err:
        msg = f"{path} is not a readable model file (damaged or not a safetensors file): {err}"
        raise ModelFileError(msg) from err
    if header.get("format") != FORMAT or "sgs_metadata" not in header:
        msg = f"{path} is a safetensors file but not a scgensynth model (no {FORMAT!r} header)."
        raise ModelFileError(msg)
    try:
        metadata = json.loads(header["sgs_metadata"])
    except json.JSONDecodeError as err:
        msg = f"{path}: the model's metadata is not valid JSON ({err})."
        raise ModelFileError(msg) from err
    if not isinstance(metadata, dict):
        msg = f"{path}: the model's metadata is not a JSON object."
        raise ModelFileError(msg)
    found = metadata.get("format_version")
    if type(found) is not int:  # bool, float and str are damage, not another version
        msg = (
            f"{path}: the model file's header field 'format_version' is damaged ({found!r} "
            "is not a version number)."
        )
        raise ModelFileError(msg)
    if found != FORMAT_VERSION:
        msg = (
            f"{path} has model-file format version {found!r} (header field 'format_version'); "
            f"this scgensynth reads version {FORMAT_VERSION}."
        )
        raise ModelFileError(msg)
    return metadata, tensors
