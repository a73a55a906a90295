from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import torch
from scvi import REGISTRY_KEYS
from scvi.module.base import BaseModuleClass, LossOutput

from scgensynth._utils._random import RowNoise, draw_noise
from scgensynth.nn import ExpressionScaling

if TYPE_CHECKING:
    from scgensynth.nn import CovariateEmbedder


class ConditionalGeneratorModule(BaseModuleClass):
    """What every conditional generator's torch module shares.

    It owns the expression scaling (so weights and scaling travel together), the
    standardization of continuous covariates, and the parsing of scvi-tools mini-batches.
    Subclasses implement :meth:`generate_scaled` and declare, for the tools, the input that
    carries their randomness (:attr:`noise_input`, :attr:`noise_width`: fixing it fixes the
    synthetic individual, as counterfactuals need) and the covariate embedding interpolation
    walks through (:meth:`covariate_embedder`).

    Parameters
    ----------
    n_input
        Number of genes.
    n_cats_per_cov
        Number of categories of each categorical covariate.
    n_continuous_cov
        Number of continuous covariates.
    scaling
        Scaling mode of :class:`~scgensynth.nn.ExpressionScaling`.

    Examples
    --------
    >>> from scgensynth.module import WGANGPModule
    >>> isinstance(WGANGPModule(n_input=10), ConditionalGeneratorModule)
    True
    """

    #: the argument of :meth:`generate_scaled` that takes the noise a sample is decoded from
    #: (``None``: the module has none that can be held fixed)
    noise_input: ClassVar[str | None] = None

    def __init__(
        self,
        n_input: int,
        n_cats_per_cov: Sequence[int] = (),
        n_continuous_cov: int = 0,
        scaling: str = "standardize",
    ):
        super().__init__()
        self.n_input = int(n_input)
        self.n_cats_per_cov = [int(n) for n in (n_cats_per_cov or [])]
        self.n_continuous_cov = int(n_continuous_cov)
        self.scaling = ExpressionScaling(self.n_input, scaling)
        self.register_buffer("cont_mean", torch.zeros(self.n_continuous_cov))
        self.register_buffer("cont_std", torch.ones(self.n_continuous_cov))

    # -- the contract the tools read ---------------------------------------------------------
    @property
    def noise_width(self) -> int | None:
        """Width of the noise input (one row of ``noise_input`` per sample); None if none."""
        return None

    def covariate_embedder(self) -> CovariateEmbedder | None:
        """The learned embedding of categorical covariates the generator decodes from.

        ``None`` when the module has none (one-hot conditioning, or no network at all).
        """
        return None

    # -- covariates -------------------------------------------------------------------------
    def set_continuous_statistics(self, mean, std) -> None:
        """Set the mean and standard deviation used to standardize continuous covariates."""
        self.cont_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.cont_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def standardize_continuous(self, cont: torch.Tensor | None) -> torch.Tensor | None:
        """Continuous covariates on the scale the networks see."""
        if cont is None or self.n_continuous_cov == 0:
            return None
        return (cont.float() - self.cont_mean) / self.cont_std

    def standardise_continuous(self, cont: torch.Tensor | None) -> torch.Tensor | None:
        """Deprecated spelling of :meth:`standardize_continuous`."""
        warnings.warn(
            "standardise_continuous was renamed standardize_continuous; the old name will be "
            "removed in a later release.",
            FutureWarning,
            stacklevel=2,
        )
        return self.standardize_continuous(cont)

    def combination_keys(self, cat: torch.Tensor) -> torch.Tensor:
        """One integer per combination of categorical codes (their mixed-radix number)."""
        key = torch.zeros(cat.shape[0], dtype=torch.long, device=cat.device)
        for j, n in enumerate(self.n_cats_per_cov):
            key = key * n + cat[:, j].long()
        return key

    @staticmethod
    def parse_batch(tensors: dict[str, torch.Tensor]):
        """``(x, categorical codes, continuous covariates)`` of a scvi-tools mini-batch."""
        x = tensors[REGISTRY_KEYS.X_KEY]
        if x.layout is not torch.strided:
            x = x.to_dense()
        cat = tensors.get(REGISTRY_KEYS.CAT_COVS_KEY)
        cont = tensors.get(REGISTRY_KEYS.CONT_COVS_KEY)
        return x.float(), (None if cat is None else cat.long()), cont

    # -- the scvi-tools interface -----------------------------------------------------------
    def _get_inference_input(self, tensors, **kwargs):
        x, cat, cont = self.parse_batch(tensors)
        return {"x": x, "cat": cat, "cont": cont}

    def inference(self, x, cat=None, cont=None, **kwargs):
        """Map expression values to the network space."""
        return {"x_scaled": self.scaling(x), "cat": cat, "cont": cont}

    def _get_generative_input(self, tensors, inference_outputs, **kwargs):
        return {"cat": inference_outputs["cat"], "cont": inference_outputs["cont"]}

    def generative(self, cat=None, cont=None, n: int | None = None, **kwargs):
        """Generate one sample in network space per covariate row."""
        n = n if n is not None else self._batch_size(cat, cont)
        return {"x_scaled": self.generate_scaled(n, cat, cont, **kwargs)}

    def _batch_size(self, cat, cont) -> int:
        for t in (cat, cont):
            if t is not None:
                return t.shape[0]
        msg = "Pass `n` when the model has no covariates."
        raise ValueError(msg)

    def _cached_inference(self, *args, **kwargs):  # no encoder to cache
        return self.inference(*args, **kwargs)

    def _regular_inference(self, *args, **kwargs):
        return self.inference(*args, **kwargs)

    def generate_scaled(self, n, cat=None, cont=None, **kwargs) -> torch.Tensor:
        """Samples in network space; implemented by each generator."""
        raise NotImplementedError

    @torch.inference_mode()
    def sample(
        self,
        cat: torch.Tensor | None = None,
        cont: torch.Tensor | None = None,
        n: int | None = None,
        library_size: torch.Tensor | None = None,
        generator: torch.Generator | RowNoise | None = None,
        **kwargs,
    ) -> torch.Tensor:
        """Samples on the input's scale, one per covariate row (or ``n`` unconditional ones)."""
        n = n if n is not None else self._batch_size(cat, cont)
        z = self.generate_scaled(n, cat, cont, generator=generator, **kwargs)
        return self.scaling.inverse(z, library_size)


