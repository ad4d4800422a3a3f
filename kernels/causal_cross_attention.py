"""Causal cross-attention (frames -> audio rows, 2:1 mask with lookahead) in Triton: the shared
flash kernel with CAUSAL on, reading q (B, L, H, D) and k, v (B, S, H, D) in place."""

from __future__ import annotations

import torch

from .flash_attention import flash_forward


def causal_cross_attention_forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                   lookahead: int, out: torch.Tensor) -> torch.Tensor:
    """q, out: contiguous (B, L, H, D); k, v: contiguous (B, S, H, D); D a power of two >= 16."""
    B, L, H, D = q.shape
    S = k.shape[1]
    rows_q, rows_k = (L * H * D, H * D, D), (S * H * D, H * D, D)
    return flash_forward(q, k, v, out, B=B, L=L, S=S, H=H, head_dim=D, q_strides=rows_q,
                         k_strides=rows_k, v_strides=rows_k, out_strides=rows_q, causal=True,
                         lookahead=lookahead)
