from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from scgensynth.model.base._generation import GenerationRows
from scgensynth.model.base._validation import check_count

if TYPE_CHECKING:
    from anndata import AnnData

    from scgensynth.model.base import BaseGeneratorModel

logger = logging.getLogger(__name__)

LAMBDA_KEY = "sgs_lambda"


def match_category(value, categories, name: str, where: str, noun: str = "category"):
    """``value`` as one of ``categories`` (also matched by its string form, e.g. 1 vs "1").

    Raises a ValueError naming ``name``, ``where`` it was looked for and the known values.
    """
    if value in categories:
        return value
    by_str = {str(c): c for c in categories}
    if str(value) in by_str:
        return by_str[str(value)]
    msg = f"{name}={value!r} is not a {noun} of {where}; the known ones are {list(categories)}."
    raise ValueError(msg)


def _check_category(model, covariate: str, value, name: str):
    return match_category(value, model.categories[covariate], name, repr(covariate))


def interpolate(
    model: BaseGeneratorModel,
    covariate: str,
    start: Any,
    end: Any,
    *,
    steps: int = 5,
    n_per_step: int = 100,
    covariates: Mapping[str, Any] | None = None,
    seed: int | None = 0,
    batch_size: int = 4096,
    **kwargs,
) -> AnnData:
    """Walk between two categories of a covariate through the model's learned embeddings.

    For ``λ`` in ``steps`` evenly spaced values from 0 to 1 the generator is fed the embedding
    ``(1 - λ) e(start) + λ e(end)`` of ``covariate`` (its other covariates held). ``n_per_step``
    synthetic individuals walk the whole path: each keeps its noise (the latent ``z`` of
    WGAN-GP, GAN, AttGAN and GMDA; the starting point ``x_T`` of DDPM, whose default DDIM
    sampler with ``eta=0`` is deterministic given ``x_T``) and its other covariates at every
    step, so a path is one synthetic individual moving from one condition to the other.

    Works for models with learned covariate embeddings: WGAN-GP, GAN, AttGAN, RandAttGAN,
    DDPM and GMDA (the CVAE's one-hot conditioning and the noise baseline have none).

    Parameters
    ----------
    model
        A trained generator.
    covariate
        A categorical covariate of the model (e.g. ``"tissue"``).
    start, end
        The two categories.
    steps
        Number of values of ``λ``, endpoints included (at least 2).
    n_per_step
        Synthetic individuals (paths); each step has ``n_per_step`` samples.
    covariates
        Values of the model's other covariates, e.g. ``{"sex": "female"}``; unset ones are
        resampled from training samples of ``start`` (the same draw at every step).
    seed
        Seed of the noise and the resampling (``None``: random).
    batch_size
        Samples generated at a time.
    **kwargs
        The model's sampling options (e.g. ``guidance_scale`` of DDPM).

    Returns
    -------
    AnnData of ``steps x n_per_step`` samples ordered by step, with ``obs["sgs_lambda"]``,
    ``obs["sgs_step"]``, ``obs["sgs_individual"]`` (the path a sample belongs to) and
    ``obs[covariate]`` set to ``start`` at ``λ = 0``, ``end`` at ``λ = 1`` and missing in
    between; ``uns["sgs"]["interpolation"]`` records the walk.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> adata = sgs.datasets.gtex_tissues()
    >>> model = sgs.tl.train_wgan(adata, categorical_covariate_keys=["tissue"])
    >>> walk = sgs.tl.interpolate(model, "tissue", start="Blood", end="Blood Vessel")
    >>> walk.obs.groupby("sgs_lambda").size()
    """
    from scgensynth.module import DDPMModule

    model._check_if_trained(warn=False)
    module = model.module
    embedder = getattr(module, "generator_embedding", None)
    if embedder is None:
        msg = (
            f"{type(model).__name__} has no learned covariate embeddings to interpolate; "
            "interpolate works with WGANGP, GAN, AttGAN, RandAttGAN, DDPM and GMDA."
        )
        raise TypeError(msg)
    if covariate not in model.categorical_covariate_keys:
        msg = (
            f"{covariate!r} is not a categorical covariate of the model; it has "
            f"{model.categorical_covariate_keys}."
        )
        raise ValueError(msg)
    start = _check_category(model, covariate, start, "start")
    end = _check_category(model, covariate, end, "end")
    steps = check_count(steps, "steps", minimum=2, hint=" The steps include both endpoints.")
    n_per_step = check_count(n_per_step, "n_per_step")
    model._checked_categories(covariate, model.categories[covariate], [start, end])
    if kwargs:
        allowed = {"sampler", "n_sampling_steps", "eta", "guidance_scale"}
        bad = sorted(set(kwargs) - allowed) if isinstance(module, DDPMModule) else sorted(kwargs)
        if bad:
            msg = (
                f"Unknown argument(s) {bad} for {type(model).__name__}; only DDPM takes "
                f"sampling options ({sorted(allowed)})."
            )
            raise TypeError(msg)
    given = dict(covariates or {})
    if covariate in given:
        msg = f"Do not pass {covariate!r} in covariates: it is the one being interpolated."
        raise ValueError(msg)
    known = [*model.categorical_covariate_keys, *model.continuous_covariate_keys]
    unknown = sorted(set(given) - set(known))
    if unknown:
        msg = f"covariates has {unknown}, which the model does not know; it has {known}."
        raise ValueError(msg)

    seed = model._generation_seed(seed)
    rng = np.random.default_rng(seed)
    # one set of other covariates per individual, drawn from training samples of `start`
    pool = np.flatnonzero(np.asarray(model.covariates_[covariate] == start))
    rows = rng.choice(pool, size=n_per_step, replace=True)
    people = model.covariates_.iloc[rows].reset_index(drop=True)
    if given:
        values = pd.DataFrame({k: [v] * n_per_step for k, v in given.items()})
        checked = model._checked_covariates(
            n_per_step, pd.concat([people.drop(columns=list(given)), values], axis=1)
        )
        people = checked
    frame = pd.concat([people] * steps, ignore_index=True)
    lambdas = np.linspace(0.0, 1.0, steps)
    lam = np.repeat(lambdas, n_per_step)

    j = model.categorical_covariate_keys.index(covariate)
    codes = torch.as_tensor(
        [model.categories[covariate].index(start), model.categories[covariate].index(end)]
    )
    device = module.scaling.mean.device
    with torch.inference_mode():
        e_start, e_end = embedder.embed(j, codes.to(device)).cpu()
    lam_t = torch.as_tensor(lam, dtype=torch.float32)[:, None]
    embedded: list[torch.Tensor | None] = [None] * len(model.categorical_covariate_keys)
    embedded[j] = (1 - lam_t) * e_start + lam_t * e_end

    gen = torch.Generator().manual_seed(seed)
    if isinstance(module, DDPMModule):
        noise_key, width = "noise", module.n_input
    else:
        noise_key, width = "z", module.n_latent
    noise = torch.randn(n_per_step, width, generator=gen).repeat(steps, 1)

    synth = model._generate(
        GenerationRows.explicit(frame, np.tile(rows, steps)),
        seed=seed,
        batch_size=batch_size,
        sample_kwargs=kwargs or None,
        per_sample={"cat_embedded": embedded, noise_key: noise},
        uns={
            "interpolation": {
                "covariate": covariate,
                "start": str(start),
                "end": str(end),
                "steps": steps,
                "n_per_step": n_per_step,
            },
            **kwargs,
        },
    )
    labels = pd.Series(pd.NA, index=range(len(lam)), dtype=object)
    labels[lam == 0.0] = start
    labels[lam == 1.0] = end
    synth.obs[covariate] = pd.Categorical(
        labels.to_numpy(), categories=model.categories[covariate]
    )
    synth.obs[LAMBDA_KEY] = lam
    synth.obs["sgs_step"] = np.repeat(np.arange(steps), n_per_step)
    synth.obs["sgs_individual"] = np.tile(np.arange(n_per_step), steps)
    return synth
