"""save() and load() for scgensynth's models through files that cannot run code."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._files import (
    FORMAT_VERSION,
    ModelFileError,
    check_versions,
    decode,
    encode,
    model_file,
    read_model_file,
    write_model_file,
)

if TYPE_CHECKING:
    from anndata import AnnData


def installed_version() -> str:
    """The installed scgensynth version."""
    import scgensynth

    return scgensynth.__version__


def check_gene_names(saved: Any, adata: AnnData) -> None:
    """Refuse an AnnData whose genes differ from those a saved model was trained on."""
    var_names = np.asarray(saved).astype(str)
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


def read_metadata(dir_path: str | os.PathLike, prefix: str | None = None) -> dict[str, Any]:
    """The JSON metadata of a saved model (class, versions, genes, setup), weights not read."""
    metadata, _ = read_model_file(dir_path, prefix, weights=False)
    for key in ("class", "scgensynth_version", "var_names", "attributes"):
        if key not in metadata:
            msg = f"{model_file(dir_path, prefix)}: the metadata lacks {key!r}."
            raise ModelFileError(msg)
    return metadata


def _decode_attributes(metadata: Mapping[str, Any], where: str) -> dict[str, Any]:
    try:
        attrs = {name: decode(value) for name, value in metadata["attributes"].items()}
        needed = {
            "registry_.setup_args": "setup_args" in attrs["registry_"],
            "init_params_.non_kwargs": "non_kwargs" in attrs["init_params_"],
            "init_params_.kwargs": "kwargs" in attrs["init_params_"],
        }
        lacking = [k for k, present in needed.items() if not present]
        if lacking:
            raise KeyError(lacking[0])
    except ModelFileError as err:
        msg = f"{where}: malformed model metadata ({err})."
        raise ModelFileError(msg) from err
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        msg = f"{where}: malformed model metadata ({type(err).__name__}: {err})."
        raise ModelFileError(msg) from err
    return attrs


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
        existing model intact.

        Parameters
        ----------
        dir_path
            Folder to save into (created if needed).
        prefix
            Prefix of the file names.
        overwrite
            Replace a model already saved there.
        save_anndata
            Also write the registered training data as ``adata.h5ad``.
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
        path = model_file(dir_path, prefix)
        if path.exists() and not overwrite:
            msg = f"{path} already exists; pass overwrite=True to replace it."
            raise FileExistsError(msg)
        if save_anndata:
            Path(dir_path).mkdir(parents=True, exist_ok=True)
            target = Path(dir_path) / f"{prefix or ''}adata.h5ad"
            self.adata.write_h5ad(target, **anndata_write_kwargs)
        write_model_file(
            dir_path, self.module.state_dict(), metadata, overwrite=overwrite, prefix=prefix
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
                f"{where} holds a {metadata['class']!r} model, not a {cls.__name__}; load it "
                "with sgs.model.load_model(dir_path, adata=adata) or that class's load()."
            )
            raise ModelFileError(msg)
        check_versions(metadata["scgensynth_version"], installed_version(), where)
        attrs = _decode_attributes(metadata, where)
        _, state = read_model_file(dir_path, prefix)
        registry = attrs.pop("registry_")
        init = attrs.pop("init_params_")
        setup_args = dict(registry["setup_args"])
        check_gene_names(metadata["var_names"], adata)
        proxy = cls._load_proxy(adata, setup_args)
        cls.setup_anndata(proxy, source_registry=registry, **setup_args)
        arguments = dict(init["non_kwargs"])
        arguments.update({k: v for group in init["kwargs"].values() for k, v in group.items()})
        unknown = sorted(set(init_overrides) - set(arguments))
        if unknown:
            msg = f"{cls.__name__}.load() got unknown argument(s) {unknown}."
            raise TypeError(msg)
        arguments.update(init_overrides)
        cls._check_restored_init(arguments, where)
        model = cls(proxy, **arguments)
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
