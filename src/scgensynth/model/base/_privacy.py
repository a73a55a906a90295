"""What a model needs to train under differential privacy: checks, public scaling, the record.

A private run protects the training rows only. Everything else a model reads from data must
be public or outside the guarantee, and is stated so: the per-gene scaling statistics come
from public samples the user passes (``public=``), the covariate categories and their
frequencies are declared public, and held-out rows used for model selection are excluded
from the guarantee (and must not be released).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from anndata import AnnData

from scgensynth.pp import fit_scaling
from scgensynth.train import PoissonBatchSampler, PrivacyAccountant, PrivacySpec

if TYPE_CHECKING:
    from ._base import BaseGeneratorModel

logger = logging.getLogger(__name__)

#: the registry names of the generators that train under ``privacy=``
PRIVATE_MODELS = ("gaussian", "wgan", "cvae", "ddpm")


def check_public_use(privacy: Any, public: Any) -> None:
    """``public=`` means nothing without ``privacy=``: say so rather than ignore it."""
    if public is not None and privacy is None:
        msg = (
            "public=... is only used with privacy=... (for public scaling statistics); pass "
            "privacy={'epsilon': ...} or drop public."
        )
        raise ValueError(msg)


def refuse_unsupported(model: BaseGeneratorModel) -> None:
    """A clear error for a generator that has no private training."""
    if model.supports_privacy:
        return
    msg = (
        f"{type(model).__name__} cannot be trained with privacy=...: it has no differentially "
        f"private training. The generators that do are {list(PRIVATE_MODELS)} "
        "(sgs.tl.train(adata, 'gaussian', privacy={'epsilon': 10}, public=public_adata))."
    )
    raise ValueError(msg)


def check_public(model: BaseGeneratorModel, public: Any) -> AnnData | None:
    """``public`` with the model's genes in its order (a view); an error if it cannot be."""
    if public is None:
        return None
    if not isinstance(public, AnnData):
        msg = (
            "public must be an AnnData of public samples (e.g. a public cohort of the same "
            f"tissue) with the model's genes, not {type(public).__name__}."
        )
        raise TypeError(msg)
    genes = model.adata.var_names
    missing = genes.difference(public.var_names)
    if len(missing):
        msg = (
            f"The public AnnData lacks {len(missing)} of the model's {len(genes)} genes "
            f"(e.g. {list(missing[:5])}); it must hold every gene the model is trained on, "
            "under the same var_names."
        )
        raise ValueError(msg)
    if public.n_obs < 2:
        msg = f"The public AnnData has {public.n_obs} sample(s); scaling needs at least 2."
        raise ValueError(msg)
    layer = model.layer
    if layer is not None and layer not in public.layers:
        msg = f"The public AnnData has no layer {layer!r}, which the model reads."
        raise ValueError(msg)
    return public if public.var_names.equals(genes) else public[:, genes]


def public_scaling(model: BaseGeneratorModel, public: AnnData | None) -> dict[str, Any] | None:
    """Scaling statistics from ``public`` (None for ``scaling="none"``, which has none).

    An error when the model's scaling needs statistics and no public samples are given:
    statistics of the training data would leak it.
    """
    if model.scaling_mode == "none":
        return None
    if public is None:
        msg = (
            f"privacy=... with scaling={model.scaling_mode!r} needs public scaling statistics: "
            "per-gene means and standard deviations (and library sizes) computed from the "
            "training data would leak it, outside the privacy budget. Pass public=<AnnData of "
            "public samples with the same genes> (a public cohort, or samples whose release "
            "is consented), or train on data scaled beforehand with scaling='none'."
        )
        raise ValueError(msg)
    return fit_scaling(public, model.scaling_mode, layer=model.layer)


def use_public_scaling(model: BaseGeneratorModel, stats: dict[str, Any] | None) -> None:
    """Make the model scale with public statistics (library sizes are drawn from them too)."""
    if stats is None:
        return
    model._scaling_stats = stats
    model.scaling_ = {k: stats[k] for k in ("mode", "target_sum", "lower_bound")}
    model.scaling_["constant_genes"] = stats["constant_genes"]
    model.library_size_ = stats["library_size"]
    model._init_module_statistics()


def plan_spec(privacy: Any, n_train: int) -> PrivacySpec:
    """The user's ``privacy=`` checked and resolved for ``n_train`` training rows."""
    return PrivacySpec.from_user(privacy).resolve(n_train)


def warn_unprotected(n_held: int) -> None:
    """Say that held-out rows scored for model selection are outside the guarantee."""
    if n_held:
        logger.warning(
            "%d held-out sample(s) score model selection: they are not protected by the "
            "differential-privacy guarantee and must not be released (train_size=1.0 trains "
            "on every sample and turns selection off).",
            n_held,
        )


