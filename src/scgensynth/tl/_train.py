from __future__ import annotations

import inspect
import logging
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import scvi

from scgensynth._utils._checks import check_seed
from scgensynth._utils._docs import doctest_skip
from scgensynth._utils._keys import check_params_key, record_params
from scgensynth._utils._logging import quiet_training
from scgensynth.model import BaseGeneratorModel, available, get_model_class

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)


def _h5ad_safe(value: Any) -> Any:
    """``value`` as ``.h5ad`` files can store it.

    Unset (None) entries of a dict are left out, as scanpy's ``params`` do, rather than
    written as the string ``'None'``.
    """
    if value is None:
        return "None"  # only inside lists, where no entry can be left out
    if isinstance(value, list | tuple):
        return [_h5ad_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _h5ad_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _model_arg_names(cls: type) -> set[str]:
    """Constructor arguments of a model class (besides ``adata``), through ``**kwargs``."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters
        names |= {
            n for n, p in params.items() if n not in ("self", "adata") and p.kind != p.VAR_KEYWORD
        }
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            break
    return names


@doctest_skip("trains a generator (minutes)")
def train(
    adata: AnnData,
    model: str = "gaussian",
    *,
    layer: str | None = None,
    categorical_covariate_keys: Sequence[str] | str | None = None,
    continuous_covariate_keys: Sequence[str] | str | None = None,
    max_epochs: int | None = None,
    seed: int = 0,
    key_added: str | None = None,
    **kwargs,
) -> BaseGeneratorModel:
    """Train any registered generator on ``adata`` in one call.

    The model is conditioned on the given ``.obs`` covariates (none: an unconditional
    model). Your AnnData is not modified except for ``adata.uns[key_added]["params"]``
    (anything else you keep in ``adata.uns[key_added]`` stays).

    Parameters
    ----------
    adata
        Samples x genes; expression in ``X`` or ``layer`` (dense or sparse).
    model
        A name from :func:`scgensynth.model.available` (``"wgan"``, ``"ddpm"``, ...).
        Default ``"gaussian"``, :class:`~scgensynth.model.GaussianGenerator` (a
        multivariate Gaussian per class with Ledoit-Wolf covariance, fitted in seconds):
        on the package's quality leaderboard (16 real datasets, 3 seeds, held-out
        samples; ``benchmarks/bench_leaderboard.py``) it has the best fidelity of the
        registered generators that do not sit near their training samples. The deep
        generators (``"wgan"``, the Viñas et al. WGAN-GP, ``"ddpm"``, ``"cvae"``, ...)
        model non-linear structure and unseen covariate combinations, at minutes to hours
        of training.
    layer
        Layer with the expression values.
    categorical_covariate_keys
        ``.obs`` columns of categorical covariates (tissue, cancer, sex, batch, ...).
    continuous_covariate_keys
        ``.obs`` columns of numeric covariates (age, ...).
    max_epochs
        Passes over the data; by default the length is set in optimiser steps
        (``n_steps``, see the model's ``train``).
    seed
        Random seed (``scvi.settings.seed``): the same seed gives the same model on CPU.
    key_added
        ``adata.uns`` key under which the parameters are recorded (default: ``model``).
    **kwargs
        The model class's constructor arguments (e.g. ``n_latent``, ``n_hidden``,
        ``scaling``) and training arguments (``n_steps``, ``batch_size``, ``train_size``,
        ``selection``, ``accelerator``, ``checkpoint_dir`` and ``resume`` to continue a
        killed run, ``privacy={"epsilon": 10}`` with ``public=public_adata`` for
        differentially private training, ...). ``sgs.tl.train_<name>`` lists each model's,
        with their defaults.

    Returns
    -------
    The trained model. Sets ``adata.uns[key_added]["params"]``.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> adata = sgs.datasets.gtex_tissues()
    >>> model = sgs.tl.train(adata, categorical_covariate_keys=["tissue"])  # GaussianGenerator
    >>> synth = sgs.tl.generate(model, n_obs=1000)
    >>> wgan = sgs.tl.train(adata, "wgan", categorical_covariate_keys=["tissue"])
    """
    cls = get_model_class(model)
    key_added = model if key_added is None else key_added
    model_args = _model_arg_names(cls)
    model_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in model_args}
    seed = check_seed(seed)
    check_params_key(adata, key_added)
    with quiet_training():  # Lightning says "Seed set to ..."
        scvi.settings.seed = seed
    proxy = cls.setup_proxy(adata, layer, categorical_covariate_keys, continuous_covariate_keys)
    fitted = cls(proxy, **model_kwargs)
    fitted.train(max_epochs=max_epochs, **kwargs)
    params = {
        "model": cls.__name__,
        "layer": layer,
        "categorical_covariate_keys": list(fitted.categorical_covariate_keys),
        "continuous_covariate_keys": list(fitted.continuous_covariate_keys),
        "max_epochs": max_epochs,
        "seed": seed,
        "scaling": fitted.scaling_["mode"],
        **model_kwargs,
        **{k: v for k, v in kwargs.items() if isinstance(v, bool | int | float | str)},
    }
    if fitted.privacy_:
        params["privacy"] = dict(fitted.privacy_)
    record_params(adata, key_added, _h5ad_safe(params))
    return fitted


#: arguments of :func:`train` that ``train_<name>`` shows first and last
_OWN_FIRST = ("layer", "categorical_covariate_keys", "continuous_covariate_keys")
_OWN_LAST = ("seed", "key_added")


def _parameter_docs(doc: str | None) -> dict[str, str]:
    """``{name: description}`` of the Parameters section of a numpy docstring.

    An entry naming several arguments (``accelerator, devices``) gives each the one
    description; ``**kwargs`` entries are left out.
    """
    lines = inspect.cleandoc(doc or "").splitlines()
    out: dict[str, str] = {}
    names: list[str] = []
    body: list[str] = []
    in_section = False

    def close() -> None:
        text = textwrap.dedent("\n".join(body)).strip()
        for name in names:
            if name.isidentifier() and text:
                out.setdefault(name, text)

    for i, line in enumerate(lines):
        underline = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if line.strip() and not line[0].isspace() and underline and set(underline) == {"-"}:
            close()
            names, in_section = [], line.strip() == "Parameters"
        elif in_section and line.strip() and not line[0].isspace() and set(line) != {"-"}:
            close()
            names, body = [n.split(":")[0].strip() for n in line.split(",")], []
        elif in_section and names:
            body.append(line)
    close()
    return out


def _keyword_parameters(func: Any) -> list[inspect.Parameter]:
    """Named parameters of ``func`` besides ``self``/``adata`` (as keyword-only ones)."""
    params = inspect.signature(func).parameters.values()
    return [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for p in params
        if p.name not in ("self", "adata") and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]


def _described(
    found: dict[str, tuple[inspect.Parameter, str]], func: Any, docs: dict[str, str]
) -> bool:
    """Add ``func``'s parameters (the first found wins) to ``found``; whether it has ``**``."""
    for param in _keyword_parameters(func):
        if param.name not in found:
            found[param.name] = (param, docs.get(param.name, ""))
    params = inspect.signature(func).parameters.values()
    return any(p.kind == p.VAR_KEYWORD for p in params)


