"""`multi_dilation_dwconv` and `local_dwconv`: the depthwise temporal convolutions.

The compiled kernels are registered as `torch.ops.disenttalk_fast.multi_dilation_dwconv` and
`.local_dwconv` (C++ on CPU tensors, CUDA on CUDA tensors) and as `*_triton` ops, each with a
fake implementation and an autograd formula, following `ops/film.py`.

Backward: the formulas in `_dwconv_grads` are plain PyTorch ops (the pointwise part is two GEMMs,
which cuBLAS/MKL already do well; the depthwise part is a transposed depthwise conv). They run on
every device and dtype, so training works with any backend; the forward is the fused kernel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from disenttalk_fast import _bridge, _native, backends, reference
from disenttalk_fast._checks import is_int
from disenttalk_fast._torch import torch
from disenttalk_fast.ops import _dwconv_grads as grads
from disenttalk_fast.ops import _eager

MAX_DILATIONS = 4  # mirrors dt::kMaxDilations in csrc/dwconv.h
MAX_DILATION = 64  # the CUDA kernel's shared-memory halo budget


def multi_dilation_dwconv(x: torch.Tensor, dw_weight: torch.Tensor, dw_bias: torch.Tensor,
                          pw_weight: torch.Tensor, pw_bias: torch.Tensor | None,
                          dilations: Sequence[int] = reference.dwconv.DILATIONS,
                          *, backend: str = "auto") -> torch.Tensor:
    """See `disenttalk_fast.reference.multi_dilation_dwconv` for the exact semantics.

    x: (B, L, C); dw_weight: (n, C, 3); dw_bias: (n, C); pw_weight: (C_out, n*C);
    pw_bias: (C_out,) or None; dilations: one or more positive ints. Returns (B, L, C_out).
    The fused backends take 1 to 4 dilations, each in [1, 64].
    """
    op = "multi_dilation_dwconv"
    _bridge.check_tensor(op, "x", x, ndim=3)
    dilations = _check_dilations(op, dilations)
    C, n = x.shape[-1], len(dilations)
    _bridge.check_tensor(op, "dw_weight", dw_weight, ndim=3, shape=(n, C, 3), dtype=x.dtype,
                         device=x.device)
    _bridge.check_tensor(op, "dw_bias", dw_bias, ndim=2, shape=(n, C), dtype=x.dtype,
                         device=x.device)
    _bridge.check_tensor(op, "pw_weight", pw_weight, ndim=2, shape=(None, n * C), dtype=x.dtype,
                         device=x.device)
    if pw_bias is not None:
        _bridge.check_tensor(op, "pw_bias", pw_bias, ndim=1, shape=(pw_weight.shape[0],),
                             dtype=x.dtype, device=x.device)
    which = backends.resolve(backend, x.device, x.dtype)
    if which == "reference":
        return reference.multi_dilation_dwconv(x, dw_weight, dw_bias, pw_weight, pw_bias,
                                               dilations)
    _bridge.check_dtype_supported(op, which, x)
    if not 1 <= n <= MAX_DILATIONS or not all(1 <= d <= MAX_DILATION for d in dilations):
        raise _bridge.OpInputError(
            f"{op}: backend '{which}' takes 1 to {MAX_DILATIONS} dilations in "
            f"[1, {MAX_DILATION}], got {tuple(dilations)}")
    if _eager.direct_call_ok(x, dw_weight, dw_bias, pw_weight, pw_bias):
        impl = {"cpu": _mdd_cpu, "cuda": _mdd_cuda, "triton": _mdd_triton_impl}[which]
        return impl(x, dw_weight, dw_bias, pw_weight, pw_bias, dilations)
    if which == "triton":
        return torch.ops.disenttalk_fast.multi_dilation_dwconv_triton(
            x, dw_weight, dw_bias, pw_weight, pw_bias, dilations)
    return torch.ops.disenttalk_fast.multi_dilation_dwconv(x, dw_weight, dw_bias, pw_weight,
                                                           pw_bias, dilations)


def _check_dilations(op: str, dilations) -> list[int]:
    """The dilations every backend takes, the reference included: one or more positive ints (the
    fused backends add their own limits). A float, even 2.0, is refused: conv1d takes none."""
    if (not isinstance(dilations, Sequence) or not dilations
            or not all(is_int(d) and d >= 1 for d in dilations)):
        raise _bridge.OpInputError(f"{op}: dilations must be one or more positive ints, "
                                   f"got {dilations!r}")
    return [int(d) for d in dilations]


def local_dwconv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                 *, backend: str = "auto") -> torch.Tensor:
    """See `disenttalk_fast.reference.local_dwconv` for the exact semantics.

    x: (B, L, C); weight: (C, k) with k odd; bias: (C,) or None. Returns (B, L, C).
    """
    op = "local_dwconv"
    _bridge.check_tensor(op, "x", x, ndim=3)
    _bridge.check_tensor(op, "weight", weight, ndim=2, shape=(x.shape[-1], None), dtype=x.dtype,
                         device=x.device)
    if weight.shape[1] % 2 == 0:
        raise _bridge.OpInputError(f"{op}: kernel size must be odd, got {weight.shape[1]}")
    if bias is not None:
        _bridge.check_tensor(op, "bias", bias, ndim=1, shape=(x.shape[-1],), dtype=x.dtype,
                             device=x.device)
    which = backends.resolve(backend, x.device, x.dtype)
    if which == "reference":
        return reference.local_dwconv(x, weight, bias)
    _bridge.check_dtype_supported(op, which, x)
    if _eager.direct_call_ok(x, weight, bias):  # same kernel, minus the dispatcher
        impl = {"cpu": _local_cpu, "cuda": _local_cuda, "triton": _local_triton_impl}[which]
        return impl(x, weight, bias)
    if which == "triton":
        return torch.ops.disenttalk_fast.local_dwconv_triton(x, weight, bias)
    return torch.ops.disenttalk_fast.local_dwconv(x, weight, bias)


# --- compiled kernels: C++ (CPU) and CUDA behind one op each --------------------------------

def _mdd_cpu(x: torch.Tensor, dw_weight: torch.Tensor, dw_bias: torch.Tensor,
             pw_weight: torch.Tensor, pw_bias: Optional[torch.Tensor],
             dilations: list[int]) -> torch.Tensor:
    lib = _native.require_cpu()
    x, dw_weight, dw_bias, pw_weight, pw_bias = map(
        _bridge.contiguous, (x, dw_weight, dw_bias, pw_weight, pw_bias))
    B, L, C = x.shape
    out = x.new_empty(B, L, pw_weight.shape[0])
    lib.multi_dilation_dwconv_forward_cpu(
        _bridge.addr(x), _bridge.addr(dw_weight), _bridge.addr(dw_bias), _bridge.addr(pw_weight),
        _bridge.addr(pw_bias), _bridge.addr(out), B, L, C, out.shape[-1], list(dilations),
        _bridge.num_threads())
    return out


def _mdd_cuda(x, dw_weight, dw_bias, pw_weight, pw_bias, dilations):
    lib = _native.require_cuda()
    x, dw_weight, dw_bias, pw_weight, pw_bias = map(
        _bridge.contiguous, (x, dw_weight, dw_bias, pw_weight, pw_bias))
    B, L, C = x.shape
    out = x.new_empty(B, L, pw_weight.shape[0])
    with torch.cuda.device(x.device):
        lib.multi_dilation_dwconv_forward_cuda(
            _bridge.addr(x), _bridge.addr(dw_weight), _bridge.addr(dw_bias),
            _bridge.addr(pw_weight), _bridge.addr(pw_bias), _bridge.addr(out), B, L, C,
            out.shape[-1], list(dilations), _bridge.DTYPE_CODES[x.dtype],
            _bridge.cuda_stream(x.device))
    return out


def _local_cpu(x: torch.Tensor, weight: torch.Tensor,
               bias: Optional[torch.Tensor]) -> torch.Tensor:
    lib = _native.require_cpu()
    x, weight, bias = map(_bridge.contiguous, (x, weight, bias))
    out = torch.empty_like(x)
    B, L, C = x.shape
    lib.local_dwconv_forward_cpu(_bridge.addr(x), _bridge.addr(weight), _bridge.addr(bias),
                                 _bridge.addr(out), B, L, C, weight.shape[1],
                                 _bridge.num_threads())
    return out


def _local_cuda(x, weight, bias):
    lib = _native.require_cuda()
    x, weight, bias = map(_bridge.contiguous, (x, weight, bias))
    out = torch.empty_like(x)
    B, L, C = x.shape
    with torch.cuda.device(x.device):
        lib.local_dwconv_forward_cuda(_bridge.addr(x), _bridge.addr(weight), _bridge.addr(bias),
                                      _bridge.addr(out), B, L, C, weight.shape[1],
                                      _bridge.DTYPE_CODES[x.dtype], _bridge.cuda_stream(x.device))
    return out


_mdd_compiled = torch.library.custom_op("disenttalk_fast::multi_dilation_dwconv", _mdd_cpu,
                                       mutates_args=())
_mdd_compiled.register_kernel("cuda")(_mdd_cuda)
_local_compiled = torch.library.custom_op("disenttalk_fast::local_dwconv", _local_cpu,
                                         mutates_args=())
_local_compiled.register_kernel("cuda")(_local_cuda)


# --- Triton ---------------------------------------------------------------------------------

def _mdd_triton_impl(x: torch.Tensor, dw_weight: torch.Tensor, dw_bias: torch.Tensor,
                     pw_weight: torch.Tensor, pw_bias: Optional[torch.Tensor],
                     dilations: list[int]) -> torch.Tensor:
    from disenttalk_fast._triton import dwconv as kernel  # imports triton only when used

    x, dw_weight, dw_bias, pw_weight, pw_bias = map(
        _bridge.contiguous, (x, dw_weight, dw_bias, pw_weight, pw_bias))
    B, L, _ = x.shape
    out = x.new_empty(B, L, pw_weight.shape[0])
    with _on_device(x):
        return kernel.multi_dilation_dwconv_forward(x, dw_weight, dw_bias, pw_weight, pw_bias,
                                                    list(dilations), out)


def _local_triton_impl(x: torch.Tensor, weight: torch.Tensor,
                       bias: Optional[torch.Tensor]) -> torch.Tensor:
    from disenttalk_fast._triton import dwconv as kernel

    x, weight, bias = map(_bridge.contiguous, (x, weight, bias))
    out = torch.empty_like(x)
    with _on_device(x):
        return kernel.local_dwconv_forward(x, weight, bias, out)


_mdd_triton = torch.library.custom_op("disenttalk_fast::multi_dilation_dwconv_triton",
                                     _mdd_triton_impl, mutates_args=())
_local_triton = torch.library.custom_op("disenttalk_fast::local_dwconv_triton",
                                       _local_triton_impl, mutates_args=())


def _on_device(x):
    import contextlib

    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()


# --- shared fake implementations and autograd -----------------------------------------------

def _mdd_fake(x, dw_weight, dw_bias, pw_weight, pw_bias, dilations):
    return x.new_empty(x.shape[0], x.shape[1], pw_weight.shape[0])


def _mdd_setup_context(ctx, inputs, output):
    x, dw_weight, dw_bias, pw_weight, pw_bias, dilations = inputs
    ctx.save_for_backward(x, dw_weight, dw_bias, pw_weight)
    ctx.dilations = tuple(dilations)
    ctx.has_pw_bias = pw_bias is not None


def _mdd_backward(ctx, grad):
    x, dw_weight, dw_bias, pw_weight = ctx.saved_tensors
    gx, gdw, gdb, gpw, gpb = grads.multi_dilation_dwconv_backward(
        grad, x, dw_weight, dw_bias, pw_weight, ctx.dilations, ctx.needs_input_grad)
    return gx, gdw, gdb, gpw, (gpb if ctx.has_pw_bias else None), None


def _local_fake(x, weight, bias):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def _local_setup_context(ctx, inputs, output):
    x, weight, bias = inputs
    ctx.save_for_backward(x, weight)
    ctx.has_bias = bias is not None


def _local_backward(ctx, grad):
    x, weight = ctx.saved_tensors
    gx, gw, gb = grads.depthwise_conv_backward(grad, x, weight, 1, ctx.needs_input_grad[:2])
    return gx, gw, (gb if ctx.has_bias else None)


for _op in (_mdd_compiled, _mdd_triton):
    _op.register_fake(_mdd_fake)
    _op.register_autograd(_mdd_backward, setup_context=_mdd_setup_context)
for _op in (_local_compiled, _local_triton):
    _op.register_fake(_local_fake)
    _op.register_autograd(_local_backward, setup_context=_local_setup_context)
