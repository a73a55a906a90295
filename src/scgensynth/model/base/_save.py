"""save() and load() for scgensynth's models through files that cannot run code."""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Mapping
from numbers import Real
from typing import TYPE_CHECKING, Any

import anndata as ad
import h5py
import numpy as np
import pandas as pd

from scgensynth._utils._files import (
    ModelFileError,
    atomic_write,
    check_folder,
    check_output_path,
    make_folder,
)
from scgensynth._utils._logging import restoring

from ._files import (
    FORMAT_VERSION,
    check_versions,
    decode,
    encode,
    model_file,
    read_model_file,
    write_model_file,
)
from ._proxy import NO_TRAINING_DATA, NoTrainingData, data_free_proxy, withhold_training_data

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)

#: attributes a model computes from the data it is built on (a file lacking one would
#: silently take the value computed from the AnnData given to load()) or that say whether it
#: was trained; required in a file when the class sets them
_REQUIRED_ATTRIBUTES = (
    "is_trained_",
    "scaling_",
    "library_size_",
    "covariates_",
    "var_names_",
    "gene_index_",
)
_CAUGHT = (KeyError, TypeError, ValueError, AttributeError, IndexError)


def installed_version() -> str:
    """The installed scgensynth version."""
    import scgensynth

    return scgensynth.__version__


def _damaged(where: str, field: str, detail: str) -> ModelFileError:
    msg = (
        f"{where}: the model file's header field {field!r} is damaged ({detail}). The file was "
        "altered or not written by scgensynth; save the model again."
    )
    return ModelFileError(msg)


def check_gene_names(saved: Any, adata: AnnData) -> None:
    """Refuse an AnnData whose genes differ from those a saved model was trained on.

    ``saved`` is the model file's ``var_names`` (a list of gene names); anything else is a
    damaged file (:class:`ModelFileError`).
    """
    if not isinstance(saved, list | tuple | np.ndarray | pd.Index) or np.ndim(saved) != 1:
        raise _damaged("model file", "var_names", "not a list of gene names")
    bad = [v for v in saved if not isinstance(v, str)]
    if bad:
        detail = f"holds {type(bad[0]).__name__} {bad[0]!r}, not a gene name"
        raise _damaged("model file", "var_names", detail)
    var_names = np.asarray(list(saved), dtype=object).astype(str)
    given = np.asarray(adata.var_names).astype(str)
    if given.shape != var_names.shape or (given != var_names).any():
        missing = np.setdiff1d(var_names, given)
        extra = np.setdiff1d(given, var_names)
        parts = [f"{len(var_names)} genes at training, {len(given)} given"]
        if len(missing):
            parts.append(f"{len(missing)} missing (e.g. {missing[:5].tolist()})")
        if len(extra):
            parts.append(f"{len(extra)} not in the model (e.g. {extra[:5].tolist()})")
        if not len(missing) and not len(extra):
            parts.append("the same genes in another order")
        msg = (
            "The AnnData's genes differ from the model's: " + "; ".join(parts) + ". "
            "Subset and order them as at training, e.g. "
            "`adata = adata[:, training_adata.var_names].copy()`."
        )
        raise ValueError(msg)


def check_metadata(metadata: Mapping[str, Any], where: str) -> None:
    """Refuse a model file header whose fields are missing or of the wrong kind."""
    for key in ("class", "scgensynth_version", "var_names", "attributes"):
        if key not in metadata:
            msg = f"{where}: the metadata lacks {key!r} (a header field every model file has)."
            raise ModelFileError(msg)
    name = metadata["class"]
    if not isinstance(name, str) or not name.isidentifier():
        raise _damaged(where, "class", f"{name!r} is not a class name")
    for key in ("scgensynth_version", "scvi_tools_version", "torch_version"):
        value = metadata.get(key, "optional")
        if not isinstance(value, str) or not value.strip():
            raise _damaged(where, key, f"{value!r} is not a version")
    var_names = metadata["var_names"]
    if not isinstance(var_names, list) or not var_names:
        raise _damaged(where, "var_names", f"{_kind(var_names)}, not a list of genes")
    bad = [v for v in var_names if not isinstance(v, str)]
    if bad:
        detail = f"holds {type(bad[0]).__name__} {bad[0]!r}, not a gene name"
        raise _damaged(where, "var_names", detail)
    if len(set(var_names)) != len(var_names):
        raise _damaged(where, "var_names", "lists a gene more than once")
    if not isinstance(metadata["attributes"], dict):
        detail = f"{_kind(metadata['attributes'])}, not a mapping of attributes"
        raise _damaged(where, "attributes", detail)


