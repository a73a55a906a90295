from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from scgensynth._utils._checks import check_count
from scgensynth._utils._docs import doctest_skip
from scgensynth.module import WGANGPModule
from scgensynth.train import PrivateWGANGPTrainingPlan, WGANGPTrainingPlan

from .base import BaseGeneratorModel

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)


def build_adversarial_module(
    model: BaseGeneratorModel,
    n_latent: int,
    n_hidden: Sequence[int],
    n_hidden_critic: Sequence[int] | None,
    **module_kwargs,
) -> None:
    """Give an adversarial model (generator + critic/discriminator) its module and summary.

    Shared by :class:`WGANGP`, its subclasses and :class:`~scgensynth.model.GAN`, whose
    modules take the same generator/critic arguments (plus ``module_kwargs``).
    """
    n_hidden = [int(h) for h in n_hidden]
    n_hidden_critic = n_hidden if n_hidden_critic is None else [int(h) for h in n_hidden_critic]
    model._build_module(
        f"latent {n_latent}, hidden {n_hidden}", n_latent=n_latent, n_hidden_generator=n_hidden,
        n_hidden_critic=n_hidden_critic, **module_kwargs,
    )  # fmt: skip


@doctest_skip("trains a generator (minutes)")
class WGANGP(BaseGeneratorModel):
    """Conditional Wasserstein GAN with gradient penalty (Viñas et al. 2022).

    The generator maps ``[z ‖ continuous covariates ‖ embeddings of categorical
    covariates]`` to expression values; the critic scores ``[x ‖ covariates]``. Each
    categorical covariate has its own learnable embedding (size
    ``floor(sqrt(n_categories)) + 1``) in generator and critic. Trained with the Wasserstein
    loss plus a gradient penalty (λ = 10) on interpolates of real and generated samples with
    covariates held; generated samples take the covariates of the real mini-batch.

    The model scales expression values itself (``scaling``: ``"auto"``, ``"counts"``,
    ``"log1p"``, ``"standardize"`` or ``"none"``) and inverts the scaling when generating,
    so synthetic values are on the input's scale.

    Parameters
    ----------
    adata
        AnnData registered with :meth:`setup_anndata`.
    n_latent
        Size of the noise vector (paper: 64).
    n_hidden
        Hidden widths of generator and critic (paper: two layers of 256).
    n_hidden_critic
        Hidden widths of the critic, if different from ``n_hidden``.
    gp_weight
        Gradient-penalty weight λ.
    scaling
        How expression values are scaled for training (``"auto"`` detects it from the data and
        says which in the log).
    n_components
        Train in the principal subspace of the training samples: generator and critic work
        on ``n_components`` PCA coordinates (fitted on the training rows when training
        starts), and generated coordinates are decoded to every gene with per-gene residual
        noise (:class:`~scgensynth.nn.LinearSubspace`). A step then costs almost the same at
        20,000 genes as at 500 (``benchmarks/bench_wide.py``). ``None`` (default): gene space,
        as in the paper. At most ``n_train - 1`` directions exist; extra ones stay zero.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> adata = sgs.datasets.gtex_tissues()
    >>> sgs.model.WGANGP.setup_anndata(adata, categorical_covariate_keys=["tissue"])
    >>> model = sgs.model.WGANGP(adata)
    >>> model.train(n_steps=5000)
    >>> synth = model.generate(1000, seed=0)
    """

    description = "conditional Wasserstein GAN with gradient penalty and covariate embeddings"
    reference = "Viñas et al. 2022"
    quick_kwargs: ClassVar[dict[str, Any]] = {"n_latent": 8, "n_hidden": (16, 16)}
    _module_cls = WGANGPModule
    _training_plan_cls = WGANGPTrainingPlan
    _private_plan_cls = PrivateWGANGPTrainingPlan

    @property
    def _module_kwargs(self) -> dict:
        """Extra module arguments of subclasses (built after the data are registered)."""
        return {}

    def __init__(
        self,
        adata: AnnData | None = None,
        n_latent: int = 64,
        n_hidden: Sequence[int] = (256, 256),
        n_hidden_critic: Sequence[int] | None = None,
        gp_weight: float = 10.0,
        scaling: str = "auto",
        n_components: int | None = None,
    ):
        super().__init__(adata, scaling=scaling)
        kwargs = dict(self._module_kwargs)
        if n_components is not None:
            kwargs["n_components"] = check_count(n_components, "n_components", minimum=1)
        build_adversarial_module(self, n_latent, n_hidden, n_hidden_critic, gp_weight=gp_weight,
                                 **kwargs)  # fmt: skip
        self.init_params_ = self._get_init_params(locals())

    def _prepare_training(self, run) -> None:
        """Fit the principal subspace on the training rows (once: later runs continue)."""
        subspace = getattr(self.module, "subspace", None)
        if subspace is None or bool(subspace.fitted):
            return
        rows = np.sort(np.asarray(run.train_idx, dtype=int))
        subspace.fit(self._scaled_rows(rows), seed=run.seed, copy=False)
        logger.info(
            "Training in the %d-dimensional principal subspace of %d training samples.",
            subspace.n_components,
            len(rows),
        )
