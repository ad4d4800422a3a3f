"""Flash-style attention forward in Triton, shared by region_attention and causal_cross_attention.

One program per (tile of BLOCK_M query rows, batch * head). Scores for one BLOCK_M x BLOCK_N tile
at a time, online softmax in base 2 (the scale is pre-multiplied by log2 e), fp32 accumulation;
no L x S matrix is ever formed. With CAUSAL, query row j sees key rows < min(S, 2 (j + 1 +
lookahead)) and the loop stops at the tile's last visible row, so masked tiles cost nothing.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from disenttalk_fast.backends import tf32_allowed

from .shared_memory import device_limit, launch_narrowing

BLOCK_M = 64
BLOCK_N = 64

# Shared memory of the fp32 program per (head_dim, keys per step), the largest of "ieee" and
# "tf32" products compiled for sm_80 / sm_86 / sm_90 (tf32 on sm_90 is the largest; half
# precision needs at most 41 KB). Pairs not listed are under 60 KB.
FP32_BYTES = {(64, 64): 114_688, (128, 64): 229_376, (128, 32): 131_072, (128, 16): 81_920}


@triton.jit
def _flash_fwd(q_ptr, k_ptr, v_ptr, o_ptr, L, S, H,
               sqb, sqr, sqh, skb, skr, skh, svb, svr, svh, sob, sor, soh,
               scale_log2, lookahead,
               CAUSAL: tl.constexpr, HD: tl.constexpr, DOT_PRECISION: tl.constexpr,
               BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < L
    dims = tl.arange(0, HD)
    rows64 = rows.to(tl.int64)

    q = tl.load(q_ptr + b * sqb + h * sqh + rows64[:, None] * sqr + dims[None, :],
                mask=row_ok[:, None], other=0.0)
    if CAUSAL:
        visible = tl.minimum(2 * (rows + 1 + lookahead), S)
        last = tl.minimum(pid_m * BLOCK_M + BLOCK_M, L) - 1
        horizon = tl.minimum(2 * (last + 1 + lookahead), S)
    else:
        visible = tl.full([BLOCK_M], S, tl.int32)
        horizon = S

    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, HD], tl.float32)
    k_base = k_ptr + b * skb + h * skh
    v_base = v_ptr + b * svb + h * svh
    for n0 in range(0, horizon, BLOCK_N):
        cols = n0 + tl.arange(0, BLOCK_N)
        col_ok = cols < horizon
        cols64 = cols.to(tl.int64)
        kt = tl.load(k_base + cols64[None, :] * skr + dims[:, None], mask=col_ok[None, :],
                     other=0.0)
        s = tl.dot(q, kt, input_precision=DOT_PRECISION) * scale_log2
        s = tl.where(cols[None, :] < visible[:, None], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        p = tl.math.exp2(s - m_new[:, None])
        alpha = tl.math.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 1)
        vt = tl.load(v_base + cols64[:, None] * svr + dims[None, :], mask=col_ok[:, None],
                     other=0.0)
        acc = acc * alpha[:, None] + tl.dot(p.to(vt.dtype), vt, input_precision=DOT_PRECISION)
        m_i = m_new
    out = acc / l_i[:, None]
    tl.store(o_ptr + b * sob + h * soh + rows64[:, None] * sor + dims[None, :],
             out.to(o_ptr.dtype.element_ty), mask=row_ok[:, None])


def dot_precision(dtype: torch.dtype) -> str | None:
    """The `input_precision` of the kernels' tl.dot for inputs of `dtype`.

    fp32 follows PyTorch's switch for fp32 matrix products, so the fused model computes what the
    reference computes under the same setting: exact fp32 products ("ieee", the default; ~6
    TFLOP/s in the attention on an H200) unless TF32 is allowed
    (`torch.set_float32_matmul_precision("high")` or `torch.backends.cuda.matmul.allow_tf32 =
    True`), then "tf32" on the tensor cores. Half-precision inputs use the tensor cores' native
    products (None = Triton's default). Read at launch; a captured CUDA graph keeps the choice it
    was captured with."""
    if dtype != torch.float32:
        return None
    return "tf32" if tf32_allowed() else "ieee"


def flash_block_n(dtype: torch.dtype, head_dim: int, limit: int | None) -> int:
    """Keys per step: 64, fewer where the fp32 tiles would not fit `limit` bytes of shared
    memory (None: no limit). fp32 at head_dim 128 takes 32 on an A100 and 16 on 99 KB cards,
    head_dim 64 takes 32 on those."""
    if dtype != torch.float32 or limit is None:
        return BLOCK_N
    block_n = BLOCK_N
    while block_n > 16 and FP32_BYTES.get((head_dim, block_n), 0) > limit:
        block_n //= 2
    return block_n


def flash_forward(q, k, v, out, *, B: int, L: int, S: int, H: int, head_dim: int,
                  q_strides, k_strides, v_strides, out_strides, causal: bool,
                  lookahead: int = 0) -> torch.Tensor:
    """Strides are (batch, row, head) in elements; the head_dim elements of a row are contiguous."""
    if B * L * H == 0:
        return out
    grid = (triton.cdiv(L, BLOCK_M), B * H)
    precision = dot_precision(q.dtype)

    def launch_with(block_n: int) -> None:
        _flash_fwd[grid](q, k, v, out, L, S, H, *q_strides, *k_strides, *v_strides,
                         *out_strides, math.log2(math.e) / math.sqrt(head_dim), lookahead,
                         CAUSAL=causal, HD=head_dim, DOT_PRECISION=precision, BLOCK_M=BLOCK_M,
                         BLOCK_N=block_n)

    # tl.dot needs 16 keys at least.
    launch_narrowing("attention", (str(q.device), q.dtype, head_dim, precision),
                     flash_block_n(q.dtype, head_dim, device_limit(q.device)), 16, launch_with)
    return out
