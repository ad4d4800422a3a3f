"""A sampling plan: the per-step coefficients of a sampler, as small tensors indexed by step.

Both samplers are the same update with different coefficients,

    x0     = (z - sqrt(1 - abar_i) * eps) / sqrt(abar_i)
    z_next = coef_x0[i] * x0 + coef_z[i] * z + coef_eps[i] * eps + sigma[i] * noise

so the per-step function (`disenttalk_fast.sampling.step.DenoiseStep`) is one pure expression of
(z, i, noise) with static shapes — what a CUDA-graph sampler captures and replays.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, fields

from disenttalk_fast._checks import is_int
from disenttalk_fast._torch import torch


@dataclass(frozen=True)
class SamplingPlan:
    name: str
    timesteps: torch.Tensor   # (S,) int64, descending: the model is evaluated at t = timesteps[i]
    abar: torch.Tensor        # (S,) alpha_bar at timesteps[i]
    abar_next: torch.Tensor   # (S,) alpha_bar of the state the step produces (1.0 after the last)
    coef_x0: torch.Tensor     # (S,)
    coef_z: torch.Tensor      # (S,)
    coef_eps: torch.Tensor    # (S,)
    sigma: torch.Tensor       # (S,) std of the fresh noise added by step i

    @property
    def num_steps(self) -> int:
        return int(self.timesteps.numel())

    def to(self, device) -> "SamplingPlan":
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        for k, v in moved.items():
            if isinstance(v, torch.Tensor):
                moved[k] = v.to(device)
        return SamplingPlan(**moved)


def check_steps(steps, timesteps: int) -> int:
    if not is_int(steps):
        raise ValueError(f"steps must be an integer, got {steps!r}")
    steps = int(steps)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if steps > timesteps:
        raise ValueError(f"steps={steps} exceeds the model's T={timesteps} diffusion steps")
    return steps


def check_seed(seed) -> int:
    """An integer seed for torch.Generator.manual_seed (0 <= seed < 2**64); None draws a fresh
    one (generate records it in the result's meta["seed"])."""
    if seed is None:
        return secrets.randbits(63)
    if not is_int(seed) or not 0 <= int(seed) < 2 ** 64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    return int(seed)
