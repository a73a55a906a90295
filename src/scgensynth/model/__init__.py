"""Generative models (scvi-tools model classes)."""

from ._wgan import WGANGP
from .base import BaseGeneratorModel

__all__ = ["WGANGP", "BaseGeneratorModel"]
