"""One-call tools in scanpy style: train, generate, augment."""

from ._generate import augment, generate
from ._train import train_wgan

__all__ = ["augment", "generate", "train_wgan"]
