"""Classifier-free guidance (paper Eq. 9): eps* = s * eps(Z, A) + (1 - s) * eps(Z, null).

The conditional and unconditional rows run as ONE call of batch 2B through the denoiser, against
an audio cache that is the batch concatenation of the conditional cache and the null cache, both
built once per generation (never per diffusion step); the denoisers take z once
(`model(z, t, cache, guided=True)`) and compute what the two halves share once. s = 1 runs the conditional branch alone
(so it equals the conditional model exactly) and s = 0 the unconditional branch alone.
"""

from __future__ import annotations

import math

from disenttalk_fast._torch import torch
from disenttalk_fast.config import MAX_GUIDANCE


def check_guidance(scale) -> float:
    try:
        s = float(scale)
    except (TypeError, ValueError):
        raise ValueError(f"guidance scale must be a number, got {scale!r}") from None
    if not (math.isfinite(s) and 0 <= s <= MAX_GUIDANCE):
        raise ValueError(f"guidance scale must be in [0, {MAX_GUIDANCE:g}] (the paper uses 1-5), "
                         f"got {scale}")
    return s


class GuidedEps:
    """The guided noise prediction eps*(z, t) for one fixed audio conditioning.

    `cond` and `null` are AudioCache objects of batch B (from model.encode_audio); a pure
    function of (z, t) afterwards, which is what a CUDA-graph sampler captures.
    """

    def __init__(self, model, cond, null, scale: float):
        self.model = model
        self.scale = check_guidance(scale)
        if self.scale == 1.0:
            self.mode, self.cache = "cond", cond
        elif self.scale == 0.0:
            self.mode, self.cache = "uncond", null
        else:
            self.mode, self.cache = "both", type(cond).cat([cond, null])

    @classmethod
    def build(cls, model, cond, null, scale: float, mode: str, cache) -> "GuidedEps":
        g = cls.__new__(cls)
        g.model, g.scale, g.mode, g.cache = model, scale, mode, cache
        return g

    def window(self, start: int, end: int) -> "GuidedEps":
        """The same guidance restricted to frames [start, end) (audio rows [2 start, 2 end))."""
        return GuidedEps.build(self.model, None, None, self.scale, self.mode,
                               self.cache.window(start, end))

    def __call__(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.mode != "both":
            return self.model(z, t, self.cache)
        # The denoisers (and torch.compile wrappers of them) take both branches as one call and
        # compute what the branches share once; any other model gets the batch of 2B. Through
        # the module's __call__ either way, so its hooks and an in-place compile apply.
        if getattr(self.model, "accepts_guided", False):
            eps = self.model(z, t, self.cache, guided=True)
        else:
            eps = self.model(torch.cat([z, z]), torch.cat([t, t]), self.cache)
        eps_cond, eps_uncond = eps.chunk(2)
        s = self.scale
        return s * eps_cond + (1.0 - s) * eps_uncond
