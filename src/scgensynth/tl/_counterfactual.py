"""sgs.tl.counterfactual: counterfactual biomarkers (Viñas et al. 2022)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anndata as ad
import numpy as np
import pandas as pd

from scgensynth._utils._checks import check_count, resolve_seed
from scgensynth._utils._deprecation import renamed_arguments
from scgensynth._utils._docs import doctest_skip

from ._interpolate import check_generator, check_other_covariates, known_category
from ._rank import RANK_BY, rank_genes_structure

if TYPE_CHECKING:
    from anndata import AnnData

    from scgensynth.model import BaseGeneratorModel

logger = logging.getLogger(__name__)

INDIVIDUAL_KEY = "sgs_individual"


@doctest_skip("trains a generator (minutes)")
@renamed_arguments({"n": "n_obs"})
def counterfactual(
    model: BaseGeneratorModel,
    covariate: str,
    reference: Any,
    target: Any,
    *,
    fixed: Mapping[str, Any] | None = None,
    n_obs: int = 1000,
    seed: int | None = 0,
    rank_by: str = "mean",
    key_added: str = "rank_genes_groups",
    batch_size: int = 4096,
    counts: str | None = None,
    **sampling_options,
) -> AnnData:
    """Counterfactual biomarkers: switch one covariate of the same synthetic individuals.

    After Viñas et al. (2022): ``n_obs`` synthetic individuals are drawn, each with one noise
    vector (the latent ``z`` of WGAN-GP, GAN, AttGAN, RandAttGAN, GMDA and CVAE; the starting
    point ``x_T`` of DDPM) and one set of the model's other covariates. Each is generated
    twice, identical in everything except ``covariate``, which is ``reference`` in one arm and
    ``target`` in the other. The paired differences ``target - reference`` are what the
    covariate alone changes in that individual; genes are ranked by their statistics over the
    ``n_obs`` individuals and written in the structure of :func:`scanpy.tl.rank_genes_groups`.

    DDPM's sample must be a deterministic function of its noise for the arms to share it, so
    only its DDIM sampler with ``eta=0`` (the default) is accepted.

    p-values are left missing (NaN) on purpose: the draws are synthetic and ``n`` is chosen
    by the user, so a test over them measures ``n_obs``, not the biology; any non-zero
    difference becomes "significant" for a large enough ``n_obs``. Rank by the effect size and
    the share of individuals that agree on the sign instead.

    Parameters
    ----------
    model
        A trained generator with a noise input that can be held fixed (its ``noise_input``:
        WGANGP, GAN, AttGAN, RandAttGAN, GMDA, CVAE, DDPM, ...).
    covariate
        The categorical covariate of the model to switch (e.g. ``"cancer"``).
    reference, target
        Two categories of ``covariate`` (e.g. ``"normal"`` and ``"tumour"``); differences are
        ``target - reference``.
    fixed
        Values of the model's other covariates, e.g. ``{"tissue": "Lung"}``, the same for
        every individual. Unset ones are resampled from training samples whose ``covariate``
        is ``reference`` (one draw per individual, the same in both arms).
    n_obs
        Number of synthetic individuals (the result has ``2 n_obs`` samples); ``n`` is its
        old name.
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
    counts
        For a model trained on raw counts: ``"sample"`` (its default) gives each arm integer
        counts made from the generated mean (the same library size in both arms; rounded at
        random, ``"poisson"``: drawn around it), so the paired differences include that
        noise; ``"mean"`` ranks the expected counts
        themselves, the difference the covariate alone makes (see
        :meth:`~scgensynth.model.base.BaseGeneratorModel.generate`).
    **sampling_options
        The model's sampling options (DDPM: ``n_sampling_steps``, ``guidance_scale``;
        ``sampler`` and ``eta`` only as ``"ddim"`` and ``0``: see the model's
        ``deterministic_sampling``).

    Returns
    -------
    AnnData of ``2 n_obs`` synthetic samples on the input's scale: first the ``n_obs`` individuals
    under ``reference``, then the same ``n_obs`` under ``target``. ``obs[covariate]`` is the arm
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
    reference, target = _check_arms(model, covariate, reference, target)
    n_obs = check_count(n_obs, "n_obs (the number of synthetic individuals)")
    model.check_generation_size(2 * n_obs)
    if rank_by not in RANK_BY:
        msg = f"rank_by must be one of {RANK_BY}, not {rank_by!r}."
        raise ValueError(msg)
    options = model.deterministic_sampling(sampling_options)
    given = check_other_covariates(
        model, covariate, fixed, "fixed", "being switched (from reference to target)"
    )
    seed = resolve_seed(seed)
    noise, people = _individuals(model, covariate, reference, given, n_obs, seed)
    logger.info(
        "Generating %d synthetic individuals under %s=%r and %r.",
        n_obs, covariate, reference, target,
    )  # fmt: skip
    arms = []
    for value in (reference, target):
        frame = people.copy()
        frame[covariate] = pd.Categorical([value] * n_obs, categories=model.categories[covariate])
        # the same seed in both arms: any noise the model still draws (the CVAE's per-gene
        # noise, count models' library sizes) is then shared too, sample by sample
        arms.append(
            model.generate(
                covariates=frame, seed=seed, batch_size=batch_size, noise=noise, counts=counts,
                **options,
            )
        )  # fmt: skip
    call = {
        "covariate": covariate, "reference": str(reference), "target": str(target),
        "n_obs": n_obs, "seed": seed, "fixed": _record(given), "rank_by": rank_by,
        "key_added": key_added, **options,
    }  # fmt: skip
    return _paired_result(model, arms, call)


