"""FiLM conditioning fused with the residual add (paper Eq. 7), optionally followed by the next
block's (region-grouped) LayerNorm."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F

from disenttalk_fast._torch import torch


def film(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
         residual: torch.Tensor | None = None) -> torch.Tensor:
    """`residual + gamma * x + beta` with per-sample gamma, beta broadcast over time.

    x, residual: (B, L, C); gamma, beta: (B, C). Returns (B, L, C) in x's dtype.
    """
    out = torch.addcmul(beta.unsqueeze(1), gamma.unsqueeze(1), x)
    return out if residual is None else residual + out


def group_layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float,
                     groups: Sequence[int] | None = None) -> torch.Tensor:
    """LayerNorm over the last dim, taken separately over consecutive channel groups of the given
    widths (None: one group of all channels), with one affine (weight, bias) over all channels.
    This is the model's RegionLayerNorm (per-region pre-norm)."""
    C = x.shape[-1]
    widths = list(groups) if groups is not None else [C]
    parts = torch.split(x, widths, dim=-1)
    w_parts, b_parts = torch.split(weight, widths), torch.split(bias, widths)
    return torch.cat([F.layer_norm(p, (p.shape[-1],), w, b, eps)
                      for p, w, b in zip(parts, w_parts, b_parts)], dim=-1)


def film_norm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
              residual: torch.Tensor | None, norm_weight: torch.Tensor, norm_bias: torch.Tensor,
              eps: float = 1e-5, groups: Sequence[int] | None = None):
    """FiLM + residual, then the next block's pre-norm of the result.

    Returns (out, normed): out = `film(x, gamma, beta, residual)` (the new residual stream) and
    normed = `group_layer_norm(out, norm_weight, norm_bias, eps, groups)`, both (B, L, C).
    """
    out = film(x, gamma, beta, residual)
    return out, group_layer_norm(out, norm_weight, norm_bias, eps, groups)
