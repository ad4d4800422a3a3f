"""Tensor plumbing between PyTorch and the raw-pointer kernels.

Every check here produces a one-line error naming the op and the argument, so that a wrong call
never surfaces as a crash or an obscure message from inside a kernel.
"""

from __future__ import annotations

from collections.abc import Sequence

from disenttalk_fast._torch import torch

# Mirrors dt::DType in csrc/common.h.
DTYPE_CODES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}


class OpInputError(ValueError):
    """A tensor handed to an op has the wrong rank, shape, dtype or device."""


def check_tensor(
    op: str,
    name: str,
    t,
    ndim: int | None = None,
    shape: Sequence[int | None] | None = None,
    dtype=None,
    device=None,
) -> None:
    if not isinstance(t, torch.Tensor):
        raise OpInputError(f"{op}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if ndim is not None and t.dim() != ndim:
        raise OpInputError(f"{op}: {name} must have {ndim} dims, got shape {tuple(t.shape)}")
    if shape is not None:
        for got, want in zip(t.shape, shape):
            if want is not None and got != want:
                want_s = tuple("*" if w is None else w for w in shape)
                raise OpInputError(
                    f"{op}: {name} has shape {tuple(t.shape)}, expected {want_s}"
                )
    if dtype is not None and t.dtype != dtype:
        raise OpInputError(f"{op}: {name} has dtype {t.dtype}, expected {dtype}")
    if device is not None and t.device != device:
        raise OpInputError(f"{op}: {name} is on {t.device}, expected {device}")


def check_dtype_supported(op: str, backend: str, t) -> None:
    allowed = (torch.float32,) if backend == "cpu" else tuple(DTYPE_CODES)
    if t.dtype not in allowed:
        names = ", ".join(str(d).replace("torch.", "") for d in allowed)
        raise OpInputError(f"{op}: backend '{backend}' supports {names}; got {t.dtype}")


def addr(t) -> int:
    """Raw address of a tensor that the kernel may read (0 for None)."""
    return 0 if t is None else t.data_ptr()


def contiguous(t):
    return None if t is None else t.contiguous()


def cuda_stream(device) -> int:
    """The current PyTorch stream of `device`, as the integer the kernels take."""
    return torch.cuda.current_stream(device).cuda_stream


# Tests set this to force the CUDA attention's key split (1 to 16; None: the device's plan), so
# that a GPU compares split and unsplit results on the same inputs.
ATTENTION_SPLITS: int | None = None


def attention_split(lib, B: int, H: int, L: int, S: int, head_dim: int, device,
                    causal: bool = False, lookahead: int = 0):
    """(splits, partial) for the CUDA attention kernel on the current device: how many key ranges
    it splits each query tile into (1: none) and the fp32 buffer for their partial softmax
    states, from PyTorch's allocator so that CUDA-graph capture owns it (None when not split)."""
    splits = ATTENTION_SPLITS or lib.attention_splits_cuda(B, H, L, S, causal, lookahead)
    if splits <= 1:
        return 1, None
    floats = lib.attention_partial_floats(B, H, L, head_dim, splits)
    return splits, torch.empty(floats, dtype=torch.float32, device=device)


def num_threads() -> int:
    """Thread count for the C++ kernels: follow PyTorch so the two pools never oversubscribe."""
    return max(1, torch.get_num_threads())
