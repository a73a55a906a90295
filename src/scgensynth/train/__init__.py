"""Lightning training plans and callbacks."""

from ._ddpm_plan import DDPMTrainingPlan
from ._gan_plan import GANTrainingPlan
from ._selection import GeneratorSelection, SelectionCriterion
from ._wgan_plan import WGANGPTrainingPlan

__all__ = [
    "DDPMTrainingPlan",
    "GANTrainingPlan",
    "GeneratorSelection",
    "SelectionCriterion",
    "WGANGPTrainingPlan",
]
