"""Shared plumbing of bench_dwconv.py and bench_film.py: providers, timing, the printed table.

Providers, side by side in one run on one device: the reference in eager mode, torch.compile of
the reference, and the fused backends (cpu = C++, cuda, triton). A provider that cannot run here
is printed as "skipped" (pytest: skipped), never as a failure. Bandwidth-bound ops print achieved
GB/s from a bytes-moved model (each tensor read or written once), and on a GPU the fraction of
the device's peak memory bandwidth.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from disenttalk_fast import _native, backends

PROVIDERS = ("eager", "compile", "cpu", "cuda", "triton")

# Datasheet peak DRAM bandwidth (GB/s) by device-name fragment; unknown GPUs fall back to a
# measured device-to-device copy (which understates the peak by ~10%, flagged in the table).
PEAK_GBPS = {"H200": 4800.0, "H100 SXM": 3350.0, "H100 80GB HBM3": 3350.0, "H100 PCIe": 2000.0,
             "H100 NVL": 3900.0, "A100-SXM4-80GB": 2039.0, "A100 80GB PCIe": 1935.0,
             "A100-SXM4-40GB": 1555.0, "A100-PCIE-40GB": 1555.0, "L40S": 864.0, "L4": 300.0}


def skip_reason(provider: str, device: torch.device,
                dtype: torch.dtype = torch.float32) -> str | None:
    if provider in ("eager", "compile"):
        return None
    if provider == "cpu":
        if dtype != torch.float32:
            return "the C++ kernels are fp32"
        if device.type != "cpu":
            return "the C++ kernels take CPU tensors"
        return None if _native.cpu_available() else "C++ kernels not built"
    if provider == "cuda":
        if device.type != "cuda":
            return "no CUDA device"
        return None if _native.cuda_compiled() else "CUDA kernels not compiled in"
    if provider == "triton":
        if not backends.triton_available():
            return "triton not installed"
        return None if device.type == "cuda" else "needs a GPU (the interpreter is no benchmark)"
    raise ValueError(provider)


def make_callable(provider: str, reference_fn, fused_fn):
    """reference_fn(): the reference on prepared inputs; fused_fn(backend): the op."""
    if provider == "eager":
        return reference_fn
    if provider == "compile":
        compiled = torch.compile(reference_fn)
        return compiled
    return lambda: fused_fn(provider)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# Set by --cpu-time: time CPU work by the calling thread's CPU time instead of wall time. With one
# thread every provider runs on the calling thread, and thread CPU time does not count the time
# the scheduler hands to other processes — the honest measure on a shared, overloaded machine.
CLOCK = {"fn": time.perf_counter}


def time_ms(fn, device: torch.device, budget_s: float = 1.0, warmup: int = 3) -> float:
    """Median time of fn() in ms (CUDA: events on the current stream; CPU: CLOCK)."""
    for _ in range(warmup):
        fn()
    sync(device)
    times, start = [], time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - start < budget_s and len(times) < 200):
        if device.type == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b))
        else:
            clock = CLOCK["fn"]
            t0 = clock()
            fn()
            times.append((clock() - t0) * 1e3)
    return statistics.median(times)


def peak_gbps(device: torch.device) -> tuple[float, str] | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, gbps in PEAK_GBPS.items():
        if key in name:
            return gbps, "datasheet"
    n = (256 << 20) // 4
    src = torch.ones(n, device=device)
    dst = torch.empty_like(src)
    ms = time_ms(lambda: dst.copy_(src), device, budget_s=0.3)
    return 2 * n * 4 / (ms * 1e-3) / 1e9, "measured copy"


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
    peak = peak_gbps(device)
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
