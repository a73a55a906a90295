from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from scvi.train import TrainingPlan

from scgensynth._utils._docs import doctest_skip
from scgensynth.module import CVAEModule
from scgensynth.train import PrivateCVAETrainingPlan

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
    use_batch_norm, use_layer_norm
        Normalisation of the hidden layers (scvi-tools' ``FCLayers``). Differentially
        private training (``train(privacy=...)``, DP-SGD on every parameter) needs
        ``use_batch_norm=False`` (:attr:`private_kwargs`).

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
    #: constructor arguments ``train(privacy=...)`` needs: batch norm mixes the samples of a
    #: mini-batch, so one sample's gradient could not be clipped alone
    private_kwargs: ClassVar[dict[str, Any]] = {"use_batch_norm": False, "use_layer_norm": True}
    _module_cls = CVAEModule
    _training_plan_cls = TrainingPlan
    _private_plan_cls = PrivateCVAETrainingPlan

    @property
    def logged_losses(self) -> tuple[str, ...]:
        """scvi-tools' training plan logs the evidence lower bound (a private run: nothing)."""
        if getattr(self, "privacy_", None):
            return ()
        return ("elbo_train", "elbo_validation")

    def _check_private_module(self) -> None:
        """Refuse batch norm before a private run changes anything."""
        norms = torch.nn.modules.batchnorm._BatchNorm
        if any(isinstance(m, norms) for m in self.module.modules()):
            msg = (
                "A CVAE with batch norm cannot be trained with privacy=...: batch norm mixes the "
                "samples of a mini-batch, so one sample's gradient cannot be clipped alone. "
                "Build it with use_batch_norm=False, use_layer_norm=True "
                "(sgs.tl.train(adata, 'cvae', ..., **sgs.model.CVAE.private_kwargs))."
            )
            raise ValueError(msg)

    def __init__(
        self,
        adata: AnnData | None = None,
        n_latent: int = 32,
        n_hidden: int = 256,
        n_layers: int = 2,
        dropout_rate: float = 0.1,
        sample_noise: bool = False,
        scaling: str = "auto",
        use_batch_norm: bool = True,
        use_layer_norm: bool = False,
    ):
        super().__init__(adata, scaling=scaling)
        self._build_module(
            f"latent {n_latent}, hidden {n_hidden} x {n_layers}", n_latent=n_latent,
            n_hidden=n_hidden, n_layers=n_layers, dropout_rate=dropout_rate,
            sample_noise=sample_noise, use_batch_norm=bool(use_batch_norm),
            use_layer_norm=bool(use_layer_norm),
        )  # fmt: skip
        self.init_params_ = self._get_init_params(locals())
