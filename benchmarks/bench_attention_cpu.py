"""CPU comparison of the two attention ops: reference eager, torch.compile(reference), C++.

    python benchmarks/bench_attention_cpu.py [--threads 1,2] [--repeats 15] [--no-compile]

Shapes: the default model on a 250-frame window at batch 4 (2 samples x the two guidance
branches): region_attention with d = 256, regions (3, 2, 3) heads x 32; causal_cross_attention
with 8 heads x 32 and S = 500 audio rows. The providers are run interleaved, `repeats` rounds,
and each keeps its best round, which is the most stable statistic on a shared machine. Two
clocks: wall time, and (one thread only) the CPU time of the calling thread, which ignores time
spent waiting for a core that other processes hold.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from disenttalk_fast import _native, ops, reference

B, L, HEAD_DIM, REGION_HEADS, CROSS_HEADS = 4, 250, 32, (3, 2, 3), 8


def cases():
    g = torch.Generator().manual_seed(0)
    widths = [h * HEAD_DIM for h in REGION_HEADS]
    x = torch.randn(B, L, sum(widths), generator=g)
    ws = [torch.randn(3 * w, w, generator=g) * w ** -0.5 for w in widths]
    bs = [0.1 * torch.randn(3 * w, generator=g) for w in widths]
    q = torch.randn(B, L, CROSS_HEADS, HEAD_DIM, generator=g)
    k = torch.randn(B, 2 * L, CROSS_HEADS, HEAD_DIM, generator=g)
    v = torch.randn(B, 2 * L, CROSS_HEADS, HEAD_DIM, generator=g)
    return {
        "region_attention B=4 L=250 d=256": (
            lambda: reference.region_attention(x, ws, bs, HEAD_DIM),
            lambda: ops.region_attention(x, ws, bs, HEAD_DIM, backend="cpu")),
        "causal_cross_attention B=4 L=250 S=500": (
            lambda: reference.causal_cross_attention(q, k, v, 0),
            lambda: ops.causal_cross_attention(q, k, v, 0, backend="cpu")),
    }


def best_times(fns: dict, repeats: int):
    """{name: (best wall ms, best thread-CPU ms)} over interleaved rounds."""
    for fn in fns.values():
        fn()
    best = {name: [float("inf"), float("inf")] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            w0, c0 = time.perf_counter(), time.thread_time()
            fn()
            c1, w1 = time.thread_time(), time.perf_counter()
            best[name][0] = min(best[name][0], (w1 - w0) * 1e3)
            best[name][1] = min(best[name][1], (c1 - c0) * 1e3)
    return best


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", default="1,2")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile(reference)")
    args = p.parse_args()
    if not _native.cpu_available():
        raise SystemExit("bench_attention_cpu: the C++ kernels are not built")
    print(f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}, torch {torch.__version__}")
    for threads in map(int, args.threads.split(",")):
        torch.set_num_threads(threads)
        print(f"\n{threads} thread(s)   best of {args.repeats} interleaved rounds")
        print(f"{'case':<40}{'provider':<10}{'wall ms':>9}{'vs eager':>10}"
              + (f"{'cpu ms':>9}{'vs eager':>10}" if threads == 1 else ""))
        for name, (ref_fn, fused_fn) in cases().items():
            fns = {"eager": ref_fn, "cpu": fused_fn}
            if not args.no_compile:
                fns["compile"] = torch.compile(ref_fn)
            best = best_times(fns, args.repeats)
            eager_wall, eager_cpu = best["eager"]
            for provider, (wall, cpu) in best.items():
                line = f"{name:<40}{provider:<10}{wall:>9.2f}{eager_wall / wall:>9.2f}x"
                if threads == 1:
                    line += f"{cpu:>9.2f}{eager_cpu / cpu:>9.2f}x"
                print(line)


if __name__ == "__main__":
    main()
