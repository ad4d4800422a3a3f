"""One denoising step as a pure function `step(z, i, noise) -> z_next`.

No RNG, no state and no Python-side branching on data inside: the caller draws `noise` (same
shape as z) from its generator and loops. That is the function a CUDA-graph sampler captures.

Known values (the held overlap frames of the previous window; frozen or replaced regions) are
imposed on the step's estimate of the clean motion: x0_hat is replaced by the known values where
they are known, and z_next is built from that corrected x0_hat and the model's own noise
estimate (the range/null-space decomposition of DDNM, Wang et al. 2023, for an inpainting
mask). Compared with the classic replacement of the noisy state by q_sample(known, t) with fresh
noise, the unknown frames then see the known ones through a state consistent with the model's
noise estimate, which on an exact Gaussian-process denoiser removes most of the seam at the
boundary for the same number of steps (see docs/diffusion_training.md). After the last step the
known values hold exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from disenttalk_fast._torch import torch
from disenttalk_fast.sampling.plan import SamplingPlan


@dataclass
class Known:
    """values (B or 1, L, N) and a bool mask broadcastable to (B, L, N): True where fixed."""

    values: torch.Tensor
    mask: torch.Tensor

    def impose(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(self.mask, self.values, x)


class DenoiseStep:
    """step(z, i, noise): one sampler update with guided eps and the known values imposed."""

    def __init__(self, eps_fn, plan: SamplingPlan, known: Known | None = None):
        self.eps_fn = eps_fn
        self.plan = plan
        self.known = known

    def start(self, noise: torch.Tensor) -> torch.Tensor:
        """The initial state z_T: the noise itself (known values need no noising, they enter
        through x0_hat)."""
        return noise

    def __call__(self, z: torch.Tensor, i: int, noise: torch.Tensor) -> torch.Tensor:
        p = self.plan
        t = p.timesteps[i].expand(z.shape[0])
        eps = self.eps_fn(z, t)
        abar = p.abar[i]
        x0 = (z - (1.0 - abar).sqrt() * eps) / abar.sqrt()
        if self.known is not None:
            x0 = self.known.impose(x0)
        z_next = p.coef_x0[i] * x0 + p.coef_z[i] * z + p.coef_eps[i] * eps + p.sigma[i] * noise
        if self.known is not None:
            # After the last step (abar_next = 1) the known values hold exactly, not up to the
            # rounding of the step's coefficients; a tensor condition, so no host sync.
            done = self.known.mask & (p.abar_next[i] >= 1.0)
            z_next = torch.where(done, self.known.values, z_next)
        return z_next
