"""Lightning training plans and callbacks."""

from ._selection import GeneratorSelection, SelectionCriterion
from ._wgan_plan import WGANGPTrainingPlan

__all__ = ["GeneratorSelection", "SelectionCriterion", "WGANGPTrainingPlan"]
