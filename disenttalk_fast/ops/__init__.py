"""The fused ops. Each takes `backend="auto" | "reference" | "cpu" | "cuda" | "triton"`; see
`disenttalk_fast.backends` for how "auto" resolves and the DISENTTALK_BACKEND override."""

from disenttalk_fast.ops.causal_cross_attention import causal_cross_attention
from disenttalk_fast.ops.dwconv import local_dwconv, multi_dilation_dwconv
from disenttalk_fast.ops.film import film, film_norm
from disenttalk_fast.ops.region_attention import region_attention

__all__ = ["causal_cross_attention", "film", "film_norm", "local_dwconv", "multi_dilation_dwconv",
           "region_attention"]
