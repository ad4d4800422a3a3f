"""Noise schedules for the Gaussian diffusion (paper Eq. 3, T = 400 by default).

A schedule is fully described by its name and T, both recorded in the model's config (and hence
in every checkpoint), so sampling always uses the schedule the model was trained with. The
tables are computed in float64 and stored as float32 tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from disenttalk_fast._torch import torch

SCHEDULES = ("linear", "cosine")


def make_betas(schedule: str, timesteps: int) -> torch.Tensor:
    """betas (T,) float64 for `schedule` in SCHEDULES."""
    if not isinstance(timesteps, int) or timesteps < 1:
        raise ValueError(f"timesteps must be a positive integer, got {timesteps!r}")
    if schedule == "linear":
        # Ho et al.'s 1e-4 .. 0.02 for T = 1000, rescaled so that the total noise added is the
        # same for any T (the paper's T = 400 gets 2.5e-4 .. 0.05).
        scale = 1000.0 / timesteps
        return torch.linspace(scale * 1e-4, min(scale * 0.02, 0.999), timesteps, dtype=torch.float64)
    if schedule == "cosine":
        # Nichol & Dhariwal (2021): alpha_bar(t) = cos^2((t/T + s) / (1 + s) * pi/2), s = 0.008,
        # betas clipped at 0.999 so the last step stays invertible.
        s = 0.008
        steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
        abar = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        betas = 1 - abar[1:] / abar[:-1]
        return betas.clamp(max=0.999)
    raise ValueError(f"unknown noise schedule {schedule!r} (choose from {', '.join(SCHEDULES)})")


@dataclass(frozen=True)
class NoiseSchedule:
    """Per-timestep tables derived from the betas; index t in [0, T)."""

    name: str
    timesteps: int
    betas: torch.Tensor                 # (T,)
    alphas_cumprod: torch.Tensor        # (T,)  alpha_bar_t
    alphas_cumprod_prev: torch.Tensor   # (T,)  alpha_bar_{t-1}, 1 at t = 0
    posterior_variance: torch.Tensor    # (T,)  beta~_t of q(z_{t-1} | z_t, z_0)
    posterior_coef_x0: torch.Tensor     # (T,)  mean = coef_x0 * z_0 + coef_zt * z_t
    posterior_coef_zt: torch.Tensor     # (T,)

    @classmethod
    def create(cls, name: str = "linear", timesteps: int = 400) -> "NoiseSchedule":
        betas = make_betas(name, timesteps)
        alphas = 1.0 - betas
        abar = torch.cumprod(alphas, 0)
        abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
        post_var = betas * (1.0 - abar_prev) / (1.0 - abar)
        coef_x0 = betas * abar_prev.sqrt() / (1.0 - abar)
        coef_zt = (1.0 - abar_prev) * alphas.sqrt() / (1.0 - abar)
        f = lambda x: x.to(torch.float32)  # noqa: E731
        return cls(name, timesteps, f(betas), f(abar), f(abar_prev), f(post_var), f(coef_x0),
                   f(coef_zt))

    def alpha_bar(self, t: torch.Tensor) -> torch.Tensor:
        """alpha_bar at integer timesteps t (any shape, any device); t = -1 means clean (1.0)."""
        table = torch.cat([self.alphas_cumprod.new_ones(1), self.alphas_cumprod]).to(t.device)
        return table[t.long() + 1]
