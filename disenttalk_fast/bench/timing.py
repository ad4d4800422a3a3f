"""Wall-clock timing of callables on the CPU or a CUDA device.

Median over repeats after warm-up (warm-up also absorbs torch.compile's compilation). CUDA work
is timed with events on the current stream, so launch overhead is included as a user sees it.

`measure_interleaved` times several callables that are compared with each other (the providers
of one benchmark row) in rounds, one call of each per round: a burst of other work on a shared
machine then slows every provider alike instead of whichever was being timed, so the ratios hold
where the absolute times do not.
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
        times.append(_time_one(fn, device, clock))
        if len(times) >= min_repeats and time.perf_counter() - start_all > budget_s:
            break
    return Timing(statistics.median(times), min(times), len(times))


def measure_interleaved(fns: dict, device: torch.device, *, warmup: int = 3,
                        min_repeats: int = 5, max_repeats: int = 100, budget_s: float = 1.0,
                        clock=time.perf_counter, on_warm=None) -> dict:
    """Time each fns[name]() in rounds (one call of each per round) after `warmup` calls of
    each, until every one has `min_repeats` times and `budget_s` per callable is spent (or
    `max_repeats` rounds). Returns name -> Timing, or the exception a callable raised (it is
    dropped from later rounds; the others go on). `on_warm(name, seconds)` after each warm-up
    (which includes torch.compile's compilation), so a long one shows progress."""
    results: dict = {}
    live = {}
    for name, fn in fns.items():
        start = time.perf_counter()
        try:
            for _ in range(warmup):
                fn()
            _sync(device)
        except Exception as exc:  # reported per callable by the caller
            results[name] = exc
            continue
        live[name] = fn
        if on_warm:
            on_warm(name, time.perf_counter() - start)
    times: dict[str, list[float]] = {name: [] for name in live}
    start_all = time.perf_counter()
    rounds = 0
    while live and rounds < max_repeats:
        for name, fn in list(live.items()):
            try:
                times[name].append(_time_one(fn, device, clock))
            except Exception as exc:
                results[name] = exc
                del live[name]
        rounds += 1
        if rounds >= min_repeats and time.perf_counter() - start_all > budget_s * len(live):
            break
    for name in live:
        t = times[name]
        results[name] = Timing(statistics.median(t), min(t), len(t))
    return {name: results[name] for name in fns}


def _time_one(fn, device: torch.device, clock) -> float:
    """One call of fn in ms."""
    if device.type == "cuda":
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        fn()
        end.record()
        end.synchronize()
        return begin.elapsed_time(end)
    t0 = clock()
    fn()
    return (clock() - t0) * 1e3


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)

