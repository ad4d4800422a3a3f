"""Timestep embedding: a sinusoidal code of the integer diffusion step, then an MLP.

Its output feeds every block's FiLM projection (paper Eq. 7: gamma(t), beta(t)).
"""

from __future__ import annotations

import math

from torch import nn

from disenttalk_fast._torch import torch


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """(B,) integer (or real) timesteps -> (B, dim) float32 [cos | sin] features.

    Frequencies run geometrically from 1 to 1/max_period, as in the transformer position code;
    an odd `dim` gets one zero column so the width is always `dim`.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period)
                      * torch.arange(half, device=t.device, dtype=torch.float32) / max(half, 1))
    angles = t.to(torch.float32)[:, None] * freqs[None]
    emb = torch.cat([angles.cos(), angles.sin()], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, emb.new_zeros(emb.shape[0], 1)], dim=-1)
    return emb


class TimestepEmbedding(nn.Module):
    """t (B,) -> (B, dim): sinusoidal code -> Linear -> SiLU -> Linear."""

    def __init__(self, dim: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or 4 * dim
        self.dim = dim
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        code = sinusoidal_embedding(t, self.dim).to(self.fc1.weight.dtype)
        return self.fc2(torch.nn.functional.silu(self.fc1(code)))
