"""Torch modules: the networks and losses of each generator."""

from ._attgan import AttGANModule
from ._base import ConditionalGeneratorModule
from ._cvae import CVAEModule
from ._gan import GANModule
from ._noise import NoiseModule
from ._wgan import WGANGPModule

__all__ = [
    "AttGANModule",
    "CVAEModule",
    "ConditionalGeneratorModule",
    "GANModule",
    "NoiseModule",
    "WGANGPModule",
]
