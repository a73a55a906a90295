from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import scvi

from scgensynth._utils._checks import check_seed
from scgensynth._utils._docs import doctest_skip
from scgensynth._utils._keys import check_params_key, record_params
from scgensynth._utils._logging import quiet_training
from scgensynth.model import available, get_model_class

if TYPE_CHECKING:
    from anndata import AnnData

    from scgensynth.model import BaseGeneratorModel

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
        differentially private training, ...).

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


def named_trainer(name: str):
    """``sgs.tl.train_<name>``: :func:`train` with the generator ``name`` (see the registry).

    Every registered generator has one; they are made here, from the registry, so a new
    generator needs no code of its own in ``sgs.tl``.
    """
    cls = get_model_class(name)
    summary = (cls.__doc__ or cls.__name__).strip().splitlines()[0].rstrip(".")

    def trainer(adata: AnnData, *, key_added: str = name, **kwargs) -> BaseGeneratorModel:
        return train(adata, name, key_added=key_added, **kwargs)

    trainer.__name__ = trainer.__qualname__ = f"train_{name}"
    trainer.__module__ = "scgensynth.tl"
    trainer.__doctest_skip__ = "trains a generator (minutes)"
    arguments = ", ".join(f"``{a}``" for a in sorted(_model_arg_names(cls)))
    trainer.__doc__ = f"""Train a {cls.__name__}: ``sgs.tl.train(adata, "{name}", ...)``.

    {summary}.

    See :func:`~scgensynth.tl.train` for the arguments; the model's own are {arguments}
    (see :class:`scgensynth.model.{cls.__name__}`).

    Returns
    -------
    The trained :class:`~scgensynth.model.{cls.__name__}`. Sets
    ``adata.uns[key_added]["params"]`` (``key_added`` defaults to ``"{name}"``).

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
