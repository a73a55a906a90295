"""Generative models (scvi-tools model classes) and the registry of generators."""

from scgensynth._utils._files import ModelFileError

from ._attgan import AttGAN, RandAttGAN
from ._cvae import CVAE
from ._ddpm import DDPM
from ._gan import GAN
from ._gaussian import GaussianGenerator
from ._gmda import GMDA
from ._noise import NoiseAugmenter
from ._registry import (
    available,
    get_model_class,
    load_model,
    register,
    register_other,
    unregister,
)
from ._tspg import TSPG
from ._wgan import WGANGP
from .base import BaseGeneratorModel

# the built-in generators, by the names sgs.tl.train takes (a new one is one line here)
register("gaussian", GaussianGenerator)
register("wgan", WGANGP)
register("gan", GAN)
register("attgan", AttGAN)
register("randattgan", RandAttGAN)
register("cvae", CVAE)
register("ddpm", DDPM)
register("gmda", GMDA)
register("noise", NoiseAugmenter)
register_other(TSPG)

__all__ = [
    "CVAE",
    "DDPM",
    "GAN",
    "GMDA",
    "TSPG",
    "WGANGP",
    "AttGAN",
    "BaseGeneratorModel",
    "GaussianGenerator",
    "ModelFileError",
    "NoiseAugmenter",
    "RandAttGAN",
    "available",
    "get_model_class",
    "load_model",
    "register",
    "unregister",
]
