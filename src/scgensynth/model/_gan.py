from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from scgensynth.module._gan import GANModule
from scgensynth.train._gan_plan import GANTrainingPlan

from ._wgan import build_adversarial_module
from .base import BaseGeneratorModel

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)


class GAN(BaseGeneratorModel):
    """Conditional vanilla GAN, the baseline of Lacan et al. (2023).

    Conditioning and networks are those of :class:`~scgensynth.model.WGANGP`: the generator
    maps ``[z ‖ continuous covariates ‖ embeddings of categorical covariates]`` to expression
    values, the discriminator scores ``[x ‖ covariates]`` with embeddings of its own (size
    ``floor(sqrt(n_categories)) + 1``). The discriminator outputs a logit and is trained with
    binary cross-entropy; the generator with the non-saturating loss ``-log D(G(z, c))``.
    Without the Wasserstein loss and gradient penalty a vanilla GAN is prone to mode
    collapse (lower recall), which is what the survey's comparison shows.

    Training defaults (see :class:`~scgensynth.train._gan_plan.GANTrainingPlan`): Adam with
    learning rate 2e-4 and betas ``(0.5, 0.999)`` for both networks, one discriminator step
    per generator step (``n_critic=1``). Logged per epoch: ``discriminator_loss``,
    ``generator_loss``, ``d_real``, ``d_fake`` and, on held-out samples,
    ``discriminator_loss_validation``. Model selection and early stopping are those of every
    generator (see :meth:`train`).

    The model scales expression values itself (``scaling``) and inverts the scaling when
    generating, so synthetic values are on the input's scale.

    Parameters
    ----------
    adata
        AnnData registered with :meth:`setup_anndata`.
    n_latent
        Size of the noise vector.
    n_hidden
        Hidden widths of generator and discriminator.
    n_hidden_critic
        Hidden widths of the discriminator, if different from ``n_hidden`` (named as in
        :class:`~scgensynth.model.WGANGP`, so the same arguments serve both models).
    scaling
        How expression values are scaled for training (``"auto"`` detects it from the data and
        says which in the log).

    Examples
    --------
    >>> import scgensynth as sgs
    >>> adata = sgs.datasets.gtex_tissues()
    >>> sgs.model.GAN.setup_anndata(adata, categorical_covariate_keys=["tissue"])
    >>> model = sgs.model.GAN(adata)
    >>> model.train(n_steps=5000)
    >>> synth = model.generate(1000, seed=0)
    >>> liver = model.generate(50, covariates={"tissue": "Liver"}, seed=0)
    """

    _module_cls = GANModule
    _training_plan_cls = GANTrainingPlan
    _plan_arg_names = ("lr_generator", "lr_critic", "n_critic", "optimizer", "weight_decay")

    def __init__(
        self,
        adata: AnnData | None = None,
        n_latent: int = 64,
        n_hidden: Sequence[int] = (256, 256),
        n_hidden_critic: Sequence[int] | None = None,
        scaling: str = "auto",
    ):
        super().__init__(adata, scaling=scaling)
        build_adversarial_module(self, n_latent, n_hidden, n_hidden_critic)
        scaling = self.scaling_mode  # save/load must reproduce the resolved mode, not "auto"
        self.init_params_ = self._get_init_params(locals())
