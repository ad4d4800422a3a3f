"""`causal_cross_attention`: frames to audio rows with the 2:1 causal mask and lookahead.

Kernels (C++, CUDA, Triton) are registered here as they land; until then the non-reference
backends raise BackendError.
"""

from __future__ import annotations

from disenttalk_fast import _bridge, backends, reference
from disenttalk_fast._torch import torch

_OP = "causal_cross_attention"


def causal_cross_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                           lookahead: int = 0, *, backend: str = "auto") -> torch.Tensor:
    """See `disenttalk_fast.reference.causal_cross_attention` for the exact semantics."""
    _bridge.check_tensor(_OP, "q", q, ndim=4)
    B, L, H, D = q.shape
    _bridge.check_tensor(_OP, "k", k, ndim=4, shape=(B, None, H, D), dtype=q.dtype,
                         device=q.device)
    _bridge.check_tensor(_OP, "v", v, ndim=4, shape=k.shape, dtype=q.dtype, device=q.device)
    if k.shape[1] < 1:
        raise _bridge.OpInputError(f"{_OP}: k and v need at least one audio row")
    if lookahead < 0:
        raise _bridge.OpInputError(f"{_OP}: lookahead must be >= 0, got {lookahead}")
    which = backends.resolve(backend, q.device)
    if which == "reference":
        return reference.causal_cross_attention(q, k, v, lookahead)
    raise backends.BackendError(f"{_OP}: backend '{which}' is not implemented yet")
