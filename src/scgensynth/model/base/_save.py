"""save() and load() for scgensynth's models through files that cannot run code."""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from numbers import Real
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._files import (
    FORMAT_VERSION,
    ModelFileError,
    atomic_write,
    check_folder,
    check_versions,
    decode,
    encode,
    make_folder,
    model_file,
    read_model_file,
    write_model_file,
)

if TYPE_CHECKING:
    from anndata import AnnData

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


def _decode_attributes(metadata: Mapping[str, Any], where: str) -> dict[str, Any]:
    raw = metadata.get("attributes")
    if not isinstance(raw, dict):
        raise _damaged(where, "attributes", f"{_kind(raw)}, not a mapping")
    attrs = {}
    for name, value in raw.items():
        field = f"attributes.{name}"
        if not (name.isidentifier() and name.endswith("_") and not name.startswith("_")):
            raise _damaged(where, field, "not the name of a fitted attribute")
        try:
            attrs[name] = decode(value)
        except ModelFileError as err:
            msg = f"{where}: malformed model metadata in {field!r} ({err})."
            raise ModelFileError(msg) from err
        except (*_CAUGHT, RecursionError) as err:
            msg = f"{where}: malformed model metadata in {field!r} ({type(err).__name__}: {err})."
            raise ModelFileError(msg) from err
    for name in ("registry_", "init_params_"):
        if name not in attrs:
            msg = f"{where}: the header field 'attributes' lacks {name!r}."
            raise ModelFileError(msg)
    registry = _mapping(attrs["registry_"], where, "attributes.registry_")
    for key in ("setup_args", "field_registries"):
        if key not in registry:
            msg = f"{where}: the header field 'attributes.registry_' lacks {key!r}."
            raise ModelFileError(msg)
    _mapping(registry["setup_args"], where, "attributes.registry_.setup_args")
    fields = _mapping(registry["field_registries"], where, "attributes.registry_.field_registries")
    for key, field in fields.items():
        field = _mapping(field, where, f"attributes.registry_.field_registries.{key}")
        state = field.get("state_registry", {})
        _mapping(state, where, f"attributes.registry_.field_registries.{key}.state_registry")
    init = _mapping(attrs["init_params_"], where, "attributes.init_params_")
    for key in ("non_kwargs", "kwargs"):
        if key not in init:
            msg = f"{where}: the header field 'attributes.init_params_' lacks {key!r}."
            raise ModelFileError(msg)
    _mapping(init["non_kwargs"], where, "attributes.init_params_.non_kwargs")
    groups = _mapping(init["kwargs"], where, "attributes.init_params_.kwargs")
    for key, group in groups.items():
        _mapping(group, where, f"attributes.init_params_.kwargs.{key}")
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
    unknown = sorted(set(setup_args) - named - {"adata"})
    if unknown:
        detail = f"{unknown} are not arguments of {cls.__name__}.setup_anndata"
        raise _damaged(where, "attributes.registry_.setup_args", detail)


def _check_init_arguments(cls: type, arguments: Mapping[str, Any], where: str) -> None:
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(arguments) - set(params) - {"self", "adata"})
    if unknown:
        detail = f"{unknown} are not arguments of {cls.__name__}"
        raise _damaged(where, "attributes.init_params_", detail)


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


def _check_attributes(model: Any, attrs: Mapping[str, Any], n_obs: Any, where: str) -> None:
    """Refuse fitted attributes that are missing or not of the kind the class holds."""
    cls = type(model)
    fresh = {k: v for k, v in model._get_user_attributes() if k.endswith("_")}
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
        if problem is None and name.endswith("_indices_") and value is not None:
            ok = isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.kind in "iu"
            if not ok:
                problem = "not a list of sample positions"
            elif (
                len(value) and isinstance(n_obs, int) and (value.min() < 0 or value.max() >= n_obs)
            ):
                problem = f"positions outside the {n_obs} training samples"
        if problem is None and name == "history_" and value is not None:
            ok = isinstance(value, Mapping) and all(
                isinstance(v, pd.DataFrame) for v in value.values()
            )
            problem = None if ok else "not a mapping of loss tables"
        if problem:
            raise _damaged(where, field, problem)


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
        attrs = {k: v for k, v in self._get_user_attributes() if k.endswith("_")}
        attrs["init_params_"] = self._init_params_to_save(attrs["init_params_"])
        metadata = {
            "format_version": FORMAT_VERSION,
            "class": name,
            "scgensynth_version": installed_version(),
            "scvi_tools_version": scvi.__version__,
            "torch_version": torch.__version__,
            "var_names": [str(v) for v in self.adata.var_names],
            "attributes": {k: encode(v, f"{name}.{k}") for k, v in attrs.items()},
        }
        make_folder(folder)
        if save_anndata:
            adata = self.adata
            atomic_write(targets[1], lambda tmp: adata.write_h5ad(tmp, **anndata_write_kwargs))
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

    def _init_params_to_save(self, init: dict[str, Any]) -> dict[str, Any]:
        """Constructor arguments as stored (a subclass replaces objects it cannot store)."""
        return init

    @classmethod
    def _check_restored_init(cls, arguments: Mapping[str, Any], where: str) -> None:
        """Refuse constructor arguments that a file could not restore (see above)."""

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
        """Load a model saved with :meth:`save`; ``adata`` must have the training genes.

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
            and the covariate columns the model was set up with.
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
        """
        from scvi.model._utils import parse_device_args

        where = str(model_file(dir_path, prefix))
        if adata is None:
            msg = (
                "Pass the AnnData the model was trained on (or one with the same genes and "
                f"covariates): {cls.__name__}.load(dir_path, adata=adata)."
            )
            raise ValueError(msg)
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
            model = cls(proxy, **arguments)
        except (KeyError, TypeError, AttributeError, IndexError) as err:
            yours = f" and your {sorted(init_overrides)}" if init_overrides else ""
            msg = (
                f"{where}: the constructor arguments saved in the file (header field "
                f"'attributes.init_params_'){yours} do not build a {cls.__name__} "
                f"({type(err).__name__}: {err})."
            )
            raise ModelFileError(msg) from err
        _check_attributes(model, attrs, _x_state(registry).get("n_obs"), where)
        for name, value in attrs.items():
            setattr(model, name, value)
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
        return model
