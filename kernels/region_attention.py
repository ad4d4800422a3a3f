"""Region attention in Triton: per region, one kernel for the QKV projection + bias + rotary
into a (3, B, H, L, head_dim) buffer, then the shared flash kernel over (B, H).

The rotary inverse frequencies come in as a tensor computed exactly like
reference.rotary_tables (the angle of position l is l * inv_freq in fp32), so both sides rotate
by the same angles.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .flash_attention import dot_precision, flash_forward
from .shared_memory import launch

BLOCK_ROWS = 32
BLOCK_K = 32


@triton.jit
def _project_rotary(x_ptr, w_ptr, b_ptr, inv_freq_ptr, ws_ptr, M, L, d, width, offset,
                    first_head, H, B,
                    HD: tl.constexpr, DOT_PRECISION: tl.constexpr,
                    BLOCK_ROWS: tl.constexpr, BLOCK_K: tl.constexpr):
    # Program (row tile, head of this region, q/k/v): columns j and j + HD/2 of the head are the
    # rotary pair, so they are computed as two (rows x HD/2) products side by side.
    HALF: tl.constexpr = HD // 2
    rows = tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    head = tl.program_id(1)
    which = tl.program_id(2)  # 0 q, 1 k, 2 v
    row_ok = rows < M
    rows64 = rows.to(tl.int64)
    j = tl.arange(0, HALF)
    n1 = which * width + head * HD + j
    n2 = n1 + HALF
    acc1 = tl.zeros([BLOCK_ROWS, HALF], tl.float32)
    acc2 = tl.zeros([BLOCK_ROWS, HALF], tl.float32)
    for k0 in range(0, width, BLOCK_K):
        ks = k0 + tl.arange(0, BLOCK_K)
        k_ok = ks < width
        xt = tl.load(x_ptr + rows64[:, None] * d + offset + ks[None, :],
                     mask=row_ok[:, None] & k_ok[None, :], other=0.0)
        w1 = tl.load(w_ptr + n1[None, :] * width + ks[:, None], mask=k_ok[:, None], other=0.0)
        w2 = tl.load(w_ptr + n2[None, :] * width + ks[:, None], mask=k_ok[:, None], other=0.0)
        acc1 += tl.dot(xt, w1, input_precision=DOT_PRECISION)
        acc2 += tl.dot(xt, w2, input_precision=DOT_PRECISION)
    acc1 += tl.load(b_ptr + n1).to(tl.float32)[None, :]
    acc2 += tl.load(b_ptr + n2).to(tl.float32)[None, :]

    pos = rows % L
    angle = pos.to(tl.float32)[:, None] * tl.load(inv_freq_ptr + j)[None, :]
    cos = tl.cos(angle)
    sin = tl.sin(angle)
    rotate = which < 2  # q and k are rotated, v is not
    out1 = tl.where(rotate, acc1 * cos - acc2 * sin, acc1)
    out2 = tl.where(rotate, acc2 * cos + acc1 * sin, acc2)

    b = (rows // L).to(tl.int64)
    g = (first_head + head).to(tl.int64)
    base = (((which * B + b) * H + g) * L + pos) * HD
    dst = ws_ptr + base[:, None] + j[None, :]
    ty = ws_ptr.dtype.element_ty
    tl.store(dst, out1.to(ty), mask=row_ok[:, None])
    tl.store(dst + HALF, out2.to(ty), mask=row_ok[:, None])


def region_attention_forward(x: torch.Tensor, weights, biases, head_dim: int,
                             inv_freq: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """x, out: contiguous (B, L, d); weights[r] (3 d_r, d_r), biases[r] contiguous; head_dim a
    power of two >= 32; inv_freq: (head_dim / 2,) fp32 on x's device."""
    B, L, d = x.shape
    H = d // head_dim
    if B * L * d == 0:
        return out
    # q, k, v in x's dtype, as the reference keeps them (it casts back after the rotary).
    ws = torch.empty((3, B, H, L, head_dim), dtype=x.dtype, device=x.device)
    M = B * L
    offset = 0
    for w, bias in zip(weights, biases):
        width = w.shape[1]
        grid = (triton.cdiv(M, BLOCK_ROWS), width // head_dim, 3)
        launch(_project_rotary, grid, "region_attention", x, w, bias, inv_freq, ws, M, L, d,
               width, offset, offset // head_dim, H, B, HD=head_dim,
               DOT_PRECISION=dot_precision(x.dtype), BLOCK_ROWS=BLOCK_ROWS, BLOCK_K=BLOCK_K)
        offset += width
    qkv_strides = (H * L * head_dim, head_dim, L * head_dim)
    return flash_forward(ws[0], ws[1], ws[2], out, B=B, L=L, S=L, H=H, head_dim=head_dim,
                         q_strides=qkv_strides, k_strides=qkv_strides, v_strides=qkv_strides,
                         out_strides=(L * d, d, head_dim), causal=False)
