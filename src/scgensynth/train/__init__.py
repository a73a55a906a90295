"""Lightning training plans and callbacks."""

from ._ddpm_plan import DDPMTrainingPlan
from ._gan_plan import GANTrainingPlan
from ._gmda_plan import GMDATrainingPlan
from ._selection import GeneratorSelection, SelectionCriterion
from ._tspg_plan import TSPGTrainingPlan
from ._wgan_plan import WGANGPTrainingPlan

__all__ = [
    "DDPMTrainingPlan",
    "GANTrainingPlan",
    "GMDATrainingPlan",
    "GeneratorSelection",
    "SelectionCriterion",
    "TSPGTrainingPlan",
    "WGANGPTrainingPlan",
]
