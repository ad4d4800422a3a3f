"""Samplers (ancestral DDPM, DDIM), guidance, windowed long-sequence generation and region
control. Entry points: `sample(model, audio, ...)`, and `Sampler` for many calls with one
setting."""

from disenttalk_fast.sampling.ddim import ddim_plan, ddim_timesteps
from disenttalk_fast.sampling.ddpm import ddpm_plan
from disenttalk_fast.sampling.plan import SamplingPlan
from disenttalk_fast.sampling.region_control import RegionControl
from disenttalk_fast.sampling.sampler import SAMPLERS, Sampler, make_plan, sample
from disenttalk_fast.sampling.step import DenoiseStep, Known
from disenttalk_fast.sampling.windowed import sample_windowed, window_starts

__all__ = ["sample", "Sampler", "SAMPLERS", "make_plan", "RegionControl", "SamplingPlan",
           "DenoiseStep", "Known", "ddim_plan", "ddim_timesteps", "ddpm_plan", "sample_windowed",
           "window_starts"]
