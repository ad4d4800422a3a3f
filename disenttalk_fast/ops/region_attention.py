"""`region_attention`: block-diagonal QKV + rotary + attention per (region, head).

The compiled kernels are registered as `torch.ops.disenttalk_fast.region_attention` (C++ on CPU
tensors, CUDA on CUDA tensors) and `torch.ops.disenttalk_fast.region_attention_triton`, each with
a fake implementation, so `torch.compile(fullgraph=True)` and CUDA graphs see one opaque op. The
per-region weights travel as `list[Tensor]` arguments of the custom op.

The kernels are forward-only. Their backward recomputes the op with the reference under autograd
(correct, not fast), so a model built on them still trains.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from disenttalk_fast import _bridge, _native, backends, reference
from disenttalk_fast._checks import is_int, is_real
from disenttalk_fast._torch import torch
from disenttalk_fast.ops import _eager

_OP = "region_attention"
# Head dims each backend is compiled / written for. Triton computes each rotary half with a
# matrix product, which needs head_dim / 2 >= 16.
HEAD_DIMS = {"cpu": (16, 32, 64, 128), "cuda": (16, 32, 64, 128), "triton": (32, 64, 128)}


def region_attention(x: torch.Tensor, weights: Sequence[torch.Tensor],
                     biases: Sequence[torch.Tensor], head_dim: int, rope_base: float = 10000.0,
                     *, backend: str = "auto") -> torch.Tensor:
    """See `disenttalk_fast.reference.region_attention` for the exact semantics.

    x: (B, L, d); weights[r]: (3 d_r, d_r); biases[r]: (3 d_r,); returns a new (B, L, d) tensor.
    `backend`: "auto" | "reference" | "cpu" | "cuda" | "triton".
    """
    weights, biases, head_dim, rope_base = _check(x, weights, biases, head_dim, rope_base)
    which = backends.resolve(backend, x.device, x.dtype)
    if which == "reference":
        return reference.region_attention(x, weights, biases, head_dim, rope_base)
    _bridge.check_dtype_supported(_OP, which, x)
    if head_dim not in HEAD_DIMS[which]:
        raise _bridge.OpInputError(
            f"{_OP}: backend '{which}' supports head_dim {', '.join(map(str, HEAD_DIMS[which]))}; "
            f"got {head_dim} (use backend='reference')")
    args = (x, weights, biases, head_dim, rope_base)
    if _eager.direct_call_ok(x, *weights, *biases):  # same kernel, minus the dispatcher
        impl = {"cpu": _region_attention_cpu, "cuda": _region_attention_cuda,
                "triton": _region_attention_triton_impl}[which]
        return impl(*args)
    if which == "triton":
        return torch.ops.disenttalk_fast.region_attention_triton(*args)
    return torch.ops.disenttalk_fast.region_attention(*args)


def _check(x, weights, biases, head_dim, rope_base):
    """Validate for every backend, the reference included; returns (weights, biases, head_dim,
    rope_base) as lists, int and float."""
    _bridge.check_tensor(_OP, "x", x, ndim=3)
    if not x.is_floating_point():  # else the reference fails deep inside F.linear
        raise _bridge.OpInputError(f"{_OP}: x must be a floating-point tensor, got {x.dtype}")
    weights, biases = _per_region("weights", weights), _per_region("biases", biases)
    if len(weights) != len(biases) or not weights:
        raise _bridge.OpInputError(f"{_OP}: need one bias per weight and at least one region, "
                                   f"got {len(weights)} weights and {len(biases)} biases")
    # The reference reshapes by head_dim, so a float one (16.0) works only where int() is taken.
    if not is_int(head_dim):
        raise _bridge.OpInputError(f"{_OP}: head_dim must be an int, got {head_dim!r}")
    head_dim = int(head_dim)
    if head_dim < 2 or head_dim % 2:
        raise _bridge.OpInputError(f"{_OP}: head_dim must be even for rotary, got {head_dim}")
    # The rotary frequencies base ** (-2i / head_dim) need a finite base > 0 (0, < 0 and NaN
    # give NaN outputs on every backend).
    if not is_real(rope_base) or not (math.isfinite(rope_base) and rope_base > 0):
        raise _bridge.OpInputError(f"{_OP}: rope_base must be a finite number > 0, "
                                   f"got {rope_base!r}")
    total = 0
    for i, (w, b) in enumerate(zip(weights, biases)):
        _bridge.check_tensor(_OP, f"weights[{i}]", w, ndim=2, dtype=x.dtype, device=x.device)
        d_r = w.shape[1]
        _bridge.check_tensor(_OP, f"weights[{i}]", w, shape=(3 * d_r, d_r))
        _bridge.check_tensor(_OP, f"biases[{i}]", b, ndim=1, shape=(3 * d_r,), dtype=x.dtype,
                             device=x.device)
        if d_r % head_dim:
            raise _bridge.OpInputError(f"{_OP}: region {i} width {d_r} is not a multiple of "
                                       f"head_dim {head_dim}")
        total += d_r
    if total != x.shape[-1]:
        raise _bridge.OpInputError(f"{_OP}: regions cover {total} channels but x has "
                                   f"{x.shape[-1]}")
    return weights, biases, head_dim, float(rope_base)


def _per_region(name, tensors) -> list:
    # One tensor per region. A single stacked tensor is not that: iterating it would split it
    # into rows (and `not tensor` raises).
    if isinstance(tensors, torch.Tensor) or not isinstance(tensors, Iterable):
        raise _bridge.OpInputError(f"{_OP}: {name} must be a list of tensors, one per region, "
                                   f"got {type(tensors).__name__}")
    return list(tensors)


def _contiguous(x, weights, biases):
    return x.contiguous(), [w.contiguous() for w in weights], [b.contiguous() for b in biases]


# --- compiled kernels: C++ (CPU) and CUDA behind one op -------------------------------------

def _region_attention_cpu(x: torch.Tensor, weights: list[torch.Tensor],
                          biases: list[torch.Tensor], head_dim: int,
                          rope_base: float) -> torch.Tensor:
    lib = _native.require_cpu()
    x, weights, biases = _contiguous(x, weights, biases)
    out = torch.empty_like(x)
    B, L, _ = x.shape
    lib.region_attention_forward_cpu(
        _bridge.addr(x), [_bridge.addr(w) for w in weights], [_bridge.addr(b) for b in biases],
        [w.shape[1] for w in weights], _bridge.addr(out), B, L, head_dim, rope_base,
        _bridge.num_threads())
    return out


def _region_attention_cuda(x, weights, biases, head_dim, rope_base):
    lib = _native.require_cuda()
    x, weights, biases = _contiguous(x, weights, biases)
    out = torch.empty_like(x)
    B, L, d = x.shape
    # Projected q, k, v (fp32) between the two launches; from PyTorch's allocator so CUDA-graph
    # capture owns it.
    workspace = torch.empty(3 * B * L * d, dtype=torch.float32, device=x.device)
    with torch.cuda.device(x.device):
        splits, partial = _bridge.attention_split(lib, B, d // head_dim, L, L, head_dim,
                                                  x.device)
        lib.region_attention_forward_cuda(
            _bridge.addr(x), [_bridge.addr(w) for w in weights],
            [_bridge.addr(b) for b in biases], [w.shape[1] for w in weights],
            _bridge.addr(workspace), splits, _bridge.addr(partial), _bridge.addr(out), B, L,
            head_dim, rope_base, _bridge.DTYPE_CODES[x.dtype], _bridge.cuda_stream(x.device))
    return out


# --- Triton ---------------------------------------------------------------------------------

def _region_attention_triton_impl(x: torch.Tensor, weights: list[torch.Tensor],
                                  biases: list[torch.Tensor], head_dim: int,
                                  rope_base: float) -> torch.Tensor:
    from disenttalk_fast._triton import region_attention as kernel  # imports triton when used

    x, weights, biases = _contiguous(x, weights, biases)
    out = torch.empty_like(x)
    half = torch.arange(head_dim // 2, device=x.device, dtype=torch.float32)
    inv_freq = rope_base ** (-half * 2.0 / head_dim)  # exactly as reference.rotary_tables
    if x.is_cuda:
        with torch.cuda.device(x.device):
            return kernel.region_attention_forward(x, weights, biases, head_dim, inv_freq, out)
    return kernel.region_attention_forward(x, weights, biases, head_dim, inv_freq, out)


_region_attention_compiled = torch.library.custom_op(
    "disenttalk_fast::region_attention", _region_attention_cpu, mutates_args=())
_region_attention_compiled.register_kernel("cuda")(_region_attention_cuda)
_region_attention_triton = torch.library.custom_op(
    "disenttalk_fast::region_attention_triton", _region_attention_triton_impl, mutates_args=())


# --- shared fake implementation and autograd ------------------------------------------------

def _fake(x, weights, biases, head_dim, rope_base):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def _setup_context(ctx, inputs, output):
    x, weights, biases, head_dim, rope_base = inputs
    ctx.save_for_backward(x, *weights, *biases)
    ctx.regions = len(weights)
    ctx.head_dim, ctx.rope_base = head_dim, rope_base


def _backward(ctx, grad):
    # Recompute through the reference: the fused kernels do not save what a fused backward
    # would need, and training speed is not what they are for.
    saved = ctx.saved_tensors
    n = ctx.regions
    with torch.enable_grad():
        inputs = [t.detach().requires_grad_() for t in saved]
        x, weights, biases = inputs[0], inputs[1:1 + n], inputs[1 + n:]
        out = reference.region_attention(x, weights, biases, ctx.head_dim, ctx.rope_base)
        grads = torch.autograd.grad(out, inputs, grad)
    return grads[0], list(grads[1:1 + n]), list(grads[1 + n:]), None, None


for _op in (_region_attention_compiled, _region_attention_triton):
    _op.register_fake(_fake)
    _op.register_autograd(_backward, setup_context=_setup_context)
