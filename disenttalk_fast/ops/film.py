"""`film`: FiLM conditioning fused with the residual add — the public op and its registrations.

The compiled kernels are registered as `torch.ops.disenttalk_fast.film` (C++ on CPU tensors, CUDA
on CUDA tensors) and `torch.ops.disenttalk_fast.film_triton`, each with a fake implementation and
an autograd formula, so `torch.compile(fullgraph=True)`, CUDA graphs and training all work.
"""

from __future__ import annotations

from typing import Optional

from disenttalk_fast import _bridge, _native, backends, reference
from disenttalk_fast._torch import torch

_OP = "film"


def film(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
         residual: Optional[torch.Tensor] = None, *, backend: str = "auto") -> torch.Tensor:
    """`residual + gamma[:, None] * x + beta[:, None]`.

    x, residual: (B, L, C); gamma, beta: (B, C); all on one device with one dtype. Returns a new
    (B, L, C) tensor. `backend`: "auto" | "reference" | "cpu" | "cuda" | "triton".
    """
    _check(x, gamma, beta, residual)
    which = backends.resolve(backend, x.device)
    if which == "reference":
        return reference.film(x, gamma, beta, residual)
    _bridge.check_dtype_supported(_OP, which, x)
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

@torch.library.custom_op("disenttalk_fast::film", mutates_args=())
def _film_compiled(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                   residual: Optional[torch.Tensor]) -> torch.Tensor:
    lib = _native.require_cpu()
    x, gamma, beta, residual = map(_bridge.contiguous, (x, gamma, beta, residual))
    out = torch.empty_like(x)
    B, L, C = x.shape
    lib.film_forward_cpu(_bridge.addr(x), _bridge.addr(gamma), _bridge.addr(beta),
                         _bridge.addr(residual), _bridge.addr(out), B, L, C, _bridge.num_threads())
    return out


@_film_compiled.register_kernel("cuda")
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

@torch.library.custom_op("disenttalk_fast::film_triton", mutates_args=())
def _film_triton(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                 residual: Optional[torch.Tensor]) -> torch.Tensor:
    from disenttalk_fast._triton import film as kernel  # imports triton only when used

    x, gamma, beta, residual = map(_bridge.contiguous, (x, gamma, beta, residual))
    out = torch.empty_like(x)
    if x.is_cuda:
        with torch.cuda.device(x.device):
            return kernel.film_forward(x, gamma, beta, residual, out)
    return kernel.film_forward(x, gamma, beta, residual, out)


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
