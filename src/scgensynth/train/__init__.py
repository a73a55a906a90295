"""Lightning training plans and callbacks."""

from ._gan_plan import GANTrainingPlan
from ._selection import GeneratorSelection, SelectionCriterion
from ._wgan_plan import WGANGPTrainingPlan

__all__ = ["GANTrainingPlan", "GeneratorSelection", "SelectionCriterion", "WGANGPTrainingPlan"]