def _class_docs(cls: type) -> dict[str, str]:
    """Parameter descriptions of ``cls`` and, where it says nothing, of its bases."""
    docs: dict[str, str] = {}
    for klass in cls.__mro__:
        for name, text in _parameter_docs(vars(klass).get("__doc__")).items():
            docs.setdefault(name, text)
    return docs


def model_parameters(cls: type) -> dict[str, list[tuple[inspect.Parameter, str]]]:
    """What ``train_<name>`` takes for the model class ``cls``, with descriptions.

    Read from the class itself, so the list cannot drift from it: ``"model"``, the
    constructor's arguments (through ``**kwargs`` to the base classes); ``"training"``,
    those of its ``train`` (through ``**kwargs`` to :meth:`BaseGeneratorModel.train
    <scgensynth.model.BaseGeneratorModel.train>` for a model with a training plan; a model
    without one trains in one pass and takes only its own); ``"plan"``, the training plan's
    arguments that ``train`` takes by name (``plan_arguments()``).
    """
    taken = {*_OWN_FIRST, *_OWN_LAST, "max_epochs", "model"}
    parts: dict[str, dict[str, tuple[inspect.Parameter, str]]] = {
        "model": {}, "training": {}, "plan": {},
    }  # fmt: skip
    docs = _class_docs(cls)
    for klass in cls.__mro__:
        if "__init__" in vars(klass) and not _described(parts["model"], klass.__init__, docs):
            break
    for klass in cls.__mro__:
        if not (issubclass(klass, BaseGeneratorModel) and "train" in vars(klass)):
            continue
        method = vars(klass)["train"]
        more = _described(parts["training"], method, _parameter_docs(method.__doc__))
        if not more or cls._training_plan_cls is None:
            break
    plan = cls._training_plan_cls
    if plan is not None:
        signature = inspect.signature(plan.__init__).parameters
        plan_docs = {**_parameter_docs(plan.__init__.__doc__), **_class_docs(plan)}
        for name in cls.plan_arguments():
            param = signature[name].replace(kind=inspect.Parameter.KEYWORD_ONLY)
            parts["plan"][name] = (param, plan_docs.get(name, ""))
    seen = set(taken)
    out: dict[str, list[tuple[inspect.Parameter, str]]] = {}
    for part, found in parts.items():  # a name the constructor takes is routed there
        out[part] = [found[n] for n in found if n not in seen]
        seen |= set(found)
    return out


