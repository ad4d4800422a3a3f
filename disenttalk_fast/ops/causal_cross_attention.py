"""`causal_cross_attention`: frames to audio rows with the 2:1 causal mask and lookahead.

The compiled kernels are registered as `torch.ops.disenttalk_fast.causal_cross_attention` (C++ on
CPU tensors, CUDA on CUDA tensors) and `torch.ops.disenttalk_fast.causal_cross_attention_triton`,
each with a fake implementation. The kernels are forward-only; their backward recomputes the op
with the reference under autograd, so models built on them still train.
"""

from __future__ import annotations


from disenttalk_fast import _bridge, _native, backends, reference
from disenttalk_fast._checks import is_int
from disenttalk_fast._torch import torch
from disenttalk_fast.ops import _eager

_OP = "causal_cross_attention"
# Head dims each backend is compiled / written for (Triton: powers of two, >= 16 for tl.dot).
HEAD_DIMS = {"cpu": (16, 32, 64, 128), "cuda": (16, 32, 64, 128), "triton": (16, 32, 64, 128)}


def causal_cross_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                           lookahead: int = 0, *, backend: str = "auto") -> torch.Tensor:
    """See `disenttalk_fast.reference.causal_cross_attention` for the exact semantics.

    q: (B, L, H, D); k, v: (B, S, H, D); returns a new (B, L, H, D) tensor.
    `backend`: "auto" | "reference" | "cpu" | "cuda" | "triton".
    """
    _bridge.check_tensor(_OP, "q", q, ndim=4)
    if not q.is_floating_point():  # else the reference fails deep inside its attention
        raise _bridge.OpInputError(f"{_OP}: q must be a floating-point tensor, got {q.dtype}")
    B, L, H, D = q.shape
    _bridge.check_tensor(_OP, "k", k, ndim=4, shape=(B, None, H, D), dtype=q.dtype,
                         device=q.device)
    _bridge.check_tensor(_OP, "v", v, ndim=4, shape=k.shape, dtype=q.dtype, device=q.device)
    if k.shape[1] < 1:
        raise _bridge.OpInputError(f"{_OP}: k and v need at least one audio row")
    # A whole number of frames: the kernels would truncate a fraction that the reference's mask
    # uses as is, giving each backend a different mask.
    if not is_int(lookahead):
        raise _bridge.OpInputError(f"{_OP}: lookahead must be an int, got {lookahead!r}")
    lookahead = int(lookahead)
    if lookahead < 0:
        raise _bridge.OpInputError(f"{_OP}: lookahead must be >= 0, got {lookahead}")
    # Past every row's frame it changes nothing: clamped, so that a huge value never overflows
    # the kernels' 64-bit row arithmetic (2**62 gave NaN) or their int arguments (2**70).
    lookahead = min(lookahead, k.shape[1])
    which = backends.resolve(backend, q.device, q.dtype)
    if which == "reference":
        return reference.causal_cross_attention(q, k, v, lookahead)
    _bridge.check_dtype_supported(_OP, which, q)
    if D not in HEAD_DIMS[which]:
        raise _bridge.OpInputError(
            f"{_OP}: backend '{which}' supports head dim {', '.join(map(str, HEAD_DIMS[which]))}; "
            f"got {D} (use backend='reference')")
    if _eager.direct_call_ok(q, k, v):  # same kernel, minus the dispatcher
        impl = {"cpu": _cca_cpu, "cuda": _cca_cuda, "triton": _cca_triton_impl}[which]
        return impl(q, k, v, lookahead)
    if which == "triton":
        return torch.ops.disenttalk_fast.causal_cross_attention_triton(q, k, v, lookahead)
    return torch.ops.disenttalk_fast.causal_cross_attention(q, k, v, lookahead)


# --- compiled kernels: C++ (CPU) and CUDA behind one op -------------------------------------

def _cca_cpu(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, lookahead: int) -> torch.Tensor:
    lib = _native.require_cpu()
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    out = torch.empty_like(q)
    B, L, H, D = q.shape
    lib.causal_cross_attention_forward_cpu(
        _bridge.addr(q), _bridge.addr(k), _bridge.addr(v), _bridge.addr(out), B, L, k.shape[1],
        H, D, lookahead, _bridge.num_threads())
    return out


def _cca_cuda(q, k, v, lookahead):
    lib = _native.require_cuda()
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    out = torch.empty_like(q)
    B, L, H, D = q.shape
    with torch.cuda.device(q.device):
        splits, partial = _bridge.attention_split(lib, B, H, L, k.shape[1], D, q.device,
                                                  causal=True, lookahead=lookahead)
        lib.causal_cross_attention_forward_cuda(
            _bridge.addr(q), _bridge.addr(k), _bridge.addr(v), _bridge.addr(out), B, L,
            k.shape[1], H, D, lookahead, splits, _bridge.addr(partial),
            _bridge.DTYPE_CODES[q.dtype], _bridge.cuda_stream(q.device))
    return out


# --- Triton ---------------------------------------------------------------------------------

def _cca_triton_impl(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     lookahead: int) -> torch.Tensor:
    from disenttalk_fast._triton import causal_cross_attention as kernel  # imports triton

    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    out = torch.empty_like(q)
    if q.is_cuda:
        with torch.cuda.device(q.device):
            return kernel.causal_cross_attention_forward(q, k, v, lookahead, out)
    return kernel.causal_cross_attention_forward(q, k, v, lookahead, out)


_cca_compiled = torch.library.custom_op("disenttalk_fast::causal_cross_attention", _cca_cpu,
                                        mutates_args=())
_cca_compiled.register_kernel("cuda")(_cca_cuda)
_cca_triton = torch.library.custom_op("disenttalk_fast::causal_cross_attention_triton",
                                      _cca_triton_impl, mutates_args=())


# --- shared fake implementation and autograd ------------------------------------------------

def _fake(q, k, v, lookahead):
    return torch.empty_like(q, memory_format=torch.contiguous_format)


def _setup_context(ctx, inputs, output):
    q, k, v, lookahead = inputs
    ctx.save_for_backward(q, k, v)
    ctx.lookahead = lookahead


def _backward(ctx, grad):
    # Recompute through the reference (forward-only kernels; see the module docstring).
    with torch.enable_grad():
        inputs = [t.detach().requires_grad_() for t in ctx.saved_tensors]
        out = reference.causal_cross_attention(*inputs, ctx.lookahead)
        grads = torch.autograd.grad(out, inputs, grad)
    return grads[0], grads[1], grads[2], None


for _op in (_cca_compiled, _cca_triton):
    _op.register_fake(_fake)
    _op.register_autograd(_backward, setup_context=_setup_context)
