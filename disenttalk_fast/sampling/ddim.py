"""DDIM sampling (Song et al. 2021) with S <= T steps and configurable eta (0 = deterministic
given the initial noise, 1 = DDPM-like posterior noise).

The S timesteps are spread evenly over [T-1, 0], rounded (always including T-1 and 0 when
S >= 2); S = T visits every timestep.
"""

from __future__ import annotations

import math

from disenttalk_fast._torch import torch
from disenttalk_fast.sampling.plan import SamplingPlan, check_steps


def ddim_timesteps(timesteps: int, steps: int) -> torch.Tensor:
    check_steps(steps, timesteps)
    return torch.linspace(timesteps - 1, 0, steps, dtype=torch.float64).round().to(torch.int64)


def ddim_plan(diffusion, steps: int = 25, eta: float = 0.0) -> SamplingPlan:
    try:   # a Python or numpy number, or a one-element tensor; not a string
        value = float(eta) if not isinstance(eta, (str, bytes)) else math.nan
    except (TypeError, ValueError):
        value = math.nan
    if not 0.0 <= value <= 1.0:   # (NaN fails it too)
        raise ValueError(f"eta must be a number in [0, 1], got {eta!r}")
    eta = value
    s = diffusion.schedule
    ts = ddim_timesteps(s.timesteps, steps)
    abar = s.alphas_cumprod.double()[ts]
    abar_next = torch.cat([abar[1:], abar.new_ones(1)])
    sigma = eta * ((1 - abar_next) / (1 - abar) * (1 - abar / abar_next)).clamp(min=0).sqrt()
    coef_eps = (1 - abar_next - sigma ** 2).clamp(min=0).sqrt()
    f = lambda x: x.to(torch.float32)  # noqa: E731
    return SamplingPlan(name="ddim", timesteps=ts, abar=f(abar), abar_next=f(abar_next),
                        coef_x0=f(abar_next.sqrt()), coef_z=torch.zeros(len(ts)),
                        coef_eps=f(coef_eps), sigma=f(sigma))
