"""Region-grouped self-attention over time (paper Eq. 4, before the fusion matrix W_f).

The hidden state's channels are split into contiguous region groups (lip, eye, global, in the
order the weights are given). Each region has its own QKV projection — together a block-diagonal
projection of the whole hidden state — and its heads attend over all frames of that region's
channels only, with rotary position embeddings on the time axis.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F

from disenttalk_fast._torch import torch


def rotary_tables(length: int, head_dim: int, base: float, device, dtype=torch.float32):
    """cos, sin of shape (L, head_dim) for the rotate-half (GPT-NeoX) convention."""
    half = head_dim // 2
    inv_freq = base ** (-torch.arange(half, device=device, dtype=torch.float32) * 2.0 / head_dim)
    angles = torch.arange(length, device=device, dtype=torch.float32)[:, None] * inv_freq[None]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: (..., L, head_dim); rotates pairs (i, i + head_dim/2) by position-dependent angles."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def region_attention(x: torch.Tensor, weights: Sequence[torch.Tensor],
                     biases: Sequence[torch.Tensor], head_dim: int,
                     rope_base: float = 10000.0) -> torch.Tensor:
    """Block-diagonal QKV projection + rotary + full (non-causal) attention per (region, head).

    x: (B, L, d), d = sum of the regions' widths d_r.
    weights[r]: (3 * d_r, d_r), rows ordered [q; k; v]; biases[r]: (3 * d_r,).
    d_r must be a multiple of head_dim (region r has d_r / head_dim heads).
    Returns (B, L, d): per region, its heads' outputs side by side, regions in the given order.
    """
    B, L, _ = x.shape
    cos, sin = rotary_tables(L, head_dim, rope_base, x.device, torch.float32)
    outs, start = [], 0
    for w, b in zip(weights, biases):
        d_r = w.shape[1]
        heads = d_r // head_dim
        qkv = F.linear(x[..., start:start + d_r], w, b)             # (B, L, 3 d_r)
        q, k, v = qkv.view(B, L, 3, heads, head_dim).permute(2, 0, 3, 1, 4)  # (B, H, L, hd) each
        q = apply_rotary(q.float(), cos, sin).to(x.dtype)
        k = apply_rotary(k.float(), cos, sin).to(x.dtype)
        o = F.scaled_dot_product_attention(q, k, v)                 # (B, H, L, hd)
        outs.append(o.transpose(1, 2).reshape(B, L, d_r))
        start += d_r
    return torch.cat(outs, dim=-1)
