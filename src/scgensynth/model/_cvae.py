from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

from scvi.train import TrainingPlan

from scgensynth._utils._docs import doctest_skip
from scgensynth.module import CVAEModule

from .base import BaseGeneratorModel

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)


@doctest_skip("trains a generator (minutes)")
class CVAE(BaseGeneratorModel):
    """Conditional variational autoencoder baseline (Lacan et al. 2023).

    An encoder and a decoder built from scvi-tools' :class:`~scvi.nn.Encoder` and
    :class:`~scvi.nn.FCLayers`, conditioned on the covariates (categorical ones injected
    one-hot into every layer, continuous ones standardized and concatenated), trained on the
    per-gene standardized values with a Gaussian likelihood (a learned variance per gene) and
    scvi-tools' :class:`~scvi.train.TrainingPlan` (Adam, KL warm-up). Generation decodes
    ``z ~ N(0, I)`` with the requested covariates and inverts the scaling. Covariate handling,
    scaling, training length in steps, model selection, ``generate`` and save/load are those
    of every scgensynth generator.

    Parameters
    ----------
    adata
        AnnData registered with :meth:`setup_anndata`.
    n_latent
        Latent dimension.
    n_hidden
        Width of the hidden layers of encoder and decoder.
    n_layers
        Hidden layers of encoder and decoder.
    dropout_rate
        Dropout in the encoder.
    sample_noise
        Add the learned per-gene Gaussian noise to generated samples (default: the decoder
        mean, smoother but closer to the data's structure).
    scaling
        How expression values are scaled for training (see :class:`~scgensynth.model.WGANGP`).

    Examples
    --------
    >>> import scgensynth as sgs
    >>> adata = sgs.datasets.gtex_tissues()
    >>> model = sgs.tl.train(adata, "cvae", categorical_covariate_keys=["tissue"])
    >>> synth = model.generate(500, seed=0)
    """

    description = "conditional variational autoencoder (scvi-tools encoder/decoder blocks)"
    reference = "Lacan et al. 2023 (VAE baseline)"
    quick_kwargs: ClassVar[dict[str, Any]] = {"n_latent": 4, "n_hidden": 16}
    #: scvi-tools' training plan logs the evidence lower bound
    logged_losses = ("elbo_train", "elbo_validation")
    _module_cls = CVAEModule
    _training_plan_cls = TrainingPlan

    def __init__(
        self,
        adata: AnnData | None = None,
        n_latent: int = 32,
        n_hidden: int = 256,
        n_layers: int = 2,
        dropout_rate: float = 0.1,
        sample_noise: bool = False,
        scaling: str = "auto",
    ):
        super().__init__(adata, scaling=scaling)
        self._build_module(
            f"latent {n_latent}, hidden {n_hidden} x {n_layers}", n_latent=n_latent,
            n_hidden=n_hidden, n_layers=n_layers, dropout_rate=dropout_rate,
            sample_noise=sample_noise,
        )  # fmt: skip
        self.init_params_ = self._get_init_params(locals())
