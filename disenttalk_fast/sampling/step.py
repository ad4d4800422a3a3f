"""One denoising step as a pure function `step(z, i, noise) -> z_next`.

No RNG, no state and no Python-side branching on data inside: the caller draws `noise` (same
shape as z) from its generator and loops. Known values (inpainting: the held overlap frames of
the previous window, frozen or replaced regions) are re-imposed after every step at the noise
level the step produced, q_sample(known, t_next, noise), using the same noise tensor at their
(disjoint) positions; after the last step abar_next = 1, so they equal the known values exactly.
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

    def impose(self, z: torch.Tensor, abar: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        noisy = abar.sqrt() * self.values + (1.0 - abar).sqrt() * noise
        return torch.where(self.mask, noisy, z)


class DenoiseStep:
    """step(z, i, noise): one sampler update with guided eps and the known values imposed."""

    def __init__(self, eps_fn, plan: SamplingPlan, known: Known | None = None):
        self.eps_fn = eps_fn
        self.plan = plan
        self.known = known

    def start(self, noise: torch.Tensor) -> torch.Tensor:
        """The initial state z_T from standard normal `noise` (known values noised to t_0)."""
        if self.known is None:
            return noise
        return self.known.impose(noise, self.plan.abar[0], noise)

    def __call__(self, z: torch.Tensor, i: int, noise: torch.Tensor) -> torch.Tensor:
        p = self.plan
        t = p.timesteps[i].expand(z.shape[0])
        eps = self.eps_fn(z, t)
        abar = p.abar[i]
        x0 = (z - (1.0 - abar).sqrt() * eps) / abar.sqrt()
        z_next = p.coef_x0[i] * x0 + p.coef_z[i] * z + p.coef_eps[i] * eps + p.sigma[i] * noise
        if self.known is not None:
            z_next = self.known.impose(z_next, p.abar_next[i], noise)
        return z_next