def privacy_record(
    spec: PrivacySpec,
    *,
    epsilon: float,
    mechanism: str,
    noise_multiplier: float,
    steps: int,
    sample_rate: float,
    n_train: int,
    n_public: int,
    n_unprotected: int,
    clip_norm: float | None = None,
) -> dict[str, Any]:
    """What a private run states: the spent (ε, δ) and how it was reached (plain values)."""
    return {
        "epsilon": float(epsilon),
        "delta": float(spec.delta),
        "target_epsilon": float(spec.epsilon),
        "clip_norm": float(spec.max_grad_norm if clip_norm is None else clip_norm),
        "accountant": spec.accountant,
        "mechanism": mechanism,
        "noise_multiplier": float(noise_multiplier),
        "steps": int(steps),
        "sample_rate": float(sample_rate),
        "n_protected": int(n_train),
        "n_public_scaling": int(n_public),
        "n_unprotected_selection": int(n_unprotected),
        "public": "covariate categories and their frequencies"
        + ("; scaling statistics from the public samples" if n_public else ""),
    }


def record_from_accountant(
    spec: PrivacySpec,
    accountant: PrivacyAccountant,
    mechanism: str,
    *,
    n_train: int,
    n_public: int,
    n_unprotected: int,
    clip_norm: float | None = None,
) -> dict[str, Any]:
    """:func:`privacy_record` for a run whose accountant counted its steps."""
    spent = accountant.spent()
    return privacy_record(
        spec, epsilon=spent["epsilon"], mechanism=mechanism,
        noise_multiplier=accountant.noise_multiplier, steps=int(spent["steps"]),
        sample_rate=float(spent["sample_rate"]), n_train=n_train, n_public=n_public,
        n_unprotected=n_unprotected, clip_norm=clip_norm,
    )  # fmt: skip


def describe(record: dict[str, Any] | None) -> str:
    """``"ε=9.87, δ=1.9e-04"`` for ``repr`` and logs ("" when not private)."""
    if not record:
        return ""
    return f"ε={record['epsilon']:.3g}, δ={record['delta']:.2g}"


@dataclass
class PrivateRun:
    """A planned DP-SGD run: its budget, accountant, Poisson batches and public samples."""

    spec: PrivacySpec
    accountant: PrivacyAccountant
    sampler_args: dict[str, Any]
    n_public: int
    n_unprotected: int

    def sampler(self) -> PoissonBatchSampler:
        """Poisson batches of the calling process (its share of rows with data parallelism)."""
        import torch.distributed as dist

        rank, world = 0, 1
        if dist.is_available() and dist.is_initialized():
            rank, world = dist.get_rank(), dist.get_world_size()
        return PoissonBatchSampler(**self.sampler_args, rank=rank, world_size=world)

    def record(self, model: BaseGeneratorModel, n_train: int) -> dict[str, Any]:
        """The model's ``privacy_`` after the run (the ε actually spent)."""
        return record_from_accountant(
            self.spec, self.accountant, f"DP-SGD ({type(model)._private_plan_cls.__name__})",
            n_train=n_train, n_public=self.n_public, n_unprotected=self.n_unprotected,
        )  # fmt: skip


def plan_private_run(model: BaseGeneratorModel, run, privacy: Any, public: Any) -> PrivateRun:
    """Check everything, then switch the model to public scaling and plan DP-SGD for ``run``.

    The accountant's noise is set for every planned step (``run.total_steps``, one private
    update per mini-batch) at sampling rate ``batch_size / n_train`` (``batch_size`` per
    process: with data parallelism each process samples its share of the rows at the
    same rate and the noise is shared out, see :func:`~scgensynth.train.clipped_noisy_mean`);
    early stopping only spends less. Plan arguments ``accountant``,
    ``expected_batch_size`` and ``seed`` are added to ``run.plan_kwargs``.
    """
    refuse_unsupported(model)
    model._check_private_module()
    if model.is_trained_:  # DP-SGD continues from the weights: they have seen the data already
        msg = (
            f"This {type(model).__name__} is already trained"
            + (" with privacy" if model.privacy_ else " without privacy")
            + "; a private run would continue from weights that have seen the data, so its "
            "stated budget would not hold. Build a new model and train it once with privacy."
        )
        raise ValueError(msg)
    public = check_public(model, public)
    n_train = len(run.train_idx)
    spec = plan_spec(privacy, n_train)
    stats = public_scaling(model, public)
    rate = min(1.0, run.batch_size * run.world / n_train)
    accountant = PrivacyAccountant(spec, sample_rate=rate, n_steps=run.total_steps)
    use_public_scaling(model, stats)
    sampler_args = {
        "n": n_train, "sample_rate": rate, "n_batches": run.batches_per_epoch,
        "seed": run.seed,
    }  # fmt: skip
    run.plan_kwargs.update(accountant=accountant, expected_batch_size=rate * n_train)
    run.plan_kwargs.setdefault("seed", run.seed)
    run.kwargs["use_distributed_sampler"] = False  # Lightning must keep the Poisson batches
    warn_unprotected(len(run.val_idx))
    logger.info(
        "Private training: target ε=%g, δ=%.2g over %d steps at sampling rate %.3g; noise "
        "multiplier %.3g, gradients clipped at %g.",
        spec.epsilon, spec.delta, run.total_steps, rate, accountant.noise_multiplier,
        spec.max_grad_norm,
    )  # fmt: skip
    return PrivateRun(spec, accountant, sampler_args, 0 if public is None else public.n_obs,
                      len(run.val_idx))  # fmt: skip
