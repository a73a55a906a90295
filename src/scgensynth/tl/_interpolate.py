from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anndata as ad
import numpy as np
import pandas as pd
import torch

from scgensynth._utils._checks import check_count, resolve_seed
from scgensynth._utils._docs import doctest_skip

if TYPE_CHECKING:
    from anndata import AnnData

    from scgensynth.model import BaseGeneratorModel

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


def check_generator(model: Any) -> None:
    """Refuse anything but a trained scgensynth generator."""
    from scgensynth.model import BaseGeneratorModel

    if not isinstance(model, BaseGeneratorModel):
        msg = (
            f"model must be a scgensynth generator (e.g. from sgs.tl.train_wgan), not "
            f"{type(model).__name__}."
        )
        raise TypeError(msg)
    if not model.is_trained_:
        msg = (
            f"The {type(model).__name__} is not trained; call model.train() or train it with "
            "sgs.tl.train(...) first."
        )
        raise RuntimeError(msg)


def known_category(model: BaseGeneratorModel, covariate: str, value: Any, name: str) -> Any:
    """``value`` as a category of the model's categorical ``covariate``, or a clear error."""
    if covariate not in model.categorical_covariate_keys:
        msg = (
            f"{covariate!r} is not a categorical covariate of the model; it has "
            f"{model.categorical_covariate_keys}. Train the model conditioned on it "
            "(categorical_covariate_keys=[...])."
        )
        raise ValueError(msg)
    return match_category(value, model.categories[covariate], name, repr(covariate))


@doctest_skip("trains a generator (minutes)")
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
    counts: str | None = None,
    **sampling_options,
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
    counts
        For a model trained on raw counts: ``"sample"`` (its default: integer counts rounded
        from the generated mean), ``"poisson"`` (Poisson counts around it) or ``"mean"`` (the
        expected counts, a smooth path); see
        :meth:`~scgensynth.model.base.BaseGeneratorModel.generate`.
    **sampling_options
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
    check_generator(model)
    start = known_category(model, covariate, start, "start")
    end = known_category(model, covariate, end, "end")
    ends = model.embed_categories(covariate, [start, end])  # also: it has embeddings
    steps = check_count(steps, "steps", minimum=2, hint=" The steps include both endpoints.")
    n_per_step = check_count(n_per_step, "n_per_step")
    model.check_generation_size(steps * n_per_step)
    given = check_other_covariates(
        model, covariate, covariates, "covariates", "being interpolated"
    )
    seed = resolve_seed(seed)
    people = _walkers(model, covariate, start, given, n_per_step, seed)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(n_per_step, model.noise_width, generator=gen)
    lambdas = np.linspace(0.0, 1.0, steps)
    # every step generates the same individuals (same noise, same seed: the same row keys)
    walk = [
        model.generate(
            covariates=people, seed=seed, batch_size=batch_size, noise=noise,
            covariate_embeddings={covariate: ((1 - lam) * ends[0] + lam * ends[1]).repeat(
                n_per_step, 1
            )},
            counts=counts, **sampling_options,
        )
        for lam in lambdas
    ]  # fmt: skip
    call = {
        "covariate": covariate, "start": str(start), "end": str(end), "steps": steps,
        "n_per_step": n_per_step,
    }  # fmt: skip
    return _path(model, walk, lambdas, call, start, end)


def check_other_covariates(
    model: BaseGeneratorModel, covariate: str, values, name: str, role: str
) -> dict[str, Any]:
    """The values the user fixed for the covariates other than ``covariate``, checked.

    ``name`` is the argument that holds them and ``role`` what ``covariate`` does (for the
    message when the user passes it there too).
    """
    if values is not None and not isinstance(values, Mapping):
        msg = f"{name} must be a dict {{covariate: value}}, not {type(values).__name__}."
        raise TypeError(msg)
    given = dict(values or {})
    if covariate in given:
        msg = f"Do not pass {covariate!r} in {name}: it is the covariate {role}."
        raise ValueError(msg)
    known = [*model.categorical_covariate_keys, *model.continuous_covariate_keys]
    unknown = sorted(set(given) - set(known))
    if unknown:
        msg = f"{name} has {unknown}, which the model does not know; it has {known}."
        raise ValueError(msg)
    return given


def _walkers(model, covariate, start, given, n_per_step: int, seed: int) -> pd.DataFrame:
    """One set of other covariates per individual, drawn from training samples of ``start``."""
    model.check_categories(covariate, [start])
    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(np.asarray(model.covariates_[covariate] == start))
    rows = rng.choice(pool, size=n_per_step, replace=True)
    people = model.covariates_.iloc[rows].reset_index(drop=True)
    if given:
        values = pd.DataFrame({k: [v] * n_per_step for k, v in given.items()})
        people = model.check_covariates(
            pd.concat([people.drop(columns=list(given)), values], axis=1), n_obs=n_per_step
        )
    return people


def _path(model, walk: list[AnnData], lambdas: np.ndarray, call: dict, start, end) -> AnnData:
    """The steps of the walk as one AnnData, ordered by step."""
    steps, n_per_step, covariate = len(walk), call["n_per_step"], call["covariate"]
    for i, piece in enumerate(walk):  # unique names before concatenating (no anndata warning)
        piece.obs_names = pd.Index([f"synth_{i * n_per_step + j}" for j in range(piece.n_obs)])
    synth = ad.concat(walk, index_unique=None, uns_merge="first")
    lam = np.repeat(lambdas, n_per_step)
    labels = pd.Series(pd.NA, index=range(len(lam)), dtype=object)
    labels[lam == 0.0] = start
    labels[lam == 1.0] = end
    synth.obs[covariate] = pd.Categorical(
        labels.to_numpy(), categories=model.categories[covariate]
    )
    synth.obs[LAMBDA_KEY] = lam
    synth.obs["sgs_step"] = np.repeat(np.arange(steps), n_per_step)
    synth.obs["sgs_individual"] = np.tile(np.arange(n_per_step), steps)
    synth.uns["sgs"] = {**walk[0].uns["sgs"], "n_obs": synth.n_obs, "interpolation": call}
    return synth
