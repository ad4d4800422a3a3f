"""Audio encoder: features at 50 Hz (B, S, audio_dim) -> hidden rows (B, S, d_model).

A linear projection followed by `audio_layers` light temporal layers (pre-norm residual causal
depthwise conv -> GELU -> pointwise). The conv is CAUSAL over rows so that the encoded row r
depends only on feature rows <= r: together with the frame-to-row mask of the cross-attention,
no motion frame ever sees audio beyond its horizon, and a cache computed from a long file equals
one computed from a window of it given `receptive_field` rows of left context.

This runs once per generation (never per diffusion step), so it is plain PyTorch.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from disenttalk_fast._torch import torch


class CausalTemporalLayer(nn.Module):
    def __init__(self, dim: int, kernel: int):
        super().__init__()
        self.kernel = kernel
        self.norm = nn.LayerNorm(dim)
        self.dw = nn.Conv1d(dim, dim, kernel, groups=dim)
        self.pw = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(x).transpose(1, 2)                       # (B, d, S)
        y = self.dw(F.pad(y, (self.kernel - 1, 0)))            # left padding only: causal
        return x + self.pw(F.gelu(y.transpose(1, 2)))


class AudioEncoder(nn.Module):
    def __init__(self, audio_dim: int, dim: int, layers: int = 1, kernel: int = 3):
        super().__init__()
        self.proj = nn.Linear(audio_dim, dim)
        self.layers = nn.ModuleList(CausalTemporalLayer(dim, kernel) for _ in range(layers))
        # Rows of left context that influence one output row (beyond the row itself).
        self.receptive_field = layers * (kernel - 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        h = self.proj(features)
        for layer in self.layers:
            h = layer(h)
        return h
