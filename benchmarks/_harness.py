"""Shared plumbing of the per-op benchmarks (bench_<op>.py): providers, timing, the table.

Providers, side by side in one run on one device: the reference in eager mode, torch.compile of
the reference, and the fused backends (cpu = C++, cuda, triton). A provider that cannot run here
is printed as "skipped" (pytest: skipped), never as a failure. Bandwidth-bound ops print achieved
GB/s from a bytes-moved model (each tensor read or written once), and on a GPU the fraction of
the device's peak memory bandwidth. Providers, timing and bandwidth come from
disenttalk_fast.bench, which `disenttalk bench` uses too.
"""

from __future__ import annotations

import argparse
import time

import torch

from disenttalk_fast.bench import providers as _providers
from disenttalk_fast.bench.bandwidth import peak_gbps
from disenttalk_fast.bench.timing import measure

PROVIDERS = _providers.PROVIDERS


def skip_reason(provider: str, device: torch.device,
                dtype: torch.dtype = torch.float32) -> str | None:
    if provider == "cpu" and dtype != torch.float32:
        return "the C++ kernels are fp32"
    return _providers.unavailable_reason(provider, device)


def make_callable(provider: str, reference_fn, fused_fn):
    """reference_fn(): the reference on prepared inputs; fused_fn(backend): the op."""
    if provider == "eager":
        return reference_fn
    if provider == "compile":
        compiled = torch.compile(reference_fn)
        return compiled
    return lambda: fused_fn(provider)


# Set by --cpu-time: time CPU work by the calling thread's CPU time instead of wall time. With one
# thread every provider runs on the calling thread, and thread CPU time does not count the time
# the scheduler hands to other processes — the honest measure on a shared, overloaded machine.
CLOCK = {"fn": time.perf_counter}


def time_ms(fn, device: torch.device, budget_s: float = 1.0, warmup: int = 3) -> float:
    """Median time of fn() in ms (CUDA: events on the current stream; CPU: CLOCK)."""
    return measure(fn, device, warmup=warmup, budget_s=budget_s, max_repeats=200,
                   clock=CLOCK["fn"]).median_ms


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import os
    import platform

    load = ", load average %.1f" % os.getloadavg()[0] if hasattr(os, "getloadavg") else ""
    return (f"CPU {platform.processor() or platform.machine()} ({os.cpu_count()} cores), "
            f"{torch.get_num_threads()} threads{load}")


def print_table(title: str, device: torch.device, cases, dtype: torch.dtype,
                providers=PROVIDERS) -> None:
    """cases: iterable of (name, reference_fn, fused_fn, bytes_moved or None)."""
    peak = peak_gbps(device) if device.type == "cuda" else None
    clock = ", thread CPU time" if CLOCK["fn"] is time.thread_time else ""
    print(f"\n{title} — {device_name(device)}, {str(dtype).replace('torch.', '')}{clock}")
    if peak:
        print(f"peak memory bandwidth {peak[0]:.0f} GB/s ({peak[1]})")
    print(f"{'case':<34}{'provider':<10}{'ms':>10}{'vs eager':>10}{'GB/s':>10}"
          f"{'% peak':>9}")
    for name, ref_fn, fused_fn, nbytes in cases:
        eager_ms = None
        for provider in providers:
            reason = skip_reason(provider, device, dtype)
            if reason:
                print(f"{name:<34}{provider:<10}{'skipped':>10}  ({reason})")
                continue
            ms = time_ms(make_callable(provider, ref_fn, fused_fn), device)
            eager_ms = ms if provider == "eager" else eager_ms
            ratio = f"{eager_ms / ms:.2f}x" if eager_ms else "-"
            gbps = nbytes / (ms * 1e-3) / 1e9 if nbytes else None
            frac = f"{100 * gbps / peak[0]:.0f}%" if gbps and peak else "-"
            print(f"{name:<34}{provider:<10}{ms:>10.3f}{ratio:>10}"
                  f"{(f'{gbps:.1f}' if gbps else '-'):>10}{frac:>9}")


def parse_args(description: str):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--providers", default=",".join(PROVIDERS),
                   help="comma-separated subset of " + ",".join(PROVIDERS))
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for PyTorch and the C++ kernels (default: PyTorch's)")
    p.add_argument("--cpu-time", action="store_true",
                   help="CPU only, with --threads 1: time by thread CPU time, not wall time")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.cpu_time:
        if args.device != "cpu" or torch.get_num_threads() != 1:
            p.error("--cpu-time needs --device cpu --threads 1")
        CLOCK["fn"] = time.thread_time
    return (torch.device(args.device), getattr(torch, args.dtype),
            tuple(args.providers.split(",")))


def bench_provider(benchmark, provider: str, device: torch.device, case) -> None:
    """One pytest-benchmark cell: `case` = (reference_fn, fused_fn, bytes_moved or None).
    Skips (never fails) a provider that cannot run here; warms up (and compiles) untimed."""
    import pytest

    reason = skip_reason(provider, device)
    if reason:
        pytest.skip(reason)
    ref_fn, fused_fn, nbytes = case
    fn = make_callable(provider, ref_fn, fused_fn)
    fn()
    if nbytes:
        benchmark.extra_info["bytes_moved"] = nbytes
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    benchmark(lambda: (fn(), sync()))
