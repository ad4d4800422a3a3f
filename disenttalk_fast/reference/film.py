"""FiLM conditioning fused with the residual add (paper Eq. 7)."""

from __future__ import annotations

from disenttalk_fast._torch import torch


def film(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
         residual: torch.Tensor | None = None) -> torch.Tensor:
    """`residual + gamma * x + beta` with per-sample gamma, beta broadcast over time.

    x, residual: (B, L, C); gamma, beta: (B, C). Returns (B, L, C) in x's dtype.
    """
    out = torch.addcmul(beta.unsqueeze(1), gamma.unsqueeze(1), x)
    return out if residual is None else residual + out
