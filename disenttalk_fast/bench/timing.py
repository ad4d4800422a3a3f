"""Wall-clock timing of a callable on the CPU or a CUDA device.

Median over repeats after warm-up (warm-up also absorbs torch.compile's compilation). CUDA work
is timed with events on the current stream, so launch overhead is included as a user sees it.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from disenttalk_fast._torch import torch


@dataclass
class Timing:
    median_ms: float
    min_ms: float
    repeats: int


def measure(fn, device: torch.device, *, warmup: int = 3, min_repeats: int = 5,
            max_repeats: int = 100, budget_s: float = 1.0) -> Timing:
    """Run fn() `warmup` times, then repeat until `budget_s` is spent (within the repeat bounds)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times: list[float] = []
    start_all = time.perf_counter()
    while len(times) < max_repeats:
        if device.type == "cuda":
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            fn()
            end.record()
            end.synchronize()
            times.append(begin.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
        if len(times) >= min_repeats and time.perf_counter() - start_all > budget_s:
            break
    return Timing(statistics.median(times), min(times), len(times))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def copy_bandwidth_gbps(device: torch.device, nbytes: int = 256 << 20) -> float:
    """Achievable memory bandwidth measured with a device-to-device copy (read + write)."""
    n = nbytes // 4
    src = torch.empty(n, dtype=torch.float32, device=device).fill_(1.0)
    dst = torch.empty_like(src)
    t = measure(lambda: dst.copy_(src), device, warmup=2, min_repeats=5, budget_s=0.5)
    return 2 * n * 4 / (t.median_ms * 1e-3) / 1e9
