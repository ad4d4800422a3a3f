"""Benchmarks of region_attention (block-diagonal QKV + rotary + attention per region head).

    pytest benchmarks/bench_region_attention.py --benchmark-only     # pytest-benchmark rows
    python benchmarks/bench_region_attention.py [--device cuda] [--dtype float16]   # table

Providers side by side: the reference eager, torch.compile(reference), and the fused backends
(cpu = C++, cuda, triton); GPU providers are "skipped" without a GPU. Shapes: the default model
(d_model 256, regions (3, 2, 3) heads x 32) on a 250-frame window at batch 4 (2 samples x the
two classifier-free-guidance branches) and the paper's 53-second clip (1325 frames, batch 2).
See benchmarks/bench_attention_cpu.py for the CPU comparison reported in docs/.
"""

from __future__ import annotations

import pytest
import torch

from _harness import PROVIDERS, bench_provider, parse_args, print_table
from disenttalk_fast import ops, reference

SHAPES = {"window B=4 L=250": (4, 250), "clip B=2 L=1325": (2, 1325)}
HEAD_DIM, REGION_HEADS = 32, (3, 2, 3)


def region_case(B, L, device, dtype, head_dim=HEAD_DIM, region_heads=REGION_HEADS):
    g = torch.Generator().manual_seed(0)
    widths = [h * head_dim for h in region_heads]
    x = torch.randn(B, L, sum(widths), generator=g)
    ws = [torch.randn(3 * w, w, generator=g) * w ** -0.5 for w in widths]
    bs = [0.1 * torch.randn(3 * w, generator=g) for w in widths]
    x, ws, bs = (x.to(device, dtype), [w.to(device, dtype) for w in ws],
                 [b.to(device, dtype) for b in bs])
    return (lambda: reference.region_attention(x, ws, bs, head_dim),
            lambda be: ops.region_attention(x, ws, bs, head_dim, backend=be), None)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("shape", list(SHAPES), ids=lambda s: s.replace(" ", "_"))
def test_region_attention(benchmark, shape, provider):
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu" and shape.startswith("clip"):
        pytest.skip("the 1325-frame clip is benchmarked on the GPU only")
    bench_provider(benchmark, provider, device, region_case(*SHAPES[shape], device, torch.float32))


if __name__ == "__main__":
    device, dtype, providers = parse_args(__doc__.splitlines()[0])
    shapes = SHAPES if device.type == "cuda" else dict(list(SHAPES.items())[:1])
    print_table("region_attention (regions 96/64/96, head_dim 32)", device,
                [(n, *region_case(*s, device, dtype)) for n, s in shapes.items()], dtype,
                providers)
