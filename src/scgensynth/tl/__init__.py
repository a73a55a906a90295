"""One-call tools in scanpy style: train, generate, augment, compare generators."""

from ._compare import compare_generators
from ._generate import augment, generate
from ._train import train, train_attgan, train_gan, train_wgan

__all__ = [
    "augment",
    "compare_generators",
    "generate",
    "train",
    "train_attgan",
    "train_gan",
    "train_wgan",
]