def _entry(param: inspect.Parameter, text: str, fallback: str) -> str:
    """One numpy Parameters entry: the description (or ``fallback``) and the default.

    The default is added, unless it is ``None`` and the description says what that means.
    """
    text = (text or fallback).rstrip()
    default = param.default
    if default is not inspect.Parameter.empty and (
        default is not None or "default" not in text.lower()
    ):
        text = f"{text}\nDefault: ``{default!r}``."
    return f"{param.name}\n{textwrap.indent(text, '    ')}"


def _trainer_kwargs_doc(cls: type) -> str:
    if cls._training_plan_cls is None:
        text = (
            "Training arguments of the other generators (``n_steps``, ``batch_size``, "
            "Lightning's ``Trainer`` arguments, ...): accepted, so that one call trains every "
            "model, and ignored (a misspelt name is still an error)."
        )
    else:
        text = (
            "Arguments of Lightning's ``Trainer`` (e.g. ``enable_progress_bar=False``, "
            "``callbacks``); a name that is neither listed here nor the ``Trainer``'s is an error."
        )
    return textwrap.fill(text, 84)


def _n_steps_doc(cls: type) -> str:
    text = (
        "Number of mini-batches (optimiser steps) to train on; by default the model's "
        f"``default_n_steps``, {cls.default_n_steps:,} for {cls.__name__}."
    )
    return textwrap.fill(text, 84)


def _max_epochs_doc(cls: type) -> str:
    """What ``max_epochs`` means for ``cls`` (its ``train``'s words, else :func:`train`'s)."""
    for klass in cls.__mro__:
        if "train" in vars(klass):
            text = _parameter_docs(vars(klass)["train"].__doc__).get("max_epochs")
            if text:
                return text
    return _parameter_docs(train.__doc__)["max_epochs"]


