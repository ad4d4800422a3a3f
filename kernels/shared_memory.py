"""Fitting the Triton programs into a GPU's shared memory.

Triton checks a program's shared memory only when a GPU loads it, and the limit per block
differs by card: 232,448 bytes on an H100 / H200, 166,912 on an A100, 101,376 on RTX 30xx /
40xx / 50xx and L4 / L40S cards. A block plan that suits an H100 is refused on the others.

So the plans (`flash_attention.flash_block_n`, `dwconv.mdd_blocks`) start from the widest block
the device's limit allows, by the sizes the programs compile to. Those sizes were measured by
compiling for sm_80, sm_86 and sm_90 (equal on all three, except the attention with TF32
products, larger on sm_90; the plans keep the largest); the tests compile the chosen plans again
for each limit and check them.

`launch_narrowing` is the backstop for a Triton version that lays a program out larger: on a
refusal it halves the block and remembers the one that fitted, so only the first launch per
device and dtype pays.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from triton.runtime.errors import OutOfResources

# The smallest limit any plan is sized for (sm_86 / sm_89 / sm_120 cards).
SMALLEST_LIMIT = 101_376

# (op, device, dtype, ...) -> the widest block that fitted there, learnt from a refusal.
_FITTING: dict[tuple, int] = {}


def device_limit(device: torch.device) -> int | None:
    """Shared memory per block (opt-in maximum) of a CUDA device; None off the GPU (the
    interpreter has no limit) or where PyTorch does not report it (the narrowing launch then
    finds the fitting block)."""
    if device.type != "cuda":
        return None
    index = device.index if device.index is not None else torch.cuda.current_device()
    return _limit_of(index)


@functools.lru_cache(maxsize=None)
def _limit_of(index: int) -> int | None:
    props = torch.cuda.get_device_properties(index)
    return getattr(props, "shared_memory_per_block_optin", None)


def launch_narrowing(op: str, key: tuple, block: int, narrowest: int,
                     launch_with: Callable[[int], None]) -> None:
    """launch_with(block), halving `block` down to `narrowest` while the GPU refuses the program
    for its shared memory (refused at load, before anything runs or is written). Nothing fits:
    a one-line RuntimeError naming the op and the way out."""
    key = (op, *key)
    block = min(block, _FITTING.get(key, block))
    while True:
        try:
            launch_with(block)
            return
        except OutOfResources as exc:
            if block <= narrowest:
                raise RuntimeError(f"{op}: the Triton kernel does not fit this GPU's shared "
                                   f"memory even at its narrowest block ({exc}); use "
                                   f"backend='cuda'") from None
            block //= 2
            _FITTING[key] = block


def launch(kernel, grid, op: str, *args, **kwargs) -> None:
    """kernel[grid](...) for a program with a single block plan: a shared-memory refusal is the
    same one-line RuntimeError as `launch_narrowing`'s, with nothing to narrow."""
    launch_narrowing(op, (), 1, 1, lambda _: kernel[grid](*args, **kwargs))
