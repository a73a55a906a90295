"""One-call tools in scanpy style: train, generate, augment."""

from ._generate import augment, generate
from ._train import train, train_wgan

__all__ = ["augment", "generate", "train", "train_wgan"]
