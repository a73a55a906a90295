"""sgs.tl.counterfactual: counterfactual biomarkers (Viñas et al. 2022)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anndata as ad
import numpy as np
import pandas as pd
import torch

from scgensynth.model.base._generation import GenerationRows
from scgensynth.model.base._validation import check_count

from ._interpolate import _check_category
from ._rank import RANK_BY, rank_genes_structure

if TYPE_CHECKING:
    from anndata import AnnData

    from scgensynth.model.base import BaseGeneratorModel

logger = logging.getLogger(__name__)

INDIVIDUAL_KEY = "sgs_individual"
#: sampling options of DDPM (the only model that has any)
_DDPM_OPTIONS = ("sampler", "n_sampling_steps", "eta", "guidance_scale")


def _noise_input(model: BaseGeneratorModel) -> tuple[str, int]:
    """``(argument, width)`` of the noise the model's module decodes, or a TypeError."""
    from scgensynth.module import DDPMModule

    module = getattr(model, "module", None)
    if isinstance(module, DDPMModule):
        return "noise", module.n_input
    generate = getattr(module, "generate_scaled", None)
    if (
        generate is not None
        and "z" in inspect.signature(generate).parameters
        and hasattr(module, "n_latent")
    ):
        return "z", int(module.n_latent)
    msg = (
        f"{type(model).__name__} does not generate from a latent input that can be held "
        "fixed; counterfactual works with WGANGP, GAN, AttGAN, RandAttGAN, GMDA, CVAE and "
        "DDPM."
    )
    raise TypeError(msg)


def _ddpm_options(model: BaseGeneratorModel, options: dict[str, Any]) -> dict[str, Any]:
    """Sampling options of a DDPM that clamp the noise fully (deterministic DDIM)."""
    bad = sorted(set(options) - set(_DDPM_OPTIONS))
    if bad:
        msg = f"Unknown sampling option(s) {bad} for DDPM; it takes {list(_DDPM_OPTIONS)}."
        raise TypeError(msg)
    options = dict(options)
    if options.get("sampler", "ddim") != "ddim":
        msg = (
            f"sampler={options['sampler']!r} draws fresh noise at every step, so the two arms "
            "would not share it; counterfactual needs the deterministic DDIM sampler: "
            "sampler='ddim' (the default) with eta=0."
        )
        raise ValueError(msg)
    if float(options.get("eta", 0.0)) != 0.0:
        msg = (
            f"eta={options['eta']} adds fresh noise at every DDIM step, so the two arms would "
            "not share it; counterfactual needs eta=0 (the default, deterministic given x_T)."
        )
        raise ValueError(msg)
    defaults = model.module.sampling_defaults
    if defaults["sampler"] != "ddim" or defaults["eta"] != 0.0:
        logger.info(
            "The model samples with sampler=%r, eta=%s by default; the counterfactual uses "
            "deterministic DDIM (sampler='ddim', eta=0) so that both arms share the noise.",
            defaults["sampler"],
            defaults["eta"],
        )
    options["sampler"] = "ddim"
    options["eta"] = 0.0
    return options