class LatentGeneratorMixin:
    """Generation by an MLP over ``[z ‖ covariate vector]``, shared by WGAN-GP, GAN and GMDA.

    The module defines ``n_latent``, ``generator_embedding`` (a
    :class:`~scgensynth.nn.CovariateEmbedder`) and ``generator`` (the network).

    Examples
    --------
    >>> from scgensynth.module import WGANGPModule
    >>> isinstance(WGANGPModule(n_input=10), LatentGeneratorMixin)
    True
    """

    noise_input: ClassVar[str | None] = "z"

    @property
    def noise_width(self) -> int:
        """Width of the latent noise ``z``."""
        return int(self.n_latent)

    def covariate_embedder(self) -> CovariateEmbedder:
        """The generator's covariate embedding."""
        return self.generator_embedding

    def sample_latent(
        self, n: int, generator: torch.Generator | RowNoise | None = None
    ) -> torch.Tensor:
        """Standard normal noise of shape ``(n, n_latent)``."""
        return draw_noise(generator, (n, self.n_latent), device=self.scaling.mean.device)

    def generate_scaled(
        self,
        n: int,
        cat: torch.Tensor | None = None,
        cont: torch.Tensor | None = None,
        z: torch.Tensor | None = None,
        generator: torch.Generator | RowNoise | None = None,
        cat_embedded=None,
        **kwargs,
    ) -> torch.Tensor:
        """Generator output in network space.

        ``z`` fixes the noise; ``cat_embedded`` feeds embedding vectors directly (used by
        :func:`scgensynth.tl.interpolate`).
        """
        if z is None:
            z = self.sample_latent(n, generator)
        c = self.generator_embedding(
            cat, self.standardize_continuous(cont), cat_embedded=cat_embedded
        )
        return self.generator(z if c is None else torch.cat([z, c], dim=-1))


class FittedStatisticsMixin:
    """For modules fitted in closed form: statistics in buffers, no trainable parameters.

    Declares the buffers whose shapes are only known once fitted (:attr:`fitted_buffers`,
    resized from a saved state before it is loaded), the device (that of the buffers), and
    a ``loss`` that reports the mean squared distance of generated to real samples as a
    metric (nothing is learned by gradient).

    Examples
    --------
    >>> from scgensynth.module import GaussianModule
    >>> isinstance(GaussianModule(n_input=3), FittedStatisticsMixin)
    True
    """

    #: buffers whose first dimension depends on the fitted data
    fitted_buffers: ClassVar[tuple[str, ...]] = ()

    @property
    def device(self) -> torch.device:
        """Device of the fitted statistics (the module has buffers but no parameters)."""
        return self.scaling.mean.device

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in self.fitted_buffers:  # resize to the saved shapes before loading
            saved = state_dict.get(prefix + name)
            if saved is not None:
                current = self._buffers[name]
                self._buffers[name] = torch.empty(
                    saved.shape, dtype=current.dtype, device=current.device
                )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def loss(self, tensors, inference_outputs, generative_outputs, **kwargs) -> LossOutput:
        """Nothing is learned by gradient: mean squared distance of generated to real samples."""
        real = inference_outputs["x_scaled"]
        fake = generative_outputs["x_scaled"]
        mse = ((real - fake) ** 2).mean()
        return LossOutput(loss=mse.detach(), n_obs_minibatch=real.shape[0])