def _check_arms(model: BaseGeneratorModel, covariate: str, reference: Any, target: Any):
    """The two categories of ``covariate`` the individuals are generated under."""
    check_generator(model)
    if model.noise_input is None:
        msg = (
            f"{type(model).__name__} does not generate from a noise input that can be held "
            "fixed (its module's noise_input), so it cannot generate the same individual "
            "twice; counterfactual needs one."
        )
        raise TypeError(msg)
    reference = known_category(model, covariate, reference, "reference")
    target = known_category(model, covariate, target, "target")
    if reference == target:
        msg = f"reference and target are both {reference!r}; pass two different categories."
        raise ValueError(msg)
    model.check_categories(covariate, [reference, target])  # both were learned
    return reference, target


def _individuals(model, covariate, reference, given, n_obs, seed):
    """``(noise, covariates)`` of the synthetic individuals, drawn from ``seed``.

    Each individual has its noise and the other covariates of a training sample of
    ``reference`` (those in ``given`` replaced).
    """
    rng = np.random.default_rng(seed)
    # the noise first, so it depends on the seed only (not on the size of the pool below)
    noise = rng.standard_normal((n_obs, model.noise_width), dtype=np.float32)
    pool = np.flatnonzero(np.asarray(model.covariates_[covariate] == reference))
    rows = rng.choice(pool, size=n_obs, replace=True)
    people = model.covariates_.iloc[rows].reset_index(drop=True)
    if given:
        values = pd.DataFrame({k: [v] * n_obs for k, v in given.items()})
        people = model.check_covariates(
            pd.concat([people.drop(columns=list(given)), values], axis=1), n_obs=n_obs
        )
    return noise, people


def _record(given: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): v if isinstance(v, int | float) else str(v) for k, v in given.items()}


def _paired_result(model: BaseGeneratorModel, arms: list[AnnData], call: dict) -> AnnData:
    """The two arms as one AnnData, with the ranking of the paired differences."""
    covariate, n_obs = call["covariate"], call["n_obs"]
    reference, target = call["reference"], call["target"]
    X_ref, X_target = (np.asarray(a.X) for a in arms)
    obs = pd.concat([a.obs for a in arms], ignore_index=True)
    obs.index = pd.Index([f"synth_{i}" for i in range(2 * n_obs)])
    obs[covariate] = pd.Categorical(
        np.repeat([arms[0].obs[covariate].iloc[0], arms[1].obs[covariate].iloc[0]], n_obs),
        categories=model.categories[covariate],
    )
    obs[INDIVIDUAL_KEY] = np.tile(np.arange(n_obs), 2)
    result = ad.AnnData(X=np.concatenate([X_ref, X_target]), obs=obs, var=arms[0].var.copy())
    result.uns["sgs"] = {**arms[0].uns["sgs"], "n_obs": 2 * n_obs, "counterfactual": call}
    options = {k: v for k, v in call.items() if k in model.sampling_options()}
    result.uns[call["key_added"]] = rank_genes_structure(
        {target: X_target.astype(np.float64) - X_ref},
        result.var_names,
        method="counterfactual",
        groupby=covariate,
        reference=reference,
        rank_by=call["rank_by"],
        pvalues=False,
        extra_params={
            "n_obs": n_obs, "seed": call["seed"], "fixed": call["fixed"],
            "model": type(model).__name__, **options,
        },
    )  # fmt: skip
    return result
