"""Gaussian diffusion over expression sequences: schedules, the training loss and guidance."""

from disenttalk_fast.diffusion.gaussian import GaussianDiffusion, TrainingLosses
from disenttalk_fast.diffusion.guidance import GuidedEps, check_guidance
from disenttalk_fast.diffusion.schedule import SCHEDULES, NoiseSchedule, make_betas

__all__ = ["GaussianDiffusion", "TrainingLosses", "GuidedEps", "check_guidance", "SCHEDULES",
           "NoiseSchedule", "make_betas"]
