"""Which implementation of an op runs: the pure-PyTorch reference or a fused kernel.

`backend="auto"` resolves, in order, to the value of the DISENTTALK_BACKEND environment variable
(when set), then to "cuda" for CUDA tensors when the CUDA kernels were compiled in, "cpu" for
fp32 CPU tensors when the C++ kernels are built (they are fp32-only), else "reference". An
explicit backend that cannot run the given tensors is an error, never a silent fallback.
"""

from __future__ import annotations

import os

from disenttalk_fast import _native
from disenttalk_fast._torch import torch

BACKENDS = ("auto", "reference", "cpu", "cuda", "triton")
ENV_VAR = "DISENTTALK_BACKEND"


class BackendError(RuntimeError):
    """The requested backend is unknown or cannot run here."""


def triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def tf32_allowed() -> bool:
    """Whether PyTorch lets fp32 matrix products run as TF32 (`torch.set_float32_matmul_precision
    ("high")`, `torch.backends.cuda.matmul.fp32_precision = "tf32"` or the global
    `torch.backends.fp32_precision`). Reads the new setting where it exists: the legacy
    `allow_tf32` raises once the two APIs have been mixed."""
    matmul = torch.backends.cuda.matmul
    precision = getattr(matmul, "fp32_precision", None)
    if precision is None:  # PyTorch before the fp32_precision settings
        return bool(matmul.allow_tf32)
    if precision == "none":  # not set for cuBLAS: the global setting applies
        precision = getattr(torch.backends, "fp32_precision", "ieee")
    return precision == "tf32"


def triton_interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def check_name(name: str, source: str) -> str:
    """`name` if it is one of BACKENDS; else a one-line BackendError naming `source`."""
    if name not in BACKENDS:
        raise BackendError(f"{source}: unknown backend '{name}' (choose from {', '.join(BACKENDS)})")
    return name


def resolve(backend: str, device, dtype=None) -> str:
    """Turn a requested backend name into the concrete one for tensors on `device` (of `dtype`,
    when given: "auto" leaves half-precision CPU tensors to the reference)."""
    backend = check_name(backend, "backend")
    if backend == "auto":
        env = os.environ.get(ENV_VAR)
        if env:
            backend = check_name(env.strip().lower(), ENV_VAR)
    if backend == "auto":
        if device.type == "cuda" and _native.cuda_compiled():
            return "cuda"
        if device.type == "cpu" and _native.cpu_available() and dtype in (None, torch.float32):
            return "cpu"
        return "reference"
    check_runnable(backend, device)
    return backend


def check_runnable(backend: str, device) -> None:
    if backend == "reference":
        return
    if backend == "cpu":
        if device.type != "cpu":
            raise BackendError(f"backend 'cpu' needs CPU tensors, got tensors on {device}")
        _native.require_cpu()
    elif backend == "cuda":
        if device.type != "cuda":
            raise BackendError(f"backend 'cuda' needs CUDA tensors, got tensors on {device}")
        _native.require_cuda()
    elif backend == "triton":
        if not triton_available():
            raise BackendError("backend 'triton' needs the triton package (pip install triton)")
        if device.type != "cuda" and not (device.type == "cpu" and triton_interpreted()):
            raise BackendError(
                f"backend 'triton' needs CUDA tensors (or TRITON_INTERPRET=1 for CPU), "
                f"got tensors on {device}"
            )
