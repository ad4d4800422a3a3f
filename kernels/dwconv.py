"""Depthwise temporal convolutions as Triton kernels (channels-last (B, L, C), "same" padding).

multi_dilation_dwconv: one program owns BLOCK_L time steps of one sample and BLOCK_N output
channels (all of them when Cout <= 256, 128 in fp32, unless that would leave SMs idle; fewer
where a GPU's shared memory is smaller, see mdd_blocks). It walks the input
channels in BLOCK_K chunks; per chunk it loads the tile once plus its shifted copies (t - d,
t + d: the halo rows come from L1/L2, not DRAM), forms each dilation's depthwise output in
registers and feeds it straight into a tl.dot with the matching slice of the pointwise weight.
The (B, L, n*C) concatenation never exists.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .flash_attention import dot_precision
from .shared_memory import device_limit, launch_narrowing


@triton.jit
def _dilated_branch(acc, xb, x_mid, t, c, cmask, dww_ptr, dwb_ptr, pww_ptr, o, omask, L, C, K,
                    i: tl.constexpr, d, DOT_FP32: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """acc += dwconv_d(x)[t, c] @ pw_weight[o, i*C + c]^T for one dilation `d` (branch `i`)."""
    w0 = tl.load(dww_ptr + (i * C + c) * 3 + 0, mask=cmask, other=0.0).to(tl.float32)
    w1 = tl.load(dww_ptr + (i * C + c) * 3 + 1, mask=cmask, other=0.0).to(tl.float32)
    w2 = tl.load(dww_ptr + (i * C + c) * 3 + 2, mask=cmask, other=0.0).to(tl.float32)
    bias = tl.load(dwb_ptr + i * C + c, mask=cmask, other=0.0).to(tl.float32)
    tl_ = t - d
    tr = t + d
    x_left = tl.load(xb + tl_[:, None] * C + c[None, :],
                     mask=((tl_ >= 0) & (tl_ < L))[:, None] & cmask[None, :], other=0.0)
    x_right = tl.load(xb + tr[:, None] * C + c[None, :],
                      mask=((tr >= 0) & (tr < L))[:, None] & cmask[None, :], other=0.0)
    dw = (bias[None, :] + w0[None, :] * x_left.to(tl.float32) + w1[None, :] * x_mid
          + w2[None, :] * x_right.to(tl.float32))
    # (BLOCK_K, BLOCK_N) slice of pw_weight^T; zero past C and Cout so padded lanes add nothing.
    wt = tl.load(pww_ptr + o[None, :].to(tl.int64) * K + (i * C + c)[:, None],
                 mask=cmask[:, None] & omask[None, :], other=0.0)
    if DOT_FP32:
        acc += tl.dot(dw, wt.to(tl.float32), input_precision=DOT_PRECISION)
    else:
        acc += tl.dot(dw.to(wt.dtype), wt)
    return acc


@triton.jit
def _mdd_fwd(x_ptr, dww_ptr, dwb_ptr, pww_ptr, pwb_ptr, o_ptr, L, C, Cout, D0, D1, D2, D3,
             N_DIL: tl.constexpr, HAS_BIAS: tl.constexpr, DOT_FP32: tl.constexpr,
             DOT_PRECISION: tl.constexpr,
             BLOCK_L: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_N: tl.constexpr):
    t = tl.program_id(0) * BLOCK_L + tl.arange(0, BLOCK_L)
    o = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    b = tl.program_id(2).to(tl.int64)
    tmask, omask = t < L, o < Cout
    K = N_DIL * C
    xb = x_ptr + b * L * C
    acc = tl.zeros((BLOCK_L, BLOCK_N), dtype=tl.float32)
    for c0 in range(0, C, BLOCK_K):
        c = c0 + tl.arange(0, BLOCK_K)
        cmask = c < C
        x_mid = tl.load(xb + t[:, None] * C + c[None, :], mask=tmask[:, None] & cmask[None, :],
                        other=0.0).to(tl.float32)
        acc = _dilated_branch(acc, xb, x_mid, t, c, cmask, dww_ptr, dwb_ptr, pww_ptr, o, omask,
                              L, C, K, 0, D0, DOT_FP32, DOT_PRECISION)
        if N_DIL > 1:
            acc = _dilated_branch(acc, xb, x_mid, t, c, cmask, dww_ptr, dwb_ptr, pww_ptr, o,
                                  omask, L, C, K, 1, D1, DOT_FP32, DOT_PRECISION)
        if N_DIL > 2:
            acc = _dilated_branch(acc, xb, x_mid, t, c, cmask, dww_ptr, dwb_ptr, pww_ptr, o,
                                  omask, L, C, K, 2, D2, DOT_FP32, DOT_PRECISION)
        if N_DIL > 3:
            acc = _dilated_branch(acc, xb, x_mid, t, c, cmask, dww_ptr, dwb_ptr, pww_ptr, o,
                                  omask, L, C, K, 3, D3, DOT_FP32, DOT_PRECISION)
    if HAS_BIAS:
        acc += tl.load(pwb_ptr + o, mask=omask, other=0.0).to(tl.float32)[None, :]
    offs = (b * L + t[:, None]) * Cout + o[None, :]
    tl.store(o_ptr + offs, acc.to(o_ptr.dtype.element_ty), mask=tmask[:, None] & omask[None, :])


def mdd_blocks(B: int, L: int, Cout: int, element_size: int, sms: int,
               limit: int | None = None, n_dil: int = 3) -> tuple[int, int, int]:
    """(BLOCK_L, BLOCK_K, BLOCK_N) for a GPU with `sms` multiprocessors (0: the interpreter) and
    `limit` bytes of shared memory per block (None: no limit), for `n_dil` dilations.

    tl.dot needs every block dim >= 16. On the GPU one program covers up to 256 output channels
    (128 in fp32) so the input tile is read once; the interpreter gets small blocks (it is
    slow). Each pipeline stage holds BLOCK_K x BLOCK_N pointwise weights per dilation: fp32
    programs compile to `mdd_fp32_bytes(BLOCK_N, n_dil)`; with three dilations 256 fp32 channels
    would be 261,120 bytes, over an H200's 232,448 (refused there at launch, 2026-11-26), so fp32
    starts at 128, and narrows to 32 on 99 KB cards. Half-precision programs need 16 KB at 256."""
    if not sms:
        return 16, 16, min(max(16, triton.next_power_of_2(Cout)), 32)
    block_l, block_k = 32, 32
    block_n = min(max(16, triton.next_power_of_2(Cout)), 512 // element_size)
    # Short sequences: narrower programs (the tile re-read from L2) rather than idle SMs.
    while block_n > 64 and triton.cdiv(L, block_l) * B * triton.cdiv(Cout, block_n) < sms:
        block_n //= 2
    while (element_size == 4 and limit is not None and block_n > 16
           and mdd_fp32_bytes(block_n, n_dil) > limit):
        block_n //= 2
    return block_l, block_k, block_n


def mdd_fp32_bytes(block_n: int, n_dil: int = 3) -> int:
    """Shared memory of the fp32 program with 32 x 32 tiles, fitted exactly to compiles for
    sm_80 / sm_86 / sm_90 ("ieee" products; "tf32" needs 4 KB less): with three dilations
    162,816 / 113,664 / 89,088 bytes at 128 / 64 / 32 channels; one, two and four dilations at
    32 and 128 channels fit the same formula."""
    return 12_288 + n_dil * (17_408 + 256 * block_n)


def mdd_num_warps(block_n: int) -> int:
    return 8 if block_n >= 128 else 4


def multi_dilation_dwconv_forward(x: torch.Tensor, dw_weight: torch.Tensor,
                                  dw_bias: torch.Tensor, pw_weight: torch.Tensor,
                                  pw_bias: torch.Tensor | None, dilations: list[int],
                                  out: torch.Tensor) -> torch.Tensor:
    """All tensors contiguous; 1 to 4 dilations. Writes and returns out (B, L, Cout)."""
    B, L, C = x.shape
    Cout = pw_weight.shape[0]
    if B * L * Cout == 0:
        return out
    if C == 0:
        return out.copy_((pw_bias if pw_bias is not None else out.new_zeros(Cout)).expand_as(out))
    dil = list(dilations) + [1] * (4 - len(dilations))
    sms = torch.cuda.get_device_properties(x.device).multi_processor_count if x.is_cuda else 0
    block_l, block_k, block_n = mdd_blocks(B, L, Cout, x.element_size(), sms,
                                           device_limit(x.device), len(dilations))

    def launch_with(block_n: int) -> None:
        grid = (triton.cdiv(L, block_l), triton.cdiv(Cout, block_n), B)
        _mdd_fwd[grid](x, dw_weight, dw_bias, pw_weight,
                       pw_bias if pw_bias is not None else x, out,
                       L, C, Cout, dil[0], dil[1], dil[2], dil[3], N_DIL=len(dilations),
                       HAS_BIAS=pw_bias is not None, DOT_FP32=x.dtype == torch.float32,
                       DOT_PRECISION=dot_precision(x.dtype),
                       BLOCK_L=block_l, BLOCK_K=block_k, BLOCK_N=block_n,
                       num_warps=mdd_num_warps(block_n))

    launch_narrowing("multi_dilation_dwconv", (str(x.device), x.dtype, len(dilations)), block_n,
                     16, launch_with)
    return out


@triton.jit
def _local_fwd(x_ptr, w_ptr, b_ptr, o_ptr, L, C, KSIZE: tl.constexpr, HAS_BIAS: tl.constexpr,
               BLOCK_L: tl.constexpr, BLOCK_C: tl.constexpr):
    t = tl.program_id(0) * BLOCK_L + tl.arange(0, BLOCK_L)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    b = tl.program_id(2).to(tl.int64)
    cmask = c < C
    xb = x_ptr + b * L * C
    acc = tl.zeros((BLOCK_L, BLOCK_C), dtype=tl.float32)
    if HAS_BIAS:
        acc += tl.load(b_ptr + c, mask=cmask, other=0.0).to(tl.float32)[None, :]
    for j in tl.static_range(KSIZE):
        tt = t + (j - KSIZE // 2)
        xv = tl.load(xb + tt[:, None] * C + c[None, :],
                     mask=((tt >= 0) & (tt < L))[:, None] & cmask[None, :], other=0.0)
        w = tl.load(w_ptr + c * KSIZE + j, mask=cmask, other=0.0).to(tl.float32)
        acc += w[None, :] * xv.to(tl.float32)
    offs = (b * L + t[:, None]) * C + c[None, :]
    tl.store(o_ptr + offs, acc.to(o_ptr.dtype.element_ty),
             mask=(t < L)[:, None] & cmask[None, :])


def local_dwconv_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                         out: torch.Tensor) -> torch.Tensor:
    """x, out: contiguous (B, L, C); weight: contiguous (C, k), k odd; bias: (C,) or None."""
    B, L, C = x.shape
    if B * L * C == 0:
        return out
    block_c = min(triton.next_power_of_2(C), 128)
    block_l = max(1, 4096 // block_c) if x.is_cuda else 8
    grid = (triton.cdiv(L, block_l), triton.cdiv(C, block_c), B)
    _local_fwd[grid](x, weight, bias if bias is not None else x, out, L, C,
                     KSIZE=weight.shape[1], HAS_BIAS=bias is not None,
                     BLOCK_L=block_l, BLOCK_C=block_c)
    return out
