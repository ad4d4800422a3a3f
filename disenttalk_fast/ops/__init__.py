"""The fused ops. Each takes `backend="auto" | "reference" | "cpu" | "cuda" | "triton"`; see
`disenttalk_fast.backends` for how "auto" resolves and the DISENTTALK_BACKEND override."""

from disenttalk_fast.ops.film import film

__all__ = ["film"]