def trainer_signature(name: str) -> tuple[inspect.Signature, str]:
    """``inspect.Signature`` and numpy Parameters section of ``sgs.tl.train_<name>``."""
    cls = get_model_class(name)
    own = {p.name: p for p in inspect.signature(train).parameters.values()}
    own["key_added"] = own["key_added"].replace(default=name)
    own_docs = _parameter_docs(train.__doc__)
    own_docs["key_added"] = "``adata.uns`` key under which the parameters are recorded."
    parts = model_parameters(cls)
    parts["training"] = [
        (p, _n_steps_doc(cls) if p.name == "n_steps" else text) for p, text in parts["training"]
    ]
    where = f":class:`~scgensynth.model.{cls.__name__}`"
    plan = cls._training_plan_cls
    public = [] if plan is None else plan.__module__.split(".")
    public = public[: next((i for i, m in enumerate(public) if m.startswith("_")), len(public))]
    plan_ref = f"``{'.'.join([*public, plan.__qualname__])}``" if plan else ""
    fallbacks = {
        "model": f"Constructor argument of {where}.",
        "training": f"Argument of {where}'s ``train``.",
        "plan": f"Argument of the training plan {plan_ref}.",
    }
    entries = [(own["adata"], own_docs.get("adata", ""), "")]
    entries += [(own[n], own_docs.get(n, ""), "") for n in _OWN_FIRST]
    for part in ("model", "training"):
        entries += [(p, text, fallbacks[part]) for p, text in parts[part]]
        if part == "model":
            entries.append((own["max_epochs"], _max_epochs_doc(cls), ""))
    entries += [(p, text, fallbacks["plan"]) for p, text in parts["plan"]]
    entries += [(own[n], own_docs[n], "") for n in _OWN_LAST]
    kwargs = inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)
    params = [p if p.name == "adata" else p.replace(kind=p.KEYWORD_ONLY) for p, _, _ in entries]
    section = "\n".join(_entry(p, text, fallback) for p, text, fallback in entries)
    section += "\n**kwargs\n" + textwrap.indent(_trainer_kwargs_doc(cls), "    ")
    return inspect.Signature([*params, kwargs]), section


def named_trainer(name: str):
    """``sgs.tl.train_<name>``: :func:`train` with the generator ``name`` (see the registry).

    Every registered generator has one; they are made here, from the registry, so a new
    generator needs no code of its own in ``sgs.tl``. Its signature and Parameters section
    are read from the model class (constructor, ``train`` and training plan), so IDE
    completion and ``help()`` list the model's own arguments with their defaults.
    """
    cls = get_model_class(name)
    summary = (cls.__doc__ or cls.__name__).strip().splitlines()[0].rstrip(".")
    signature, parameters = trainer_signature(name)

    def trainer(adata: AnnData, *, key_added: str = name, **kwargs) -> BaseGeneratorModel:
        return train(adata, name, key_added=key_added, **kwargs)

    trainer.__name__ = trainer.__qualname__ = f"train_{name}"
    trainer.__module__ = "scgensynth.tl"
    trainer.__signature__ = signature.replace(return_annotation=cls.__name__)
    trainer.__doctest_skip__ = "trains a generator (minutes)"
    intro = textwrap.fill(
        f"{summary}. The arguments below are the model's own (constructor, ``train``, "
        f"training plan; see :class:`scgensynth.model.{cls.__name__}`) and those of "
        ":func:`~scgensynth.tl.train`.",
        88,
    )
    article = "an" if cls.__name__[0] in "AEIOU" else "a"
    trainer.__doc__ = f"""Train {article} {cls.__name__}: ``sgs.tl.train(adata, "{name}", ...)``.

{intro}

Parameters
----------
{parameters}

Returns
-------
The trained :class:`~scgensynth.model.{cls.__name__}`. Sets
``adata.uns[key_added]["params"]``.

Examples
--------
>>> import scgensynth as sgs
>>> adata = sgs.datasets.gtex_tissues()
>>> model = sgs.tl.train_{name}(adata, categorical_covariate_keys=["tissue"])
>>> synth = sgs.tl.generate(model, n_obs=1000)
"""
    return trainer


def named_trainers() -> dict[str, Any]:
    """``{"train_<name>": trainer}`` for every registered generator."""
    return {f"train_{name}": named_trainer(name) for name in available().index}
