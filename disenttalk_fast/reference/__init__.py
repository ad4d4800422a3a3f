"""Pure-PyTorch reference implementations of every fused op: the specification the kernels are
tested against. Each is written with PyTorch's own primitives so that it is obviously correct."""

from disenttalk_fast.reference.film import film

__all__ = ["film"]
