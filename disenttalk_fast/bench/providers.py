"""The providers a benchmark compares, and whether each can run on a device."""

from __future__ import annotations

from disenttalk_fast import _native, backends
from disenttalk_fast._torch import torch

# Display name -> op backend (None: the reference under torch.compile).
PROVIDERS = ("eager", "compile", "cpu", "cuda", "triton")


def unavailable_reason(provider: str, device: torch.device) -> str | None:
    """None when `provider` can run on `device`, else a short reason printed as "skipped"."""
    if provider in ("eager", "compile"):
        return None
    if provider == "cpu":
        if device.type != "cpu":
            return "CPU kernels run on CPU tensors"
        return None if _native.cpu_available() else "C++ kernels not built"
    if provider == "cuda":
        if device.type != "cuda":
            return "no CUDA device"
        return None if _native.cuda_compiled() else "CUDA kernels not compiled in"
    if provider == "triton":
        if not backends.triton_available():
            return "triton not installed"
        if device.type != "cuda":
            return "needs a GPU (the interpreter is not a benchmark)"
        return None
    raise ValueError(f"unknown provider '{provider}'")


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_mode(device: torch.device, requested: str | None = None) -> str | None:
    """The torch.compile mode of the "compile" provider. Unless `requested`: max-autotune on the
    GPU (the strongest baseline); the default mode on the CPU, where max-autotune only adds
    minutes of compilation. None is torch.compile's default mode."""
    if requested is None:
        requested = "max-autotune" if device.type == "cuda" else "default"
    if requested not in COMPILE_MODES:
        raise ValueError(f"unknown torch.compile mode '{requested}'")
    return None if requested == "default" else requested
