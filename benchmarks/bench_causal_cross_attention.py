"""Benchmarks of causal_cross_attention (frames -> 50 Hz audio rows, 2:1 causal mask).

    pytest benchmarks/bench_causal_cross_attention.py --benchmark-only    # pytest-benchmark
    python benchmarks/bench_causal_cross_attention.py [--device cuda] [--dtype float16]

Providers side by side: reference eager, torch.compile(reference), cpu (C++), cuda, triton; GPU
providers are "skipped" without a GPU. Shapes: 8 heads of 32 (d_model 256) with S = 2 L audio
rows, on a 250-frame window at batch 4 and the 53-second clip (1325 frames, batch 2).
"""

from __future__ import annotations

import pytest
import torch

from _harness import PROVIDERS, bench_provider, parse_args, print_table
from disenttalk_fast import ops, reference

SHAPES = {"window B=4 L=250 S=500": (4, 250), "clip B=2 L=1325 S=2650": (2, 1325)}
HEADS, HEAD_DIM = 8, 32


def cross_case(B, L, device, dtype, lookahead=0):
    g = torch.Generator().manual_seed(0)
    q = torch.randn(B, L, HEADS, HEAD_DIM, generator=g).to(device, dtype)
    k = torch.randn(B, 2 * L, HEADS, HEAD_DIM, generator=g).to(device, dtype)
    v = torch.randn(B, 2 * L, HEADS, HEAD_DIM, generator=g).to(device, dtype)
    return (lambda: reference.causal_cross_attention(q, k, v, lookahead),
            lambda be: ops.causal_cross_attention(q, k, v, lookahead, backend=be), None)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("shape", list(SHAPES), ids=lambda s: s.replace(" ", "_"))
def test_causal_cross_attention(benchmark, shape, provider):
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu" and shape.startswith("clip"):
        pytest.skip("the 1325-frame clip is benchmarked on the GPU only")
    bench_provider(benchmark, provider, device, cross_case(*SHAPES[shape], device, torch.float32))


if __name__ == "__main__":
    device, dtype, providers = parse_args(__doc__.splitlines()[0])
    shapes = SHAPES if device.type == "cuda" else dict(list(SHAPES.items())[:1])
    print_table("causal_cross_attention (8 heads x 32, S = 2L)", device,
                [(n, *cross_case(*s, device, dtype)) for n, s in shapes.items()], dtype,
                providers)
