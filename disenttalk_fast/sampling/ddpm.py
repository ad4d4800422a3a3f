"""Ancestral DDPM sampling (the paper's sampler): every one of the T steps, z_{t-1} drawn from
the posterior q(z_{t-1} | z_t, x0 = x0_hat) with variance beta~_t (no noise on the last step)."""

from __future__ import annotations

from disenttalk_fast._torch import torch
from disenttalk_fast.sampling.plan import SamplingPlan


def ddpm_plan(diffusion, steps: int | None = None) -> SamplingPlan:
    s = diffusion.schedule
    T = s.timesteps
    if steps is not None and steps != T:
        raise ValueError(f"ddpm runs all T={T} steps (got steps={steps}); use sampler='ddim' "
                         "for fewer steps")
    ts = torch.arange(T - 1, -1, -1, dtype=torch.int64)
    return SamplingPlan(
        name="ddpm", timesteps=ts, abar=s.alphas_cumprod[ts], abar_next=s.alphas_cumprod_prev[ts],
        coef_x0=s.posterior_coef_x0[ts], coef_z=s.posterior_coef_zt[ts],
        coef_eps=torch.zeros(T), sigma=s.posterior_variance[ts].clamp(min=0).sqrt())
