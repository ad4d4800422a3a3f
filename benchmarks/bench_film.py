"""Benchmarks of film (FiLM + residual) and film_norm (+ the next block's region LayerNorm).

    pytest benchmarks/bench_film.py --benchmark-only        # pytest-benchmark, one row each
    python benchmarks/bench_film.py [--device cuda] [--dtype float16]     # table with ratios

Both ops are bandwidth-bound: the table prints achieved GB/s (x, residual read; out, normed
written; gamma/beta ignored) and on a GPU the fraction of peak memory bandwidth. Shapes: the
default model's (d_model 256, regions 96/64/96) windows, the 53-second clip, and one large case
(B=8, L=8192) that shows the bandwidth ceiling.
"""

from __future__ import annotations

import pytest
import torch

from _harness import PROVIDERS, bench_provider, parse_args, print_table
from disenttalk_fast import ops, reference

SHAPES = {"window B=4 L=250 C=256": (4, 250, 256), "clip B=2 L=1325 C=256": (2, 1325, 256),
          "large B=8 L=8192 C=256": (8, 8192, 256)}
GROUPS = [96, 64, 96]  # the default model's lip / eye / global channel groups


def _inputs(B, L, C, device, dtype):
    g = torch.Generator().manual_seed(0)
    t = [torch.randn(B, L, C, generator=g), 1 + 0.1 * torch.randn(B, C, generator=g),
         torch.randn(B, C, generator=g), torch.randn(B, L, C, generator=g),
         torch.ones(C), torch.zeros(C)]
    return [a.to(device=device, dtype=dtype) for a in t]


def film_case(B, L, C, device, dtype):
    x, g, b, r, _, _ = _inputs(B, L, C, device, dtype)
    nbytes = 3 * x.numel() * x.element_size()
    return (lambda: reference.film(x, g, b, r),
            lambda be: ops.film(x, g, b, r, backend=be), nbytes)


def film_norm_case(B, L, C, device, dtype):
    x, g, b, r, nw, nb = _inputs(B, L, C, device, dtype)
    nbytes = 4 * x.numel() * x.element_size()
    return (lambda: reference.film_norm(x, g, b, r, nw, nb, 1e-5, GROUPS),
            lambda be: ops.film_norm(x, g, b, r, nw, nb, 1e-5, GROUPS, backend=be), nbytes)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("shape", list(SHAPES)[:2], ids=lambda s: s.replace(" ", "_"))
@pytest.mark.parametrize("op", ["film", "film_norm"])
def test_film(benchmark, op, shape, provider):
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    build = film_case if op == "film" else film_norm_case
    bench_provider(benchmark, provider, device, build(*SHAPES[shape], device, torch.float32))


if __name__ == "__main__":
    device, dtype, providers = parse_args(__doc__.splitlines()[0])
    shapes = SHAPES if device.type == "cuda" else dict(list(SHAPES.items())[:2])
    print_table("film (FiLM + residual)", device,
                [(n, *film_case(*s, device, dtype)) for n, s in shapes.items()], dtype, providers)
    print_table("film_norm (FiLM + residual + region LayerNorm 96/64/96)", device,
                [(n, *film_norm_case(*s, device, dtype)) for n, s in shapes.items()], dtype,
                providers)