def read_metadata(dir_path: str | os.PathLike, prefix: str | None = None) -> dict[str, Any]:
    """The JSON metadata of a saved model (class, versions, genes, setup), weights not read.

    A header field that is missing or of the wrong kind raises :class:`ModelFileError`
    naming the field.
    """
    metadata, _ = read_model_file(dir_path, prefix, weights=False)
    check_metadata(metadata, str(model_file(dir_path, prefix)))
    return metadata


def _mapping(value: Any, where: str, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _damaged(where, field, f"{_kind(value)}, not a mapping")
    bad = [k for k in value if not isinstance(k, str)]
    if bad:
        raise _damaged(where, field, f"has the key {bad[0]!r}, not a name")
    return value


def _require(value: Mapping[str, Any], keys: tuple[str, ...], where: str, field: str) -> None:
    """Refuse the header field ``field`` (``value``) if it lacks one of ``keys``."""
    for key in keys:
        if key not in value:
            msg = f"{where}: the header field {field!r} lacks {key!r}."
            raise ModelFileError(msg)


def _decode_attribute(name: str, value: Any, where: str) -> Any:
    field = f"attributes.{name}"
    if not (name.isidentifier() and name.endswith("_") and not name.startswith("_")):
        raise _damaged(where, field, "not the name of a fitted attribute")
    try:
        return decode(value)
    except ModelFileError as err:
        msg = f"{where}: malformed model metadata in {field!r} ({err})."
        raise ModelFileError(msg) from err
    except (*_CAUGHT, RecursionError) as err:
        msg = f"{where}: malformed model metadata in {field!r} ({type(err).__name__}: {err})."
        raise ModelFileError(msg) from err


def _mapping_of_mappings(
    value: Any, where: str, field: str, keys: tuple[str, ...]
) -> Mapping[str, Any]:
    """``value`` (the header field ``field``) as a mapping whose ``keys`` hold mappings."""
    value = _mapping(value, where, field)
    _require(value, keys, where, field)
    for key in keys:
        _mapping(value[key], where, f"{field}.{key}")
    return value


def _check_registry(value: Any, where: str) -> None:
    """The saved scvi-tools registry must hold mappings where scvi-tools reads mappings."""
    name = "attributes.registry_"
    registry = _mapping_of_mappings(value, where, name, ("setup_args", "field_registries"))
    for key, field in registry["field_registries"].items():
        field = _mapping(field, where, f"{name}.field_registries.{key}")
        state = field.get("state_registry", {})
        _mapping(state, where, f"{name}.field_registries.{key}.state_registry")


def _check_init_params(value: Any, where: str) -> None:
    """The saved constructor arguments must be mappings, as scvi-tools reads them."""
    name = "attributes.init_params_"
    init = _mapping_of_mappings(value, where, name, ("non_kwargs", "kwargs"))
    for key, group in init["kwargs"].items():
        _mapping(group, where, f"{name}.kwargs.{key}")


def _decode_attributes(metadata: Mapping[str, Any], where: str) -> dict[str, Any]:
    raw = metadata.get("attributes")
    if not isinstance(raw, dict):
        raise _damaged(where, "attributes", f"{_kind(raw)}, not a mapping")
    attrs = {name: _decode_attribute(name, value, where) for name, value in raw.items()}
    _require(attrs, ("registry_", "init_params_"), where, "attributes")
    _check_registry(attrs["registry_"], where)
    _check_init_params(attrs["init_params_"], where)
    return attrs


def _x_state(registry: Mapping[str, Any]) -> Mapping[str, Any]:
    field = registry["field_registries"].get("X", {})
    return field.get("state_registry", {}) if isinstance(field, Mapping) else {}


def _check_var_names_fit(var_names: list[str], registry: Mapping[str, Any], where: str) -> None:
    """The header's genes must be those of the data setup saved beside them."""
    state = _x_state(registry)
    n_vars, columns = state.get("n_vars"), state.get("column_names")
    if isinstance(n_vars, int) and n_vars != len(var_names):
        detail = f"{len(var_names)} genes, but the model was set up on {n_vars}"
        raise _damaged(where, "var_names", detail)
    if columns is not None:
        columns = np.asarray(columns, dtype=object).ravel()
        if len(columns) != len(var_names) or [str(c) for c in columns] != var_names:
            detail = "not the genes of the data setup saved with the model (registry_)"
            raise _damaged(where, "var_names", detail)


def _categorical_mappings(registry: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """``obs`` column -> the categories the model knows, from an scvi-tools registry."""
    out = {}
    for field in registry["field_registries"].values():
        state = field.get("state_registry", {}) if isinstance(field, Mapping) else {}
        mappings = state.get("mappings")
        if isinstance(mappings, Mapping):  # categorical covariates (CategoricalJointObsField)
            for key, categories in mappings.items():
                out[str(key)] = np.asarray(categories, dtype=object).ravel()
        key, categories = state.get("original_key"), state.get("categorical_mapping")
        if isinstance(key, str) and categories is not None:  # labels (CategoricalObsField)
            out[key] = np.asarray(categories, dtype=object).ravel()
    return out


def check_categories(adata: AnnData, registry: Mapping[str, Any]) -> None:
    """Refuse an AnnData whose categorical columns hold categories a saved model lacks.

    Only the values present count: categories of a column's dtype that no sample has are
    ignored (scvi-tools drops them), and a subset of the model's categories is fine.
    """
    for key, categories in _categorical_mappings(registry).items():
        if key not in adata.obs.columns:
            continue  # reported with the other covariate checks
        column = adata.obs[key]
        present = pd.unique(np.asarray(column.dropna(), dtype=object))
        known = set(categories.tolist())
        unknown = [v for v in present if v not in known]
        if not unknown:
            continue
        n = int(column.isin(unknown).sum())
        known_list = categories.tolist()
        if len(known_list) <= 20:
            shown, example = f"{known_list}", f"{known_list}"
        else:
            shown = f"{len(known_list)} categories ({known_list[:5]}...; the model class's "
            shown += "load_registry(dir_path) lists them all)"
            example = "known"
        n_unknown = len(unknown)
        msg = (
            f"adata.obs[{key!r}] holds {n_unknown} categor{'y' if n_unknown == 1 else 'ies'} "
            f"the model was not trained on: {sorted(map(str, unknown))[:10]} ({n} samples). "
            f"The model knows {shown}. Subset the AnnData to the model's categories, e.g. "
            f"`adata = adata[adata.obs[{key!r}].isin({example})].copy()`, or train a model "
            "on all of them."
        )
        raise ValueError(msg)


def _check_setup_args(cls: type, setup_args: Mapping[str, Any], where: str) -> None:
    # scvi-tools records the named arguments of setup_anndata, never its **kwargs
    params = inspect.signature(cls.setup_anndata).parameters
    named = {k for k, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
    field = "attributes.registry_.setup_args"
    unknown = sorted(set(setup_args) - named - {"adata"})
    if unknown:
        detail = f"{unknown} are not arguments of {cls.__name__}.setup_anndata"
        raise _damaged(where, field, detail)
    required = [
        k for k, p in params.items()
        if k not in ("cls", "adata") and p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    ]  # fmt: skip
    lacking = [k for k in required if k not in setup_args]
    if lacking:
        raise _damaged(where, field, f"lacks {lacking}")
    for key, value in setup_args.items():  # column and layer names: a name, or a list of them
        names = key.endswith("_keys")
        if value is None or not (names or key.endswith("_key") or key == "layer"):
            continue
        if names and not (
            isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
        ):
            raise _damaged(where, f"{field}.{key}", f"{_kind(value)}, not a list of names")
        if not names and not isinstance(value, str):
            raise _damaged(where, f"{field}.{key}", f"{_kind(value)}, not a name")


#: the kinds of value a constructor argument may hold, by the kind of its default
_SAME_KIND = [
    (bool, (bool, np.bool_)),
    (int | float, (int, float, np.integer, np.floating)),
    (str, (str,)),
    (list | tuple, (list, tuple)),
]


def _check_init_arguments(cls: type, arguments: Mapping[str, Any], where: str) -> None:
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(arguments) - set(params) - {"self", "adata"})
    if unknown:
        detail = f"{unknown} are not arguments of {cls.__name__}"
        raise _damaged(where, "attributes.init_params_", detail)
    for name, value in arguments.items():  # a value of the default's kind (or None if typed so)
        default = params[name].default
        if value is None and (default is None or "None" in str(params[name].annotation)):
            continue
        if not _same_kind(value, default):
            detail = f"{_kind(value)} where {cls.__name__} takes {_kind(default)}"
            raise _damaged(where, f"attributes.init_params_.{name}", detail)


def _same_kind(value: Any, default: Any) -> bool:
    """Whether ``value`` is of the kind of ``default`` (a list's items too); True if unknown."""
    if isinstance(value, bool | np.bool_) and not isinstance(default, bool | np.bool_):
        return default is None  # a boolean is an int to Python, never a count or a size here
    for kind, allowed in _SAME_KIND:
        if isinstance(default, kind):
            if not isinstance(value, allowed):
                return False
            if isinstance(default, list | tuple) and len(default):
                return all(_same_kind(v, default[0]) for v in value)
            return True
    return True


def _kind(value: Any) -> str:
    kinds = [
        (bool | np.bool_, "a boolean"),
        (Real | np.number, "a number"),
        (str, "a string"),
        (Mapping, "a dict"),
        (list | tuple, "a list"),
        (np.ndarray, "an array"),
        (pd.DataFrame, "a DataFrame"),
        (pd.Series, "a Series"),
        (pd.Index, "an Index"),
        (pd.Categorical, "a Categorical"),
    ]
    for types, kind in kinds:
        if isinstance(value, types):
            return kind
    return "None" if value is None else f"a {type(value).__name__}"


def _mismatch(saved: Any, current: Any, nested: bool = False) -> str | None:
    """Why ``saved`` cannot stand for ``current`` (a freshly built model's value), or None."""
    have, want = _kind(saved), _kind(current)
    if have != want:
        return f"{have} where the model holds {want}"
    if want == "a dict" and not nested:
        lacking = [k for k in current if k not in saved]
        if lacking:
            return f"lacks the entry {lacking[0]!r}"
        for key, value in current.items():
            problem = None if value is None else _mismatch(saved[key], value, nested=True)
            if problem:
                return f"entry {key!r}: {problem}"
    if want == "an array":
        numeric = saved.dtype.kind in "biuf", current.dtype.kind in "biuf"
        if saved.ndim != current.ndim or numeric[0] != numeric[1]:
            return f"an array of {saved.ndim} dimension(s) and dtype {saved.dtype}"
    if want == "a DataFrame":
        lacking = [c for c in current.columns if c not in saved.columns]
        if lacking:
            return f"lacks the column {lacking[0]!r}"
    return None


def _fitted_attributes(model: Any) -> dict[str, Any]:
    """The model's attributes that end in ``_`` (what a model file stores), by name.

    As scvi-tools' ``_get_user_attributes`` filtered to those names, without evaluating the
    model's other properties (AttGAN's graph is built from the training data).
    """
    out = {}
    for name in dir(model):
        if name.endswith("_") and not name.startswith(("__", "_abc_")):
            value = getattr(model, name)
            if not inspect.isroutine(value):
                out[name] = value
    return out


def _check_attributes(model: Any, attrs: Mapping[str, Any], n_obs: Any, where: str) -> None:
    """Refuse fitted attributes that are missing or not of the kind the class holds."""
    cls = type(model)
    fresh = _fitted_attributes(model)
    for name in _REQUIRED_ATTRIBUTES:
        if fresh.get(name) is not None and name not in attrs:
            msg = (
                f"{where}: the header field 'attributes' lacks {name!r}, which a "
                f"{cls.__name__} needs."
            )
            raise ModelFileError(msg)
    for name, value in attrs.items():
        field = f"attributes.{name}"
        member = inspect.getattr_static(cls, name, None)
        if (
            inspect.isroutine(member)
            or isinstance(member, classmethod | staticmethod)
            or (isinstance(member, property) and member.fset is None)
        ):
            raise _damaged(where, field, f"names a method or read-only property of {cls.__name__}")
        current = fresh.get(name)
        problem = None if current is None else _mismatch(value, current)
        if problem is None and value is not None:
            problem = _special_attribute_problem(name, value, n_obs)
        if problem:
            raise _damaged(where, field, problem)


def _special_attribute_problem(name: str, value: Any, n_obs: Any) -> str | None:
    """Checks of the attributes a fresh model leaves None (split, history, privacy)."""
    if name.endswith("_indices_"):
        ok = isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.kind in "iu"
        if not ok:
            return "not a list of sample positions"
        if len(value) and isinstance(n_obs, int) and (value.min() < 0 or value.max() >= n_obs):
            return f"positions outside the {n_obs} training samples"
    if name == "steps_per_epoch_":
        ok = isinstance(value, int | np.integer) and not isinstance(value, bool) and value > 0
        return None if ok else "not a positive number of steps"
    if name == "history_":
        ok = isinstance(value, Mapping) and all(
            isinstance(v, pd.DataFrame) for v in value.values()
        )
        return None if ok else "not a mapping of loss tables"
    if name == "privacy_":
        return _privacy_record_problem(value)
    return None


def _privacy_record_problem(value: Any) -> str | None:
    """What is wrong with a stored differential-privacy record (None when it is sound)."""
    if not isinstance(value, Mapping):
        return "not a privacy record (a mapping)"
    for key in ("epsilon", "delta", "steps"):
        number = value.get(key)
        if isinstance(number, bool) or not isinstance(number, int | float | np.number):
            return f"its {key!r} is not a number"
        if not np.isfinite(number) or number < 0:
            return f"its {key!r} is not a finite number >= 0"
    return None


def _on_disk(values: Any) -> h5py.Dataset | h5py.Group | None:
    """The HDF5 object behind a backed matrix (dense dataset or sparse group), else None."""
    if isinstance(values, h5py.Dataset):
        return values
    group = getattr(values, "group", None)
    return group if isinstance(group, h5py.Group) else None


def write_training_data(adata: AnnData, path: str, write_kwargs: Mapping[str, Any]) -> None:
    """Write a model's registered data to ``path``; backed matrices are copied, not loaded.

    A model trained on a backed file holds its matrix on disk: it is copied from that file
    into the new one by HDF5, block by block, so saving never loads it into memory.
    """
    backed = {"X": _on_disk(adata.X)} | {
        f"layers/{k}": _on_disk(v) for k, v in adata.layers.items()
    }
    backed = {k: v for k, v in backed.items() if v is not None}
    if not backed:
        adata.write_h5ad(path, **write_kwargs)
        return
    layers = {k: v for k, v in adata.layers.items() if f"layers/{k}" not in backed}
    X = None if "X" in backed else adata.X
    ad.AnnData(X=X, obs=adata.obs, var=adata.var, uns=dict(adata.uns), layers=layers).write_h5ad(
        path, **write_kwargs
    )
    with h5py.File(path, "r+") as f:
        for name, source in backed.items():
            if name in f:
                del f[name]
            source.file.copy(source, f, name=name)


def _var_table(var: pd.DataFrame, where: str) -> Any:
    """The gene annotations (``adata.var``) as a model file stores them.

    Columns that a model file cannot hold safely (objects other than text) are left out:
    the annotations serve a model loaded without its data, the genes are kept either way.
    """
    keep: list[int] = []
    for i in range(var.shape[1]):
        if var.columns[i] in var.columns[keep]:
            continue  # a repeated name: its first column only
        try:
            encode(var.iloc[:, [i]], where)
        except TypeError:
            continue
        keep.append(i)
    return encode(var.iloc[:, keep], where)


def _saved_var(metadata: Mapping[str, Any], where: str) -> pd.DataFrame:
    """The gene annotations of a model file (the names alone if it has none)."""
    names = pd.Index(metadata["var_names"], dtype=object)
    raw = metadata.get("var")
    if raw is None:
        logger.info(
            "%s holds no gene annotations (.var; it was saved before scgensynth kept them): "
            "generated samples get the gene names only. Load it with adata=<the training data> "
            "to copy that data's .var.",
            where,
        )
        return pd.DataFrame(index=names)
    try:
        var = decode(raw)
    except (ModelFileError, *_CAUGHT, RecursionError) as err:
        msg = f"{where}: malformed model metadata in 'var' ({err})."
        raise ModelFileError(msg) from err
    if not isinstance(var, pd.DataFrame) or [str(v) for v in var.index] != list(names):
        raise _damaged(where, "var", "not a table of annotations of the model's genes")
    var.index = names.rename(var.index.name)
    return var


def _data_free_proxy(
    cls: type, metadata: Mapping[str, Any], attrs: Mapping[str, Any], setup_args: dict, where: str
) -> AnnData:
    """The proxy of a generator loaded without data, from its file, or a clear refusal."""
    covariates = attrs.get("covariates_")
    generator_setup = {"layer", "categorical_covariate_keys", "continuous_covariate_keys"}
    if not set(setup_args) <= generator_setup:  # (TSPG's labels, ...)
        msg = (
            f"Pass the AnnData the {cls.__name__} was trained on (or one with the same genes "
            f"and covariates): {cls.__name__}.load(dir_path, adata=adata). Only generators "
            "load without their data."
        )
        raise ValueError(msg)
    if covariates is None:
        msg = (
            f"{where}: the header field 'attributes' lacks 'covariates_', which a "
            f"{cls.__name__} needs."
        )
        raise ModelFileError(msg)
    cat = list(setup_args.get("categorical_covariate_keys") or [])
    cont = list(setup_args.get("continuous_covariate_keys") or [])
    if (
        not isinstance(covariates, pd.DataFrame)
        or list(covariates.columns) != [*cat, *cont]
        or covariates.empty
        or not all(isinstance(covariates[k].dtype, pd.CategoricalDtype) for k in cat)
    ):
        raise _damaged(where, "attributes.covariates_", f"not a table of {[*cat, *cont]}")
    var = _saved_var(metadata, where)
    return data_free_proxy(var, covariates, setup_args.get("layer"), cat, cont)


class SafeSaveMixin:
    """Model files as safetensors weights plus JSON metadata, never pickles.

    Replaces scvi-tools' ``save``/``load`` (which unpickle ``model.pt`` with
    ``torch.load(weights_only=False)``). Subclasses build the private AnnData they register
    on in :meth:`_load_proxy`.
    """

    def save(
        self,
        dir_path: str | os.PathLike,
        prefix: str | None = None,
        overwrite: bool = False,
        save_anndata: bool = False,
        **anndata_write_kwargs,
    ) -> None:
        """Save the model to ``dir_path/model.safetensors`` (atomically).

        The file holds the weights (safetensors) and, as JSON, the class, the scgensynth,
        scvi-tools and torch versions, the genes, the data setup and the fitted attributes
        (scaling, training history, ...). Loading it cannot run code. The file is written
        beside its final path and then moved into place, so an interrupted save leaves an
        existing model intact (and the next save removes the temporary file it left).

        Nothing is written when a file would be replaced without ``overwrite=True``
        (:class:`FileExistsError`), or when ``dir_path`` cannot be a folder written to (a
        file: :class:`NotADirectoryError`; not writable: :class:`PermissionError`).

        Parameters
        ----------
        dir_path
            Folder to save into (created if needed).
        prefix
            Prefix of the file names.
        overwrite
            Replace a model (and, with ``save_anndata``, an ``adata.h5ad``) already saved
            there.
        save_anndata
            Also write the registered training data as ``adata.h5ad`` (atomically too).
        **anndata_write_kwargs
            Passed to :meth:`anndata.AnnData.write_h5ad`.

        Examples
        --------
        >>> import tempfile
        >>> import scgensynth as sgs
        >>> adata = sgs.datasets.gtex_tissues()
        >>> model = sgs.tl.train(adata, "noise", categorical_covariate_keys=["tissue"])
        >>> folder = tempfile.mkdtemp()
        >>> model.save(folder, overwrite=True)
        >>> sgs.model.load_model(folder, adata=adata)
        NoiseAugmenter(n_genes=467, covariates=['tissue'], scaling='standardize', trained=True)
        """
        import scvi
        import torch

        if save_anndata and isinstance(self._training_matrix(), NoTrainingData):
            raise ValueError(NO_TRAINING_DATA)
        folder = check_folder(dir_path)
        targets = [model_file(folder, prefix)]
        if save_anndata:
            targets.append(folder / f"{prefix or ''}adata.h5ad")
        for target in targets:
            if target.is_dir():
                msg = f"{target} is a folder; remove or rename it, or save into another folder."
                raise IsADirectoryError(msg)
        existing = [str(t) for t in targets if t.exists() or t.is_symlink()]
        if existing and not overwrite:
            what = " and ".join(existing)
            msg = (
                f"{what} already exist{'s' if len(existing) == 1 else ''}; pass overwrite=True "
                f"to replace {'it' if len(existing) == 1 else 'them'} (nothing was written)."
            )
            raise FileExistsError(msg)
        name = type(self).__name__
        attrs = _fitted_attributes(self)
        attrs["init_params_"] = self._init_params_to_save(attrs["init_params_"])
        metadata = {
            "format_version": FORMAT_VERSION,
            "class": name,
            "scgensynth_version": installed_version(),
            "scvi_tools_version": scvi.__version__,
            "torch_version": torch.__version__,
            "var_names": [str(v) for v in self.adata.var_names],
            "var": _var_table(self.adata.var, f"{name}.adata.var"),
            "attributes": {k: encode(v, f"{name}.{k}") for k, v in attrs.items()},
        }
        if save_anndata and targets[1].exists():  # never over a file the model reads
            check_output_path(targets[1], overwrite=True, inputs=self._input_files())
        make_folder(folder)
        if save_anndata:
            adata = self.adata
            atomic_write(
                targets[1], lambda tmp: write_training_data(adata, tmp, anndata_write_kwargs)
            )
        write_model_file(
            folder, self.module.state_dict(), metadata, overwrite=overwrite, prefix=prefix
        )

    @classmethod
    def load_registry(cls, dir_path: str | os.PathLike, prefix: str | None = None) -> dict:
        """The scvi-tools registry saved with the model (setup arguments, categories)."""
        metadata = read_metadata(dir_path, prefix)
        return _decode_attributes(metadata, str(dir_path))["registry_"]

    @classmethod
    def _load_proxy(cls, adata: AnnData, setup_args: Mapping[str, Any]) -> AnnData:
        raise NotImplementedError

    def _check_loaded_attributes(self) -> tuple[str, str] | None:
        """``(field, what is wrong)`` with the fitted attributes a file restored, or None.

        A subclass checks what a damaged file could make wrong but well-typed (values that
        do not fit its data setup).
        """
        return None

    def _training_matrix(self) -> Any:
        """The registered expression matrix (of the private proxy)."""
        from scvi import REGISTRY_KEYS

        return self.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)

    def _input_files(self) -> list[str]:
        """Files the model reads its data from (a backed training AnnData)."""
        source = _on_disk(self._training_matrix())
        return [source.file.filename] if source is not None else []

    def _init_params_to_save(self, init: dict[str, Any]) -> dict[str, Any]:
        """Constructor arguments as stored (a subclass replaces objects it cannot store)."""
        return init

    @classmethod
    def _check_restored_init(cls, arguments: Mapping[str, Any], where: str) -> None:
        """Refuse constructor arguments that a file could not restore (see above)."""

    @classmethod
    def _construct_saved(
        cls,
        proxy: AnnData,
        init: Mapping[str, Any],
        init_overrides: Mapping[str, Any],
        where: str,
    ):
        """The model built on ``proxy`` from the saved constructor arguments ``init``.

        ``init_overrides`` (arguments given to :meth:`load`) replace saved ones of the same
        name; an unknown one is a TypeError, arguments that do not build the class a
        :class:`ModelFileError`.
        """
        arguments = dict(init["non_kwargs"])
        arguments.update({k: v for group in init["kwargs"].values() for k, v in group.items()})
        _check_init_arguments(cls, arguments, where)
        unknown = sorted(set(init_overrides) - set(arguments))
        if unknown:
            msg = f"{cls.__name__}.load() got unknown argument(s) {unknown}."
            raise TypeError(msg)
        arguments.update(init_overrides)
        cls._check_restored_init(arguments, where)
        try:
            with restoring():  # its data warnings were given when it was trained
                return cls(proxy, **arguments)
        except (KeyError, TypeError, AttributeError, IndexError) as err:
            yours = f" and your {sorted(init_overrides)}" if init_overrides else ""
            msg = (
                f"{where}: the constructor arguments saved in the file (header field "
                f"'attributes.init_params_'){yours} do not build a {cls.__name__} "
                f"({type(err).__name__}: {err})."
            )
            raise ModelFileError(msg) from err

    @classmethod
    def load(
        cls,
        dir_path: str | os.PathLike,
        adata: AnnData | None = None,
        accelerator: str = "auto",
        device: int | str = "auto",
        prefix: str | None = None,
        **init_overrides: Any,
    ):
        """Load a model saved with :meth:`save`, with or without its training data.

        Only safetensors weights and JSON are read: a file that is not a scgensynth model,
        was tampered with, or is a pickle (scvi-tools' ``model.pt``) raises a clear error and
        nothing in it runs. The class and the scgensynth version that wrote the file are
        checked (see :func:`scgensynth.model.load_model` to load any class). Your AnnData is
        not modified: the model registers a private proxy of it.

        Parameters
        ----------
        dir_path
            Folder written by :meth:`save`.
        adata
            AnnData with the same genes (``var_names``, same order) as the training data,
            and the covariate columns the model was set up with. ``None``: a generator
            loads without its data, from what the file holds (genes and their annotations,
            training covariates, scaling, weights); it generates as with the data, but
            cannot be trained further, encode or save its training samples (a clear error
            says so). Files saved before scgensynth kept ``.var`` give the gene names only.
        accelerator, device
            Where to put the model, as for Lightning (``"cpu"``, ``"gpu"``, ``"auto"``).
        prefix
            Prefix given to :meth:`save`.
        **init_overrides
            Constructor arguments that replace the saved ones; needed only for objects a
            model file cannot hold (e.g. :class:`~scgensynth.model.TSPG`'s own
            ``classifier=``, whose weights are then restored from the file).

        Examples
        --------
        >>> import tempfile
        >>> import scgensynth as sgs
        >>> adata = sgs.datasets.gtex_tissues()
        >>> folder = tempfile.mkdtemp()
        >>> sgs.tl.train(adata, "noise", categorical_covariate_keys=["tissue"]).save(folder)
        >>> model = sgs.model.NoiseAugmenter.load(folder, adata=adata)
        >>> sgs.tl.generate(model, n_obs=3, seed=0).shape
        (3, 467)
        >>> alone = sgs.model.NoiseAugmenter.load(folder)  # without the training data
        >>> bool((alone.generate(3, seed=0).X == model.generate(3, seed=0).X).all())
        True
        """
        from scvi.model._utils import parse_device_args

        where = str(model_file(dir_path, prefix))
        metadata = read_metadata(dir_path, prefix)
        if metadata["class"] != cls.__name__:
            msg = (
                f"{where} holds a {metadata['class']!r} model, not a {cls.__name__} (its header "
                "field 'class'); load it with sgs.model.load_model(dir_path, adata=adata) or "
                "that class's load()."
            )
            raise ModelFileError(msg)
        check_versions(metadata["scgensynth_version"], installed_version(), where)
        attrs = _decode_attributes(metadata, where)
        registry = attrs.pop("registry_")
        init = attrs.pop("init_params_")
        _check_var_names_fit(metadata["var_names"], registry, where)
        setup_args = dict(registry["setup_args"])
        _check_setup_args(cls, setup_args, where)
        _, state = read_model_file(dir_path, prefix)
        proxy = cls._registered_proxy(adata, metadata, attrs, registry, where)
        model = cls._construct_saved(proxy, init, init_overrides, where)
        _check_attributes(model, attrs, _x_state(registry).get("n_obs"), where)
        for name, value in attrs.items():
            setattr(model, name, value)
        problem = model._check_loaded_attributes()
        if problem:
            raise _damaged(where, *problem)
        model.module.on_load(model)
        try:
            model.module.load_state_dict(state)
        except RuntimeError as err:
            msg = f"{where}: the weights do not fit the {cls.__name__} they describe ({err})."
            raise ModelFileError(msg) from err
        _, _, torch_device = parse_device_args(
            accelerator, device, return_device="torch", validate_single_device=True
        )
        model.to_device(torch_device)
        model.module.eval()
        if adata is None:  # saved again, it keeps the registry of its training data
            model.registry_ = registry
            withhold_training_data(proxy, setup_args.get("layer"))
        return model

    @classmethod
    def _registered_proxy(
        cls,
        adata: AnnData | None,
        metadata: Mapping[str, Any],
        attrs: Mapping[str, Any],
        registry: Mapping[str, Any],
        where: str,
    ) -> AnnData:
        """The AnnData a loaded model registers on (as saved): of ``adata``, or data-free."""
        setup_args = dict(registry["setup_args"])
        if adata is None:
            proxy = _data_free_proxy(cls, metadata, attrs, setup_args, where)
        else:
            check_gene_names(metadata["var_names"], adata)
            check_categories(adata, registry)
            proxy = cls._load_proxy(adata, setup_args)
        try:
            cls.setup_anndata(proxy, source_registry=registry, **setup_args)
        except (KeyError, TypeError, AttributeError, IndexError) as err:
            msg = (
                f"{where}: the data setup saved in the file (header field "
                f"'attributes.registry_') does not fit ({type(err).__name__}: {err})."
            )
            raise ModelFileError(msg) from err
        return proxy
