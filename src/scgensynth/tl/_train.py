from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import scvi

from scgensynth._keys import check_params_key, record_params
from scgensynth.model._registry import get_model_class
from scgensynth.model.base._base import proxy_anndata
from scgensynth.model.base._validation import (
    as_key_list,
    check_covariates,
    check_seed,
    check_shape,
)

if TYPE_CHECKING:
    from anndata import AnnData

    from scgensynth.model import WGANGP
    from scgensynth.model.base import BaseGeneratorModel

logger = logging.getLogger(__name__)


def _h5ad_safe(value: Any) -> Any:
    if value is None:
        return "None"
    if isinstance(value, list | tuple):
        return [_h5ad_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _h5ad_safe(v) for k, v in value.items()}
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


def train(
    adata: AnnData,
    model: str = "wgan",
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
        A name from :func:`scgensynth.model.available` (``"wgan"``, ...).
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
        killed run, ...).

    Returns
    -------
    The trained model. Sets ``adata.uns[key_added]["params"]``.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> adata = sgs.datasets.gtex_tissues()
    >>> model = sgs.tl.train(adata, "wgan", categorical_covariate_keys=["tissue"])
    >>> synth = sgs.tl.generate(model, n_obs=1000)
    """
    cls = get_model_class(model)
    key_added = model if key_added is None else key_added
    cat_keys = as_key_list(categorical_covariate_keys, "categorical_covariate_keys")
    cont_keys = as_key_list(continuous_covariate_keys, "continuous_covariate_keys")
    model_args = _model_arg_names(cls)
    model_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in model_args}
    seed = check_seed(seed)
    check_params_key(adata, key_added)
    scvi.settings.seed = seed
    # validate against the user's AnnData first, so errors name its columns
    check_shape(adata)
    check_covariates(adata, cat_keys, cont_keys)
    proxy = proxy_anndata(adata, layer, cat_keys, cont_keys)
    cls.setup_anndata(
        proxy,
        layer=layer,
        categorical_covariate_keys=cat_keys or None,
        continuous_covariate_keys=cont_keys or None,
    )
    fitted = cls(proxy, **model_kwargs)
    fitted.train(max_epochs=max_epochs, **kwargs)
    params = {
        "model": cls.__name__,
        "layer": layer,
        "categorical_covariate_keys": cat_keys,
        "continuous_covariate_keys": cont_keys,
        "max_epochs": max_epochs,
        "seed": seed,
        "scaling": fitted.scaling_["mode"],
        **model_kwargs,
        **{k: v for k, v in kwargs.items() if isinstance(v, bool | int | float | str)},
    }
    record_params(adata, key_added, _h5ad_safe(params))
    return fitted


def train_wgan(
    adata: AnnData,
    *,
    layer: str | None = None,
    categorical_covariate_keys: Sequence[str] | str | None = None,
    continuous_covariate_keys: Sequence[str] | str | None = None,
    max_epochs: int | None = None,
    seed: int = 0,
    key_added: str = "wgan",
    **kwargs,
) -> WGANGP:
    """Train a conditional WGAN-GP (Viñas et al. 2022) on ``adata`` in one call.

    ``sgs.tl.train(adata, "wgan", ...)``; see :func:`train` for the parameters. Model
    arguments: ``n_latent``, ``n_hidden``, ``n_hidden_critic``, ``gp_weight``, ``scaling``;
    training arguments: ``n_steps``, ``batch_size``, ``train_size``, ``selection``,
    ``lr_generator``, ``lr_critic``, ``n_critic``, ``accelerator``, ...

    Returns
    -------
    The trained :class:`~scgensynth.model.WGANGP`. Sets ``adata.uns[key_added]["params"]``.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> adata = sgs.datasets.gtex_tissues()
    >>> model = sgs.tl.train_wgan(adata, categorical_covariate_keys=["tissue"])
    >>> synth = sgs.tl.generate(model, n_obs=1000)
    """
    return train(
        adata,
        "wgan",
        layer=layer,
        categorical_covariate_keys=categorical_covariate_keys,
        continuous_covariate_keys=continuous_covariate_keys,
        max_epochs=max_epochs,
        seed=seed,
        key_added=key_added,
        **kwargs,
    )


def train_gan(adata: AnnData, *, key_added: str = "gan", **kwargs) -> BaseGeneratorModel:
    """Train a conditional vanilla GAN: ``sgs.tl.train(adata, "gan", ...)``.

    See :func:`train` for the arguments and :class:`~scgensynth.model.GAN` for the model's.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> adata = sgs.datasets.gtex_tissues()
    >>> model = sgs.tl.train_gan(adata, categorical_covariate_keys=["tissue"])
    """
    return train(adata, "gan", key_added=key_added, **kwargs)


def train_attgan(adata: AnnData, *, key_added: str = "attgan", **kwargs) -> BaseGeneratorModel:
    """Train an AttGAN (WGAN-GP + sparse gene attention): ``sgs.tl.train(adata, "attgan")``.

    See :func:`train` for the arguments and :class:`~scgensynth.model.AttGAN` for the
    model's (``graph``, ``top_k``, ``threshold``, ``gamma``, ``learn_gamma``,
    ``pretrain_steps``, ...); ``graph="random"`` gives the RandAttGAN lesion.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> adata = sgs.datasets.gtex_tissues()
    >>> model = sgs.tl.train_attgan(adata, categorical_covariate_keys=["tissue"], top_k=10)
    """
    return train(adata, "attgan", key_added=key_added, **kwargs)


def train_ddpm(adata: AnnData, *, key_added: str = "ddpm", **kwargs) -> BaseGeneratorModel:
    """Train a conditional diffusion model: ``sgs.tl.train(adata, "ddpm", ...)``.

    See :func:`train` for the arguments and :class:`~scgensynth.model.DDPM` for the model's
    (``n_hidden``, ``n_blocks``, ``n_timesteps``, ``beta_schedule``, ``p_uncond``,
    ``ema_decay``, default sampler settings, ...); training arguments include ``lr`` and
    ``lr_warmup_steps``.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> adata = sgs.datasets.gtex_tissues()
    >>> model = sgs.tl.train_ddpm(adata, categorical_covariate_keys=["tissue"])
    >>> synth = model.generate(1000, seed=0, n_sampling_steps=50)
    """
    return train(adata, "ddpm", key_added=key_added, **kwargs)


def train_gmda(adata: AnnData, *, key_added: str = "gmda", **kwargs) -> BaseGeneratorModel:
    """Train a GMDA generator (density alignment, no adversary): ``sgs.tl.train(adata, "gmda")``.

    See :func:`train` for the arguments and :class:`~scgensynth.model.GMDA` for the model's.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> adata = sgs.datasets.gtex_tissues()
    >>> model = sgs.tl.train_gmda(adata, categorical_covariate_keys=["tissue"])
    """
    return train(adata, "gmda", key_added=key_added, **kwargs)
