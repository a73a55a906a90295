"""Torch modules: the networks and losses of each generator."""

from ._base import ConditionalGeneratorModule
from ._wgan import WGANGPModule

__all__ = ["ConditionalGeneratorModule", "WGANGPModule"]
