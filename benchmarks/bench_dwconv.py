"""Benchmarks of multi_dilation_dwconv (3 dilated depthwise convs + pointwise) and local_dwconv.

    pytest benchmarks/bench_dwconv.py --benchmark-only      # pytest-benchmark, one row each
    python benchmarks/bench_dwconv.py [--device cuda] [--dtype float16]   # table with ratios

Shapes: the default model (d_model 256): a 250-frame window at batch 4 and 2, the paper's
53-second clip (1325 frames) at batch 2 (the two guidance branches), and a 20-frame streaming
chunk at batch 2.
"""

from __future__ import annotations

import pytest
import torch

from _harness import PROVIDERS, bench_provider, parse_args, print_table
from disenttalk_fast import ops, reference

SHAPES = {"window B=4 L=250 C=256": (4, 250, 256), "window B=2 L=250 C=256": (2, 250, 256),
          "clip B=2 L=1325 C=256": (2, 1325, 256), "stream B=2 L=20 C=256": (2, 20, 256)}


def mdd_case(B, L, C, device, dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, L, C, generator=g)
    args = [x, 0.5 * torch.randn(3, C, 3, generator=g), 0.1 * torch.randn(3, C, generator=g),
            torch.randn(C, 3 * C, generator=g) / (3 * C) ** 0.5, 0.1 * torch.randn(C, generator=g)]
    args = [a.to(device=device, dtype=dtype) for a in args]
    nbytes = (2 * x.numel() + args[3].numel()) * args[0].element_size()  # x, out, pw_weight
    return (lambda: reference.multi_dilation_dwconv(*args),
            lambda be: ops.multi_dilation_dwconv(*args, backend=be), nbytes)


def local_case(B, L, C, device, dtype):
    g = torch.Generator().manual_seed(0)
    args = [torch.randn(B, L, C, generator=g), torch.randn(C, 5, generator=g) / 5 ** 0.5,
            0.1 * torch.randn(C, generator=g)]
    args = [a.to(device=device, dtype=dtype) for a in args]
    nbytes = 2 * args[0].numel() * args[0].element_size()  # x, out
    return (lambda: reference.local_dwconv(*args),
            lambda be: ops.local_dwconv(*args, backend=be), nbytes)


def _device():
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("shape", list(SHAPES), ids=lambda s: s.replace(" ", "_"))
@pytest.mark.parametrize("op", ["multi_dilation_dwconv", "local_dwconv"])
def test_dwconv(benchmark, op, shape, provider):
    device = _device()
    build = mdd_case if op == "multi_dilation_dwconv" else local_case
    bench_provider(benchmark, provider, device, build(*SHAPES[shape], device, torch.float32))


if __name__ == "__main__":
    device, dtype, providers = parse_args(__doc__.splitlines()[0])
    print_table("multi_dilation_dwconv (dilations 1, 2, 4; Cout = C)", device,
                [(name, *mdd_case(*shape, device, dtype)) for name, shape in SHAPES.items()],
                dtype, providers)
    print_table("local_dwconv (k = 5)", device,
                [(name, *local_case(*shape, device, dtype)) for name, shape in SHAPES.items()],
                dtype, providers)
