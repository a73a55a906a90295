"""The one explicit list of scgensynth's generators, open to third-party ones.

A generator is a :class:`~scgensynth.model.BaseGeneratorModel` subclass that declares what
the tools need to know about it (see :doc:`/contributing`); :func:`register` makes it
available by name to :func:`scgensynth.tl.train`, its ``sgs.tl.train_<name>`` shortcut,
:func:`scgensynth.tl.compare_generators`, the command line and the test suite.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pandas as pd

from scgensynth._utils._files import ModelFileError

from .base import BaseGeneratorModel

if TYPE_CHECKING:
    import os

    from anndata import AnnData

#: name -> generator class, in registration order
_REGISTRY: dict[str, type[BaseGeneratorModel]] = {}
#: models that are saved and loaded like generators but are not generators
_OTHER_MODELS: dict[str, type] = {}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def register(name: str, cls: type[BaseGeneratorModel], *, overwrite: bool = False) -> type:
    """Make a generator class available by ``name`` (as synthcity's plugins are).

    Afterwards ``sgs.tl.train(adata, name)``, ``sgs.tl.train_<name>(adata)``,
    :func:`scgensynth.tl.compare_generators`, :func:`load_model`, the command line
    (``--model name``) and every tool that reads the generator contract take it.

    Parameters
    ----------
    name
        Short lower-case name (letters, digits, ``_``), e.g. ``"wgan"``.
    cls
        A subclass of :class:`~scgensynth.model.BaseGeneratorModel` with its module
        (``_module_cls``), training plan and the class attributes of the contract
        (``description``, ``reference``, ``quick_kwargs``).
    overwrite
        Replace a generator already registered under ``name``.

    Returns
    -------
    ``cls``, so that ``register`` can decorate a class definition.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> class MyWGAN(sgs.model.WGANGP):
    ...     description = "WGAN-GP with my defaults"
    >>> _ = sgs.model.register("mywgan", MyWGAN)
    >>> "mywgan" in sgs.model.available().index
    True
    >>> sgs.model.unregister("mywgan")
    """
    if not isinstance(name, str) or not _NAME.match(name):
        msg = f"A generator's name must be lower-case letters, digits and '_', not {name!r}."
        raise ValueError(msg)
    if not (isinstance(cls, type) and issubclass(cls, BaseGeneratorModel)):
        msg = (
            f"{cls!r} is not a subclass of sgs.model.BaseGeneratorModel; only generators register."
        )
        raise TypeError(msg)
    if cls._module_cls is None:
        msg = f"{cls.__name__} declares no torch module (the class attribute _module_cls)."
        raise TypeError(msg)
    if not isinstance(cls.description, str) or not cls.description.strip():
        msg = f"{cls.__name__} needs a one-line description (the class attribute description)."
        raise TypeError(msg)
    known = _REGISTRY.get(name)
    if known is not None and known is not cls and not overwrite:
        msg = (
            f"{name!r} already names {known.__name__}; pick another name, or pass "
            "overwrite=True to replace it."
        )
        raise ValueError(msg)
    clash = [n for n, c in _REGISTRY.items() if c.__name__ == cls.__name__ and n != name]
    if clash and _REGISTRY[clash[0]] is not cls:
        msg = (
            f"Another class named {cls.__name__} is registered as {clash[0]!r}; model files "
            "name their class, so class names must be unique."
        )
        raise ValueError(msg)
    _REGISTRY[name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove a generator registered with :func:`register` (an unknown name is an error).

    Examples
    --------
    >>> import scgensynth as sgs
    >>> sgs.model.unregister("no such model")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Unknown model 'no such model'; ...
    """
    get_model_class(name)
    del _REGISTRY[name]


def register_other(cls: type) -> type:
    """Let :func:`load_model` load a model class that is not a generator (TSPG)."""
    _OTHER_MODELS[cls.__name__] = cls
    return cls


def available() -> pd.DataFrame:
    """The generators scgensynth provides, by the name ``sgs.tl.train`` takes.

    Returns
    -------
    DataFrame indexed by name with columns ``class``, ``description`` and ``reference``.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> table = sgs.model.available()
    >>> table.loc["wgan", "class"]
    'WGANGP'
    """
    return pd.DataFrame(
        {
            "class": [c.__name__ for c in _REGISTRY.values()],
            "description": [c.description for c in _REGISTRY.values()],
            "reference": [c.reference for c in _REGISTRY.values()],
        },
        index=pd.Index(list(_REGISTRY), name="model", dtype=object),
    )


def get_model_class(name: str) -> type[BaseGeneratorModel]:
    """The model class registered as ``name`` (see :func:`available`).

    Examples
    --------
    >>> import scgensynth as sgs
    >>> sgs.model.get_model_class("attgan").__name__
    'AttGAN'
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        msg = f"Unknown model {name!r}; choose one of {list(_REGISTRY)} (sgs.model.available())."
        raise ValueError(msg)
    return _REGISTRY[name]


def load_model(dir_path: str | os.PathLike, adata: AnnData | None = None, **kwargs):
    """Load a saved model of any scgensynth class (the class is read from the file).

    Works for every generator in :func:`available` and for
    :class:`~scgensynth.model.TSPG`. Only the file's JSON metadata is read to find the
    class; the file is never unpickled (see the class's ``load``).

    Parameters
    ----------
    dir_path
        Folder written by the model's ``save``.
    adata
        AnnData with the training genes, as for the class's ``load``.
    **kwargs
        Passed to the class's ``load`` (``accelerator``, ``device``, ``prefix``).

    Examples
    --------
    >>> import scgensynth as sgs
    >>> model = sgs.model.load_model("wgan/", adata=adata)  # doctest: +SKIP
    """
    from .base._save import read_metadata

    name = read_metadata(dir_path, prefix=kwargs.get("prefix"))["class"]
    by_class = {c.__name__: c for c in [*_REGISTRY.values(), *_OTHER_MODELS.values()]}
    if name not in by_class:  # read_metadata checked it is a string
        msg = (
            f"{dir_path} holds a {name!r} model, which is not a scgensynth model class (the "
            f"file's header field 'class'; known: {sorted(by_class)})."
        )
        raise ModelFileError(msg)
    return by_class[name].load(dir_path, adata=adata, **kwargs)
