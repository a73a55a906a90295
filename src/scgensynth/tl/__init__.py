"""One-call tools in scanpy style.

Train, generate, augment, interpolate, compare generators, perturb samples (TSPG) and rank
counterfactual biomarkers.
"""

from ._compare import compare_generators
from ._counterfactual import counterfactual
from ._generate import augment, generate
from ._interpolate import interpolate
from ._perturb import perturb, train_tspg
from ._train import train, train_attgan, train_ddpm, train_gan, train_gmda, train_wgan

__all__ = [
    "augment",
    "compare_generators",
    "counterfactual",
    "generate",
    "interpolate",
    "perturb",
    "train",
    "train_attgan",
    "train_ddpm",
    "train_gan",
    "train_gmda",
    "train_tspg",
    "train_wgan",
]
