"""What every generator shares: covariate setup, scaling, training loop glue and generate()."""

from ._base import BaseGeneratorModel

__all__ = ["BaseGeneratorModel"]
