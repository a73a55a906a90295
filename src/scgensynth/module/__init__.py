"""Torch modules: the networks and losses of each generator."""

from ._attgan import AttGANModule
from ._base import ConditionalGeneratorModule, FittedStatisticsMixin, LatentGeneratorMixin
from ._cvae import CVAEModule
from ._ddpm import DDPMModule
from ._diffusion import GaussianDiffusion, beta_schedule
from ._gan import GANModule
from ._gaussian import GaussianModule, ledoit_wolf_shrinkage
from ._gmda import GMDAModule
from ._noise import NoiseModule
from ._tspg import TSPGModule
from ._wgan import WGANGPModule

__all__ = [
    "AttGANModule",
    "CVAEModule",
    "ConditionalGeneratorModule",
    "DDPMModule",
    "FittedStatisticsMixin",
    "GANModule",
    "GMDAModule",
    "GaussianDiffusion",
    "GaussianModule",
    "LatentGeneratorMixin",
    "NoiseModule",
    "TSPGModule",
    "WGANGPModule",
    "beta_schedule",
    "ledoit_wolf_shrinkage",
]
