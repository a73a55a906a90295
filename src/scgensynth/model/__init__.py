"""Generative models (scvi-tools model classes)."""

from ._attgan import AttGAN, RandAttGAN
from ._cvae import CVAE
from ._ddpm import DDPM
from ._gan import GAN
from ._gmda import GMDA
from ._noise import NoiseAugmenter
from ._registry import available, get_model_class, load_model
from ._tspg import TSPG
from ._wgan import WGANGP
from .base import BaseGeneratorModel
from .base._files import ModelFileError

__all__ = [
    "CVAE",
    "DDPM",
    "GAN",
    "GMDA",
    "TSPG",
    "WGANGP",
    "AttGAN",
    "BaseGeneratorModel",
    "ModelFileError",
    "NoiseAugmenter",
    "RandAttGAN",
    "available",
    "get_model_class",
    "load_model",
]
