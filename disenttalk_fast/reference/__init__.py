"""Pure-PyTorch reference implementations of every fused op: the specification the kernels are
tested against. Each is written with PyTorch's own primitives so that it is obviously correct."""

from disenttalk_fast.reference.causal_cross_attention import causal_cross_attention
from disenttalk_fast.reference.dwconv import local_dwconv, multi_dilation_dwconv
from disenttalk_fast.reference.film import film, film_norm, group_layer_norm
from disenttalk_fast.reference.region_attention import region_attention

__all__ = ["causal_cross_attention", "film", "film_norm", "group_layer_norm", "local_dwconv",
           "multi_dilation_dwconv", "region_attention"]
