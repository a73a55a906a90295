"""Model files that cannot run code when loaded.

A saved model is one file, ``model.safetensors``: the module's weights as safetensors
tensors, and everything else (class, versions, genes, the scvi-tools registry, fitted
attributes such as the scaling and the training history) as JSON in the safetensors
header. Neither format can carry code, and the JSON is decoded into a closed set of types
(numbers, strings, lists, dicts, NumPy arrays, pandas Series/DataFrames/Categoricals), so
loading a file never imports or calls anything named in it. scvi-tools' own ``model.pt``
is a pickle (it is loaded with ``torch.load(weights_only=False)``); such files are refused,
never unpickled.

The file is written with :func:`scgensynth._utils._files.atomic_write`: beside its final
path, then moved into place, so a crash while saving leaves the previous model intact.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from scgensynth._utils._files import ModelFileError, atomic_write, check_folder, make_folder

FORMAT = "scgensynth-model"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
LEGACY_FILE = "model.pt"
_TAG = "__sgs_"
_SCALARS = (type(None), bool, int, float, str)


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


def _encode_container(value: list | tuple | dict, where: str) -> Any:
    if isinstance(value, list):
        return [encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {f"{_TAG}tuple__": [encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if all(isinstance(k, str) and not k.startswith(_TAG) for k in value):
        return {k: encode(v, f"{where}[{k!r}]") for k, v in value.items()}
    items = [[encode(k, f"{where} key"), encode(v, f"{where}[{k!r}]")] for k, v in value.items()]
    return {f"{_TAG}dict__": items}


def _encode_pandas(value: pd.Index | pd.Series | pd.DataFrame, where: str) -> dict:
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


def encode(value: Any, where: str = "value") -> Any:
    """``value`` as JSON-ready data, or a TypeError naming what cannot be saved safely."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return {f"{_TAG}float__": repr(value)}
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, list | tuple | dict):
        return _encode_container(value, where)
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return _encode_array(value, where)
    if isinstance(value, pd.Index | pd.Series | pd.DataFrame):
        return _encode_pandas(value, where)
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


def _decode_categorical(spec: Any) -> pd.Categorical:
    categories = decode(spec["categories"])
    codes = _decode_array(spec["codes"][f"{_TAG}ndarray__"])
    return pd.Categorical.from_codes(codes, categories=categories, ordered=bool(spec["ordered"]))


def _decode_values(obj: Any) -> Any:
    if not isinstance(obj, dict) or len(obj) != 1:
        msg = "malformed column"
        raise ModelFileError(msg)
    ((tag, spec),) = obj.items()
    if tag == f"{_TAG}categorical__":
        return _decode_categorical(spec)
    return decode(obj)


def _decode_float(spec: Any) -> float:
    if spec not in ("nan", "inf", "-inf"):
        msg = f"bad float {spec!r}"
        raise ModelFileError(msg)
    return float(spec)


def _decode_strarray(spec: Any) -> np.ndarray:
    if not all(isinstance(v, str | type(None)) for v in spec["data"]):
        msg = "a string array holds non-strings"
        raise ModelFileError(msg)
    return np.asarray(spec["data"], dtype=object).reshape(spec["shape"])


def _decode_series(spec: Any) -> pd.Series:
    values, index = _decode_values(spec["values"]), decode(spec["index"])
    return pd.Series(values, index=index, name=decode(spec["name"]))


def _decode_dataframe(spec: Any) -> pd.DataFrame:
    index, columns = decode(spec["index"]), decode(spec["columns"])
    data = [_decode_values(v) for v in spec["data"]]
    if len(data) != len(columns):
        msg = "a DataFrame's columns and data differ in length"
        raise ModelFileError(msg)
    frame = pd.DataFrame({i: d for i, d in enumerate(data)}, index=index)
    frame.columns = columns
    return frame


#: how each tagged value is built again from its JSON
_DECODERS: dict[str, Callable[[Any], Any]] = {
    f"{_TAG}float__": _decode_float,
    f"{_TAG}tuple__": lambda spec: tuple(decode(v) for v in spec),
    f"{_TAG}dict__": lambda spec: {_hashable(decode(k)): decode(v) for k, v in spec},
    f"{_TAG}ndarray__": _decode_array,
    f"{_TAG}strarray__": _decode_strarray,
    f"{_TAG}index__": lambda spec: pd.Index(
        _decode_values(spec["values"]), name=decode(spec["name"])
    ),
    f"{_TAG}series__": _decode_series,
    f"{_TAG}dataframe__": _decode_dataframe,
    f"{_TAG}categorical__": _decode_categorical,
}


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
    if tag not in _DECODERS:
        msg = f"unknown tag {tag!r}"
        raise ModelFileError(msg)
    return _DECODERS[tag](spec)


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


def _existing_model_file(dir_path: str | os.PathLike, prefix: str | None) -> Path:
    """The model file in ``dir_path``, refused if it is missing, a pickle or unreadable."""
    path = model_file(dir_path, prefix)
    if Path(dir_path).exists() and not Path(dir_path).is_dir():
        folder = Path(dir_path).parent if Path(dir_path).name.endswith(WEIGHTS_FILE) else None
        hint = f" (here {str(folder)!r})" if folder is not None else ""
        msg = (
            f"{dir_path} is a file; give the folder model.save() wrote, which holds "
            f"{WEIGHTS_FILE}{hint}."
        )
        raise NotADirectoryError(msg)
    if not path.exists():
        legacy = Path(dir_path) / f"{prefix or ''}{LEGACY_FILE}"
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
    return path


def _read_safetensors(path: Path, weights: bool) -> tuple[dict[str, str], dict[str, Any]]:
    """The header of ``path`` and, if ``weights``, its tensors."""
    from safetensors import SafetensorError, safe_open

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
    return header, tensors


def _header_metadata(path: Path, header: dict[str, str]) -> dict[str, Any]:
    """The JSON metadata in a safetensors ``header``, refused if not ours or another version."""
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
    return metadata


def read_model_file(
    dir_path: str | os.PathLike, prefix: str | None = None, *, weights: bool = True
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read ``(metadata, state_dict)`` of a saved model without running any of its content.

    With ``weights=False`` only the header is read and the state dict is empty.
    """
    path = _existing_model_file(dir_path, prefix)
    header, tensors = _read_safetensors(path, weights)
    return _header_metadata(path, header), tensors
