"""One-call tools in scanpy style: train, generate, augment, interpolate, compare generators."""

from ._compare import compare_generators
from ._generate import augment, generate
from ._interpolate import interpolate
from ._train import train, train_attgan, train_ddpm, train_gan, train_gmda, train_wgan

__all__ = [
    "augment",
    "compare_generators",
    "generate",
    "interpolate",
    "train",
    "train_attgan",
    "train_ddpm",
    "train_gan",
    "train_gmda",
    "train_wgan",
]
