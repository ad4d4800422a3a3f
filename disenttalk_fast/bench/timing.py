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
            max_repeats: int = 100, budget_s: float = 1.0, clock=time.perf_counter) -> Timing:
    """Run fn() `warmup` times, then repeat until `budget_s` is spent (within the repeat bounds).

    `clock` times CPU work (seconds); time.thread_time counts only the calling thread's CPU time,
    the honest measure with one thread on a shared, loaded machine."""
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
            t0 = clock()
            fn()
            times.append((clock() - t0) * 1e3)
        if len(times) >= min_repeats and time.perf_counter() - start_all > budget_s:
            break
    return Timing(statistics.median(times), min(times), len(times))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)

