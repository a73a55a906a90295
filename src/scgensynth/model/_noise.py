from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from scgensynth.module import NoiseModule

from ._closed_form import ClosedFormGenerator

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)


class NoiseAugmenter(ClosedFormGenerator):
    """Noise augmentation: real samples plus Gaussian noise, the baseline of Lacan et al. (2023).

    A synthetic sample is a real training sample with the requested covariates plus noise of
    variance ``noise_variance`` (default 0.1, the survey's) on every gene in the model's
    standardized space (per-gene z-scores after the scaling's normalisation and ``log1p``),
    mapped back to the input's scale. Nothing is learned: :meth:`train` stores the (scaled)
    training samples and their covariates in the module, so they are saved and loaded with
    it -- note that a saved model therefore contains the training data.

    Which real sample: for each requested covariate row, one drawn uniformly among the
    training samples with exactly those categorical covariates; with continuous covariates,
    among those of that categorical combination nearest in the (standardized) continuous
    covariates, uniformly among ties. Asking for a categorical combination absent from the
    training samples is an error. :meth:`generate` without covariates resamples the covariate
    rows of the stored samples, so it resamples the training samples themselves.

    Parameters
    ----------
    adata
        AnnData registered with :meth:`setup_anndata`.
    noise_variance
        Variance of the Gaussian noise in standardized space.
    scaling
        How expression values are scaled (``"auto"`` detects it from the data and says which
        in the log); the noise is added after scaling.

    Examples
    --------
    >>> import scgensynth as sgs
    >>> adata = sgs.datasets.gtex_tissues()
    >>> sgs.model.NoiseAugmenter.setup_anndata(adata, categorical_covariate_keys=["tissue"])
    >>> model = sgs.model.NoiseAugmenter(adata)
    >>> model.train()
    >>> liver = model.generate(50, covariates={"tissue": "Liver"}, seed=0)
    """

    description = (
        "baseline: real training samples plus Gaussian noise (variance 0.1, scaled space)"
    )
    reference = "Lacan et al. 2023"
    quick_kwargs: ClassVar[dict[str, Any]] = {}
    _module_cls = NoiseModule

    def __init__(
        self,
        adata: AnnData | None = None,
        noise_variance: float = 0.1,
        scaling: str = "auto",
    ):
        super().__init__(adata, scaling=scaling)
        noise_variance = float(noise_variance)
        self._build_module(f"noise variance {noise_variance}", noise_variance=noise_variance)
        self.init_params_ = self._get_init_params(locals())

    def _fit(self, x_scaled: torch.Tensor, cat, cont) -> None:
        self.module.set_data(x_scaled, cat, cont)

    def _fit_message(self, n_train: int, n_held: int) -> str:
        return (
            f"NoiseAugmenter stored {n_train} training samples ({n_held} held out); nothing "
            "is learned: samples are real ones plus Gaussian noise of variance "
            f"{self.module.noise_variance:g} in standardized space."
        )
