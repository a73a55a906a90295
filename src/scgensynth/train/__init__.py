"""Lightning training plans and callbacks."""

from ._base import EpochMeanPlan
from ._checkpoint import ResumableCheckpoint, check_checkpoint, checkpoint_path
from ._ddpm_plan import DDPMTrainingPlan
from ._gan_plan import GANTrainingPlan
from ._gmda_plan import GMDATrainingPlan
from ._privacy import (
    PoissonBatchSampler,
    PrivacyAccountant,
    PrivacySpec,
    clip_rows,
    clipped_noisy_mean,
    per_sample_gradients,
    private_moments,
)
from ._private_plans import PrivateCVAETrainingPlan, PrivateDDPMTrainingPlan
from ._progress import StepProgressBar
from ._selection import GeneratorSelection, SelectionCriterion
from ._tspg_plan import TSPGTrainingPlan
from ._wgan_plan import PrivateWGANGPTrainingPlan, WGANGPTrainingPlan

__all__ = [
    "DDPMTrainingPlan",
    "EpochMeanPlan",
    "GANTrainingPlan",
    "GMDATrainingPlan",
    "GeneratorSelection",
    "PoissonBatchSampler",
    "PrivacyAccountant",
    "PrivacySpec",
    "PrivateCVAETrainingPlan",
    "PrivateDDPMTrainingPlan",
    "PrivateWGANGPTrainingPlan",
    "ResumableCheckpoint",
    "SelectionCriterion",
    "StepProgressBar",
    "TSPGTrainingPlan",
    "WGANGPTrainingPlan",
    "check_checkpoint",
    "checkpoint_path",
    "clip_rows",
    "clipped_noisy_mean",
    "per_sample_gradients",
    "private_moments",
]
