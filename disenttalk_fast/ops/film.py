"""`film`: FiLM conditioning fused with the residual add — the public op and its registrations.
`film_norm`: the same, plus the next block's (region-grouped) LayerNorm of the result in the same
pass over memory.

The compiled kernels are registered as `torch.ops.disenttalk_fast.film` / `.film_norm` (C++ on CPU
tensors, CUDA on CUDA tensors) and `.film_triton` / `.film_norm_triton`, each with a fake
implementation and an autograd formula, so `torch.compile(fullgraph=True)`, CUDA graphs and
training all work.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from disenttalk_fast import _bridge, _native, backends, reference
from disenttalk_fast._torch import torch
from disenttalk_fast.ops import _eager

_OP = "film"


def film(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
         residual: Optional[torch.Tensor] = None, *, backend: str = "auto") -> torch.Tensor:
    """`residual + gamma[:, None] * x + beta[:, None]`.

    x, residual: (B, L, C); gamma, beta: (B, C); all on one device with one dtype. Returns a new
    (B, L, C) tensor. `backend`: "auto" | "reference" | "cpu" | "cuda" | "triton".
    """
    _check(x, gamma, beta, residual)
    which = backends.resolve(backend, x.device, x.dtype)
    if which == "reference":
        return reference.film(x, gamma, beta, residual)
    _bridge.check_dtype_supported(_OP, which, x)
    if _eager.direct_call_ok(x, gamma, beta, residual):  # same kernel, minus the dispatcher
        impl = {"cpu": _film_cpu, "cuda": _film_cuda, "triton": _film_triton_impl}[which]
        return impl(x, gamma, beta, residual)
    if which == "triton":
        return torch.ops.disenttalk_fast.film_triton(x, gamma, beta, residual)
    return torch.ops.disenttalk_fast.film(x, gamma, beta, residual)


def _check(x, gamma, beta, residual) -> None:
    _bridge.check_tensor(_OP, "x", x, ndim=3)
    B, L, C = x.shape
    for name, t in (("gamma", gamma), ("beta", beta)):
        _bridge.check_tensor(_OP, name, t, ndim=2, shape=(B, C), dtype=x.dtype, device=x.device)
    if residual is not None:
        _bridge.check_tensor(_OP, "residual", residual, shape=(B, L, C), ndim=3,
                             dtype=x.dtype, device=x.device)


# --- compiled kernels: C++ (CPU) and CUDA behind one op -------------------------------------

def _film_cpu(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
              residual: Optional[torch.Tensor]) -> torch.Tensor:
    lib = _native.require_cpu()
    x, gamma, beta, residual = map(_bridge.contiguous, (x, gamma, beta, residual))
    out = torch.empty_like(x)
    B, L, C = x.shape
    lib.film_forward_cpu(_bridge.addr(x), _bridge.addr(gamma), _bridge.addr(beta),
                         _bridge.addr(residual), _bridge.addr(out), B, L, C, _bridge.num_threads())
    return out


def _film_cuda(x, gamma, beta, residual):
    lib = _native.require_cuda()
    x, gamma, beta, residual = map(_bridge.contiguous, (x, gamma, beta, residual))
    out = torch.empty_like(x)
    B, L, C = x.shape
    with torch.cuda.device(x.device):
        lib.film_forward_cuda(_bridge.addr(x), _bridge.addr(gamma), _bridge.addr(beta),
                              _bridge.addr(residual), _bridge.addr(out), B, L, C,
                              _bridge.DTYPE_CODES[x.dtype], _bridge.cuda_stream(x.device))
    return out


# --- Triton ---------------------------------------------------------------------------------

def _film_triton_impl(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                      residual: Optional[torch.Tensor]) -> torch.Tensor:
    from disenttalk_fast._triton import film as kernel  # imports triton only when used

    x, gamma, beta, residual = map(_bridge.contiguous, (x, gamma, beta, residual))
    out = torch.empty_like(x)
    if x.is_cuda:
        with torch.cuda.device(x.device):
            return kernel.film_forward(x, gamma, beta, residual, out)
    return kernel.film_forward(x, gamma, beta, residual, out)


_film_compiled = torch.library.custom_op("disenttalk_fast::film", _film_cpu, mutates_args=())
_film_compiled.register_kernel("cuda")(_film_cuda)
_film_triton = torch.library.custom_op("disenttalk_fast::film_triton", _film_triton_impl,
                                       mutates_args=())


# --- shared fake implementation and autograd ------------------------------------------------

def _film_fake(x, gamma, beta, residual):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def _film_setup_context(ctx, inputs, output):
    x, gamma, beta, residual = inputs
    ctx.save_for_backward(x, gamma)
    ctx.has_residual = residual is not None


def _film_backward(ctx, grad):
    x, gamma = ctx.saved_tensors
    grad_x = grad * gamma.unsqueeze(1)
    grad_gamma = (grad * x).sum(dim=1)
    grad_beta = grad.sum(dim=1)
    return grad_x, grad_gamma, grad_beta, (grad if ctx.has_residual else None)


for _op in (_film_compiled, _film_triton):
    _op.register_fake(_film_fake)
    _op.register_autograd(_film_backward, setup_context=_film_setup_context)


# === film_norm: FiLM + residual + the next pre-norm ===========================================

MAX_NORM_GROUPS = 8  # mirrors dt::kMaxNormGroups in csrc/film.h


def film_norm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
              residual: Optional[torch.Tensor], norm_weight: torch.Tensor,
              norm_bias: torch.Tensor, eps: float = 1e-5,
              groups: Optional[Sequence[int]] = None, *, backend: str = "auto"):
    """`(out, normed)`: out = `film(x, gamma, beta, residual)`, normed = LayerNorm of out taken
    over each consecutive channel group of widths `groups` (None: all C channels, a plain
    LayerNorm), with one affine `norm_weight`, `norm_bias` (C,) — the model's RegionLayerNorm.

    One pass: x and residual are read once and out and normed written once, instead of film's
    pass plus LayerNorm's re-read of out. See `reference.film_norm` for the exact semantics.
    """
    op = "film_norm"
    _check(x, gamma, beta, residual)
    C = x.shape[-1]
    for name, t in (("norm_weight", norm_weight), ("norm_bias", norm_bias)):
        _bridge.check_tensor(op, name, t, ndim=1, shape=(C,), dtype=x.dtype, device=x.device)
    widths = [C] if groups is None else [int(w) for w in groups]
    if not widths or any(w < 1 for w in widths) or sum(widths) != C:
        raise _bridge.OpInputError(
            f"{op}: groups must be positive widths summing to C={C}, got {tuple(widths)}")
    if not float(eps) > 0:
        raise _bridge.OpInputError(f"{op}: eps must be > 0, got {eps}")
    which = backends.resolve(backend, x.device, x.dtype)
    if which == "reference":
        return reference.film_norm(x, gamma, beta, residual, norm_weight, norm_bias, eps, widths)
    _bridge.check_dtype_supported(op, which, x)
    if len(widths) > MAX_NORM_GROUPS:
        raise _bridge.OpInputError(
            f"{op}: backend '{which}' takes at most {MAX_NORM_GROUPS} groups, got {len(widths)}")
    if _eager.direct_call_ok(x, gamma, beta, residual, norm_weight, norm_bias):
        impl = {"cpu": _film_norm_cpu, "cuda": _film_norm_cuda,
                "triton": _film_norm_triton_impl}[which]
        return impl(x, gamma, beta, residual, norm_weight, norm_bias, float(eps), widths)
    if which == "triton":
        return torch.ops.disenttalk_fast.film_norm_triton(x, gamma, beta, residual, norm_weight,
                                                          norm_bias, float(eps), widths)
    return torch.ops.disenttalk_fast.film_norm(x, gamma, beta, residual, norm_weight, norm_bias,
                                               float(eps), widths)


def _film_norm_cpu(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                   residual: Optional[torch.Tensor], norm_weight: torch.Tensor,
                   norm_bias: torch.Tensor, eps: float,
                   groups: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    lib = _native.require_cpu()
    x, gamma, beta, residual, norm_weight, norm_bias = map(
        _bridge.contiguous, (x, gamma, beta, residual, norm_weight, norm_bias))
    out, normed = torch.empty_like(x), torch.empty_like(x)
    B, L, C = x.shape
    lib.film_norm_forward_cpu(_bridge.addr(x), _bridge.addr(gamma), _bridge.addr(beta),
                              _bridge.addr(residual), _bridge.addr(norm_weight),
                              _bridge.addr(norm_bias), eps, list(groups), _bridge.addr(out),
                              _bridge.addr(normed), B, L, C, _bridge.num_threads())
    return out, normed


def _film_norm_cuda(x, gamma, beta, residual, norm_weight, norm_bias, eps, groups):
    lib = _native.require_cuda()
    x, gamma, beta, residual, norm_weight, norm_bias = map(
        _bridge.contiguous, (x, gamma, beta, residual, norm_weight, norm_bias))
    out, normed = torch.empty_like(x), torch.empty_like(x)
    B, L, C = x.shape
    with torch.cuda.device(x.device):
        lib.film_norm_forward_cuda(_bridge.addr(x), _bridge.addr(gamma), _bridge.addr(beta),
                                   _bridge.addr(residual), _bridge.addr(norm_weight),
                                   _bridge.addr(norm_bias), eps, list(groups), _bridge.addr(out),
                                   _bridge.addr(normed), B, L, C, _bridge.DTYPE_CODES[x.dtype],
                                   _bridge.cuda_stream(x.device))
    return out, normed


def _film_norm_triton_impl(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                           residual: Optional[torch.Tensor], norm_weight: torch.Tensor,
                           norm_bias: torch.Tensor, eps: float,
                           groups: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    from disenttalk_fast._triton import film as kernel

    x, gamma, beta, residual, norm_weight, norm_bias = map(
        _bridge.contiguous, (x, gamma, beta, residual, norm_weight, norm_bias))
    out, normed = torch.empty_like(x), torch.empty_like(x)
    if x.is_cuda:
        with torch.cuda.device(x.device):
            return kernel.film_norm_forward(x, gamma, beta, residual, norm_weight, norm_bias, eps,
                                            list(groups), out, normed)
    return kernel.film_norm_forward(x, gamma, beta, residual, norm_weight, norm_bias, eps,
                                    list(groups), out, normed)


_film_norm_compiled = torch.library.custom_op("disenttalk_fast::film_norm", _film_norm_cpu,
                                             mutates_args=())
_film_norm_compiled.register_kernel("cuda")(_film_norm_cuda)
_film_norm_triton = torch.library.custom_op("disenttalk_fast::film_norm_triton",
                                           _film_norm_triton_impl, mutates_args=())

def _film_norm_fake(x, gamma, beta, residual, norm_weight, norm_bias, eps, groups):
    return (torch.empty_like(x, memory_format=torch.contiguous_format),
            torch.empty_like(x, memory_format=torch.contiguous_format))


def _film_norm_setup_context(ctx, inputs, output):
    x, gamma, beta, residual, norm_weight, norm_bias, eps, groups = inputs
    ctx.save_for_backward(x, gamma, output[0], norm_weight)
    ctx.eps, ctx.groups, ctx.has_residual = eps, list(groups), residual is not None


def _film_norm_backward(ctx, grad_out, grad_normed):
    """LayerNorm backward per group (statistics recomputed from the saved out), added to the
    gradient reaching out directly, then the FiLM backward."""
    x, gamma, out, norm_weight = ctx.saved_tensors
    grad_total, grad_w, grad_b = [], [], []
    for o, gn, w in zip(out.split(ctx.groups, dim=-1), grad_normed.split(ctx.groups, dim=-1),
                        norm_weight.split(ctx.groups)):
        mean = o.mean(dim=-1, keepdim=True)
        rstd = torch.rsqrt(o.var(dim=-1, unbiased=False, keepdim=True) + ctx.eps)
        xhat = (o - mean) * rstd
        gy = gn * w
        grad_total.append(rstd * (gy - gy.mean(dim=-1, keepdim=True)
                                  - xhat * (gy * xhat).mean(dim=-1, keepdim=True)))
        grad_w.append((gn * xhat).sum(dim=(0, 1)))
        grad_b.append(gn.sum(dim=(0, 1)))
    grad = grad_out + torch.cat(grad_total, dim=-1)
    return (grad * gamma.unsqueeze(1), (grad * x).sum(dim=1), grad.sum(dim=1),
            grad if ctx.has_residual else None, torch.cat(grad_w), torch.cat(grad_b), None, None)


for _op in (_film_norm_compiled, _film_norm_triton):
    _op.register_fake(_film_norm_fake)
    _op.register_autograd(_film_norm_backward, setup_context=_film_norm_setup_context)
