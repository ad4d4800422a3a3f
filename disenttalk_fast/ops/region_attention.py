"""`region_attention`: block-diagonal QKV + rotary + attention per (region, head).

Kernels (C++, CUDA, Triton) are registered here as they land; until then the non-reference
backends raise BackendError.
"""

from __future__ import annotations

from collections.abc import Sequence

from disenttalk_fast import _bridge, backends, reference
from disenttalk_fast._torch import torch

_OP = "region_attention"


def region_attention(x: torch.Tensor, weights: Sequence[torch.Tensor],
                     biases: Sequence[torch.Tensor], head_dim: int, rope_base: float = 10000.0,
                     *, backend: str = "auto") -> torch.Tensor:
    """See `disenttalk_fast.reference.region_attention` for the exact semantics."""
    _bridge.check_tensor(_OP, "x", x, ndim=3)
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
    if len(weights) != len(biases) or total != x.shape[-1]:
        raise _bridge.OpInputError(f"{_OP}: regions cover {total} channels but x has "
                                   f"{x.shape[-1]}")
    if head_dim % 2:
        raise _bridge.OpInputError(f"{_OP}: head_dim must be even for rotary, got {head_dim}")
    which = backends.resolve(backend, x.device)
    if which == "reference":
        return reference.region_attention(x, weights, biases, head_dim, rope_base)
    raise backends.BackendError(f"{_OP}: backend '{which}' is not implemented yet")
