from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scvi.train import TrainingPlan

from scgensynth.module._cvae import CVAEModule

from .base import BaseGeneratorModel

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)


class CVAE(BaseGeneratorModel):
    """Conditional variational autoencoder baseline (Lacan et al. 2023).

    An encoder and a decoder built from scvi-tools' :class:`~scvi.nn.Encoder` and
    :class:`~scvi.nn.FCLayers`, conditioned on the covariates (categorical ones injected
    one-hot into every layer, continuous ones standardised and concatenated), trained on the
    per-gene standardised values with a Gaussian likelihood (a learned variance per gene) and
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

    _module_cls = CVAEModule
    _training_plan_cls = TrainingPlan
    _plan_arg_names = ("lr", "weight_decay", "n_epochs_kl_warmup", "n_steps_kl_warmup")

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
        scaling = self.scaling_mode
        self.module = self._module_cls(
            n_input=self.summary_stats.n_vars,
            n_cats_per_cov=self.n_cats_per_cov,
            n_continuous_cov=len(self._cont_keys),
            n_latent=n_latent,
            n_hidden=n_hidden,
            n_layers=n_layers,
            dropout_rate=dropout_rate,
            sample_noise=sample_noise,
            scaling=scaling,
        )
        self._init_module_statistics()
        self._model_summary_string = (
            f"CVAE: {self.summary_stats.n_vars} genes, covariates "
            f"{[*self._cat_keys, *self._cont_keys]}, latent {n_latent}, hidden {n_hidden} x "
            f"{n_layers}, scaling {scaling!r}"
        )
        self.init_params_ = self._get_init_params(locals())
