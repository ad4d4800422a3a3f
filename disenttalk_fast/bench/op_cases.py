"""Benchmark cases for the fused ops at the shapes users run.

A case builds its inputs once and returns one callable per provider. Shapes: the default model
(d_model 256, heads (3, 2, 3) x 32, 8 cross-attention heads), batch 2 (the conditional and the
unconditional rows of classifier-free guidance), for the paper's 53-second clip (1325 frames)
and for a 250-frame window; the bandwidth-bound ops also at a large size (see BANDWIDTH_OPS).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from disenttalk_fast import ops, reference
from disenttalk_fast._torch import torch

SEQUENCES = {"clip-1325": (2, 1325), "window-250": (2, 250), "large": (8, 16384)}
# The model's shapes are far too small to fill a GPU's memory bus (a 1325-frame activation is
# 2.7 MB, moved in about a microsecond), so the bandwidth-bound ops also run at "large" (134 MB
# per activation), where the fraction of peak bandwidth means something. Attention ops skip it
# (the reference would materialise 16384^2 scores per head); CPUs skip it unless asked.
BANDWIDTH_OPS = ("film", "multi_dilation_dwconv", "local_dwconv")
D_MODEL, HEAD_DIM, REGION_HEADS, CROSS_HEADS = 256, 32, (3, 2, 3), 8


@dataclass
class OpCase:
    op: str
    shape: str
    run_reference: Callable[[], object]
    run_backend: Callable[[str], object]   # backend name -> result
    bytes_moved: int | None                # for bandwidth-bound ops, else None


def _film(B, L, device, dtype):
    x = torch.randn(B, L, D_MODEL, device=device, dtype=dtype)
    res = torch.randn_like(x)
    g, b = torch.randn(B, D_MODEL, device=device, dtype=dtype), torch.randn(B, D_MODEL,
                                                                           device=device,
                                                                           dtype=dtype)
    nbytes = (3 * x.numel() + 2 * g.numel()) * x.element_size()
    return (lambda: reference.film(x, g, b, res),
            lambda be: ops.film(x, g, b, res, backend=be), nbytes)


def _mdconv(B, L, device, dtype):
    x = torch.randn(B, L, D_MODEL, device=device, dtype=dtype)
    dw_w = torch.randn(3, D_MODEL, 3, device=device, dtype=dtype) * 0.3
    dw_b = torch.randn(3, D_MODEL, device=device, dtype=dtype) * 0.1
    pw_w = torch.randn(D_MODEL, 3 * D_MODEL, device=device, dtype=dtype) * 0.03
    pw_b = torch.zeros(D_MODEL, device=device, dtype=dtype)
    args = (x, dw_w, dw_b, pw_w, pw_b)
    nbytes = (2 * x.numel() + pw_w.numel()) * x.element_size()
    return (lambda: reference.multi_dilation_dwconv(*args),
            lambda be: ops.multi_dilation_dwconv(*args, backend=be), nbytes)


def _local(B, L, device, dtype):
    x = torch.randn(B, L, D_MODEL, device=device, dtype=dtype)
    w = torch.randn(D_MODEL, 5, device=device, dtype=dtype) * 0.3
    b = torch.zeros(D_MODEL, device=device, dtype=dtype)
    nbytes = 2 * x.numel() * x.element_size()
    return (lambda: reference.local_dwconv(x, w, b),
            lambda be: ops.local_dwconv(x, w, b, backend=be), nbytes)


def _region_attention(B, L, device, dtype):
    x = torch.randn(B, L, D_MODEL, device=device, dtype=dtype)
    widths = [h * HEAD_DIM for h in REGION_HEADS]
    ws = [torch.randn(3 * d, d, device=device, dtype=dtype) * d ** -0.5 for d in widths]
    bs = [torch.zeros(3 * d, device=device, dtype=dtype) for d in widths]
    return (lambda: reference.region_attention(x, ws, bs, HEAD_DIM),
            lambda be: ops.region_attention(x, ws, bs, HEAD_DIM, backend=be), None)


def _cross_attention(B, L, device, dtype):
    D = D_MODEL // CROSS_HEADS
    q = torch.randn(B, L, CROSS_HEADS, D, device=device, dtype=dtype)
    k = torch.randn(B, 2 * L, CROSS_HEADS, D, device=device, dtype=dtype)
    v = torch.randn_like(k)
    return (lambda: reference.causal_cross_attention(q, k, v, 0),
            lambda be: ops.causal_cross_attention(q, k, v, 0, backend=be), None)


BUILDERS = {
    "film": _film,
    "multi_dilation_dwconv": _mdconv,
    "local_dwconv": _local,
    "region_attention": _region_attention,
    "causal_cross_attention": _cross_attention,
}


def selected(device: torch.device, ops_wanted=None, shapes_wanted=None) -> list[tuple[str, str]]:
    """The (op, shape) pairs `op_cases` builds, without building anything (empty or None
    `ops_wanted` / `shapes_wanted`: all of them)."""
    pairs = []
    for op in BUILDERS:
        if ops_wanted and op not in ops_wanted:
            continue
        for shape in SEQUENCES:
            if shapes_wanted and shape not in shapes_wanted:
                continue
            if shape == "large" and (op not in BANDWIDTH_OPS
                                     or (device.type != "cuda" and not shapes_wanted)):
                continue
            pairs.append((op, shape))
    return pairs


def op_cases(device: torch.device, dtype: torch.dtype, ops_wanted=None, shapes_wanted=None):
    for op, shape in selected(device, ops_wanted, shapes_wanted):
        B, L = SEQUENCES[shape]
        ref, run, nbytes = BUILDERS[op](B, L, device, dtype)
        yield OpCase(op, shape, ref, run, nbytes)
