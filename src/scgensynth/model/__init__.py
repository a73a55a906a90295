"""Generative models (scvi-tools model classes)."""

from ._attgan import AttGAN, RandAttGAN
from ._cvae import CVAE
from ._registry import available, get_model_class
from ._wgan import WGANGP
from .base import BaseGeneratorModel

__all__ = [
    "CVAE",
    "WGANGP",
    "AttGAN",
    "BaseGeneratorModel",
    "RandAttGAN",
    "available",
    "get_model_class",
]