def counterfactual(
    model: BaseGeneratorModel,
    covariate: str,
    reference: Any,
    target: Any,
    *,
    fixed: Mapping[str, Any] | None = None,
    n: int = 1000,
    seed: int | None = 0,
    rank_by: str = "mean",
    key_added: str = "rank_genes_groups",
    batch_size: int = 4096,
    **kwargs,
) -> AnnData:
    """Counterfactual biomarkers: switch one covariate of the same synthetic individuals.

    After Viñas et al. (2022): ``n`` synthetic individuals are drawn, each with one noise
    vector (the latent ``z`` of WGAN-GP, GAN, AttGAN, RandAttGAN, GMDA and CVAE; the starting
    point ``x_T`` of DDPM) and one set of the model's other covariates. Each is generated
    twice, identical in everything except ``covariate``, which is ``reference`` in one arm and
    ``target`` in the other. The paired differences ``target - reference`` are what the
    covariate alone changes in that individual; genes are ranked by their statistics over the
    ``n`` individuals and written in the structure of :func:`scanpy.tl.rank_genes_groups`.

    DDPM's sample must be a deterministic function of its noise for the arms to share it, so
    only its DDIM sampler with ``eta=0`` (the default) is accepted.

    p-values are left missing (NaN) on purpose: the draws are synthetic and ``n`` is chosen
    by the user, so a test over them measures ``n``, not the biology; any non-zero
    difference becomes "significant" for a large enough ``n``. Rank by the effect size and
    the share of individuals that agree on the sign instead.

    Parameters
    ----------
    model
        A trained generator with a latent input: WGANGP, GAN, AttGAN, RandAttGAN, GMDA, CVAE
        or DDPM.
    covariate
        The categorical covariate of the model to switch (e.g. ``"cancer"``).
    reference, target
        Two categories of ``covariate`` (e.g. ``"normal"`` and ``"tumour"``); differences are
        ``target - reference``.
    fixed
        Values of the model's other covariates, e.g. ``{"tissue": "Lung"}``, the same for
        every individual. Unset ones are resampled from training samples whose ``covariate``
        is ``reference`` (one draw per individual, the same in both arms).
    n
        Number of synthetic individuals (the result has ``2 n`` samples).
    seed
        Seed of the noise and the resampling (``None``: random).
    rank_by
        Statistic the genes are sorted by (descending): ``"mean"`` (mean difference),
        ``"effect"`` (mean / standard deviation of the differences) or ``"sign"`` (share of
        individuals whose difference has the mean's sign, signed by the mean's direction).
    key_added
        ``uns`` key of the ranking.
    batch_size
        Samples generated at a time.
    **kwargs
        The model's sampling options (DDPM: ``n_sampling_steps``, ``guidance_scale``;
        ``sampler`` and ``eta`` only as ``"ddim"`` and ``0``).

    Returns
    -------
    AnnData of ``2 n`` synthetic samples on the input's scale: first the ``n`` individuals
    under ``reference``, then the same ``n`` under ``target``. ``obs[covariate]`` is the arm
    (categorical, with the model's categories), ``obs["sgs_individual"]`` pairs the two
    samples of an individual, and the other covariates are in ``obs``.
    ``uns[key_added]`` holds the ranking as :func:`scanpy.tl.rank_genes_groups` writes it,
    with one group, ``str(target)``: ``names``, ``scores`` (the ``rank_by`` statistic),
    ``logfoldchanges`` (the mean difference, in the data's units: a log fold change for log
    expression), ``pvals`` / ``pvals_adj`` (NaN, see above), plus ``mean_difference``,
    ``effect`` and ``sign_agreement``; ``uns["sgs"]["counterfactual"]`` records the call.

    Examples
    --------
    >>> import scanpy as sc
    >>> import scgensynth as sgs
    >>> adata = sgs.datasets.tcga_lusc()
    >>> model = sgs.tl.train_wgan(adata, categorical_covariate_keys=["cancer"])
    >>> cf = sgs.tl.counterfactual(model, "cancer", reference="normal", target="tumour")
    >>> sc.get.rank_genes_groups_df(cf, "tumour").head()
    >>> sgs.pl.ranked_genes(cf)
    """
    from scgensynth.model.base import BaseGeneratorModel
    from scgensynth.module import DDPMModule

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
    noise_key, width = _noise_input(model)
    if covariate not in model.categorical_covariate_keys:
        msg = (
            f"{covariate!r} is not a categorical covariate of the model; it has "
            f"{model.categorical_covariate_keys}. Train the model conditioned on it "
            "(categorical_covariate_keys=[...])."
        )
        raise ValueError(msg)
    reference = _check_category(model, covariate, reference, "reference")
    target = _check_category(model, covariate, target, "target")
    if reference == target:
        msg = f"reference and target are both {reference!r}; pass two different categories."
        raise ValueError(msg)
    n = check_count(n, "n (the number of synthetic individuals)")
    model._checked_categories(covariate, model.categories[covariate], [reference, target])
    if rank_by not in RANK_BY:
        msg = f"rank_by must be one of {RANK_BY}, not {rank_by!r}."
        raise ValueError(msg)
    if isinstance(model.module, DDPMModule):
        options = _ddpm_options(model, kwargs)
    elif kwargs:
        msg = (
            f"Unknown argument(s) {sorted(kwargs)} for {type(model).__name__}; only DDPM takes "
            f"sampling options ({list(_DDPM_OPTIONS)})."
        )
        raise TypeError(msg)
    else:
        options = {}
    if fixed is not None and not isinstance(fixed, Mapping):
        msg = f"fixed must be a dict {{covariate: value}}, not {type(fixed).__name__}."
        raise TypeError(msg)
    given = dict(fixed or {})
    if covariate in given:
        msg = (
            f"Do not pass {covariate!r} in fixed: it is the covariate being switched (from "
            "reference to target)."
        )
        raise ValueError(msg)
    known = [*model.categorical_covariate_keys, *model.continuous_covariate_keys]
    unknown = sorted(set(given) - set(known))
    if unknown:
        msg = f"fixed has {unknown}, which the model does not know; it has {known}."
        raise ValueError(msg)

    seed = model._generation_seed(seed)
    rng = np.random.default_rng(seed)
    # the noise first, so it depends on the seed only (not on the size of the pool below)
    noise = torch.from_numpy(rng.standard_normal((n, width), dtype=np.float32))
    # (the reference has training samples: _checked_categories refused it otherwise)
    pool = np.flatnonzero(np.asarray(model.covariates_[covariate] == reference))
    rows = rng.choice(pool, size=n, replace=True)
    people = model.covariates_.iloc[rows].reset_index(drop=True)
    if given:
        values = pd.DataFrame({k: [v] * n for k, v in given.items()})
        people = model._checked_covariates(
            n, pd.concat([people.drop(columns=list(given)), values], axis=1)
        )

    logger.info(
        "Generating %d synthetic individuals under %s=%r and %r.", n, covariate, reference, target
    )
    arms = []
    for value in (reference, target):
        frame = people.copy()
        frame[covariate] = pd.Categorical([value] * n, categories=model.categories[covariate])
        # the same seed in both arms: any noise the model still draws (the CVAE's per-gene
        # noise) is then shared too
        arms.append(
            model._generate(
                GenerationRows.explicit(frame, rows),
                seed=seed,
                batch_size=batch_size,
                sample_kwargs=options or None,
                per_sample={noise_key: noise},
            )
        )
    X_ref, X_target = (np.asarray(a.X) for a in arms)
    obs = pd.concat([a.obs for a in arms], ignore_index=True)
    obs.index = pd.Index([f"synth_{i}" for i in range(2 * n)])
    obs[covariate] = pd.Categorical(
        np.repeat([reference, target], n).tolist(), categories=model.categories[covariate]
    )
    obs[INDIVIDUAL_KEY] = np.tile(np.arange(n), 2)
    result = ad.AnnData(X=np.concatenate([X_ref, X_target]), obs=obs, var=arms[0].var.copy())

    fixed_record = {str(k): v if isinstance(v, int | float) else str(v) for k, v in given.items()}
    call = {
        "covariate": covariate,
        "reference": str(reference),
        "target": str(target),
        "n": n,
        "seed": seed,
        "fixed": fixed_record,
        "rank_by": rank_by,
        "key_added": key_added,
        **options,
    }
    result.uns["sgs"] = {**arms[0].uns["sgs"], "n_obs": 2 * n, "counterfactual": call}
    result.uns[key_added] = rank_genes_structure(
        {str(target): X_target.astype(np.float64) - X_ref},
        result.var_names,
        method="counterfactual",
        groupby=covariate,
        reference=str(reference),
        rank_by=rank_by,
        pvalues=False,
        extra_params={
            "n": n,
            "seed": seed,
            "fixed": fixed_record,
            "model": type(model).__name__,
            **options,
        },
    )
    return result
