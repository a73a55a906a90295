from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from scgensynth._utils._docs import doctest_skip
from scgensynth.module import GANModule
from scgensynth.train import GANTrainingPlan

from ._wgan import build_adversarial_module
from .base import BaseGeneratorModel

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)


@doctest_skip("trains a generator (minutes)")
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
    betas ``(0.5, 0.999)``, learning rates 1e-3 (generator) and 2e-4 (discriminator), one
    discriminator step per generator step (``n_critic=1``). Logged per epoch:
    ``discriminator_loss``, ``generator_loss``, ``d_real``, ``d_fake`` and, on held-out
    samples, ``discriminator_loss_validation``. Model selection and early stopping are those
    of every generator (see :meth:`train`).

    On small data the discriminator of a vanilla GAN wins at once (it separates real from
    generated samples almost perfectly and the generator stops learning). The defaults
    therefore add *instance noise* (Sønderby et al. 2017; Arjovsky & Bottou 2017): Gaussian
    noise of standard deviation ``instance_noise`` (in standardized units) on every input of
    the discriminator, real and generated alike, decayed linearly to 0 over training
    (``anneal_instance_noise``). It keeps the loss a plain cross-entropy and does not
    prevent mode collapse. One-sided label smoothing (``label_smoothing``, Salimans et al.
    2016) and discriminator dropout are available but off: on GTEx (70/30 split, 20,000
    steps) neither helped. Measured there (logistic regression trained on 364 synthetic
    samples, tested on the 156 held-out real ones, accuracy relative to training on the real
    364): 0.43 without instance noise and with the Radford et al. (2016) learning rates
    (2e-4 for both), 0.73-0.80 with the defaults, against 0.98 for WGAN-GP; a classifier
    trained on real samples labels 80-100 % of the GAN's samples correctly, and their recall
    is 0: the samples are right but collapsed.

    Set ``instance_noise=0`` and ``lr_generator=2e-4`` for the textbook GAN.

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
    label_smoothing
        One-sided label smoothing: the discriminator's target for real samples is
        ``1 - label_smoothing``.
    instance_noise
        Standard deviation of the Gaussian noise added to the discriminator's inputs during
        training (standardized units; 0 disables it).
    dropout
        Dropout rate after each hidden layer of the discriminator.

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

    description = "conditional vanilla GAN (non-saturating cross-entropy), WGAN-GP's conditioning"
    reference = "Lacan et al. 2023"
    quick_kwargs: ClassVar[dict[str, Any]] = {"n_latent": 8, "n_hidden": (16, 16)}
    _module_cls = GANModule
    _training_plan_cls = GANTrainingPlan

    def __init__(
        self,
        adata: AnnData | None = None,
        n_latent: int = 64,
        n_hidden: Sequence[int] = (256, 256),
        n_hidden_critic: Sequence[int] | None = None,
        scaling: str = "auto",
        label_smoothing: float = 0.0,
        instance_noise: float = 1.0,
        dropout: float = 0.0,
    ):
        super().__init__(adata, scaling=scaling)
        build_adversarial_module(
            self, n_latent, n_hidden, n_hidden_critic,
            label_smoothing=label_smoothing, instance_noise=instance_noise, dropout=dropout,
        )  # fmt: skip
        self.init_params_ = self._get_init_params(locals())
