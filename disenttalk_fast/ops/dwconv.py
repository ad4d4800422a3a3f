"""`multi_dilation_dwconv` and `local_dwconv`: the depthwise temporal convolutions.

Kernels (C++, CUDA, Triton) are registered here as they land; until then the non-reference
backends raise BackendError.
"""

from __future__ import annotations

from collections.abc import Sequence

from disenttalk_fast import _bridge, backends, reference
from disenttalk_fast._torch import torch


def multi_dilation_dwconv(x: torch.Tensor, dw_weight: torch.Tensor, dw_bias: torch.Tensor,
                          pw_weight: torch.Tensor, pw_bias: torch.Tensor | None,
                          dilations: Sequence[int] = reference.dwconv.DILATIONS,
                          *, backend: str = "auto") -> torch.Tensor:
    """See `disenttalk_fast.reference.multi_dilation_dwconv` for the exact semantics."""
    op = "multi_dilation_dwconv"
    _bridge.check_tensor(op, "x", x, ndim=3)
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
    which = backends.resolve(backend, x.device)
    if which == "reference":
        return reference.multi_dilation_dwconv(x, dw_weight, dw_bias, pw_weight, pw_bias,
                                               dilations)
    raise backends.BackendError(f"{op}: backend '{which}' is not implemented yet")


def local_dwconv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                 *, backend: str = "auto") -> torch.Tensor:
    """See `disenttalk_fast.reference.local_dwconv` for the exact semantics."""
    op = "local_dwconv"
    _bridge.check_tensor(op, "x", x, ndim=3)
    _bridge.check_tensor(op, "weight", weight, ndim=2, shape=(x.shape[-1], None), dtype=x.dtype,
                         device=x.device)
    if weight.shape[1] % 2 == 0:
        raise _bridge.OpInputError(f"{op}: kernel size must be odd, got {weight.shape[1]}")
    if bias is not None:
        _bridge.check_tensor(op, "bias", bias, ndim=1, shape=(x.shape[-1],), dtype=x.dtype,
                             device=x.device)
    which = backends.resolve(backend, x.device)
    if which == "reference":
        return reference.local_dwconv(x, weight, bias)
    raise backends.BackendError(f"{op}: backend '{which}' is not implemented yet")
