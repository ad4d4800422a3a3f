"""Streaming latency of `Streamer` on this machine: algorithmic + measured compute, per setting.

    python benchmarks/bench_stream.py                       # default-size model, cpu + reference
    python benchmarks/bench_stream.py --backends cpu --steps 5 10 --hops 2 4 --threads 1

A default-size model (DisentTalkConfig(): d_model 256, 6 blocks, 64 dims) with random weights —
compute time does not depend on the weights — as `load_model` builds it: a FastDenoiser for the
fused backends, the reference DisentTalkDenoiser for "reference". Audio (a synthetic voiced signal)
is pushed in `--chunk-ms` chunks; each window's wall time, and that of the audio path run as each
chunk arrives (conditioning, mel rows, encoding), are measured inside the Streamer. Latency is
reported from the start of a frame's audio to its emission in steady state (see
disenttalk_fast.stream): algorithmic = hop x 40 ms + 2.5 ms mel lookahead + chunk_ms (worst-case
buffering), compute = mean (and max) wall time of one window, audio = the audio path per chunk
and per hop, total = algorithmic + mean compute + audio of one chunk. RTF = (compute + audio per
hop) / hop duration; below 1 the stream keeps up with live audio. "cpu ms" is the process
CPU time per window: on a CPU shared with other jobs the wall time includes waiting for a core, and
with one torch thread the CPU time approximates the wall time on an idle core ("total(cpu)"). The
load average is printed before and after so the reader can judge the contention.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from disenttalk_fast.config import DisentTalkConfig
from disenttalk_fast.model import DisentTalkDenoiser
from disenttalk_fast.model.fast import as_fast
from disenttalk_fast.stream import Streamer

TARGET_MS = 300.0


def voiced(seconds, sr=16000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    x = 0.3 * np.sin(2 * np.pi * 150 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (x + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def run_one(model, backend, steps, hop, overlap, chunk_ms, seconds, guidance):
    # What load_model gives users: a FastDenoiser for the fused backends, else the reference.
    model = as_fast(model, backend)
    s = Streamer(model, hop_frames=hop, overlap_frames=overlap, steps=steps, chunk_ms=chunk_ms,
                 guidance=guidance)
    x = voiced(seconds)
    n = int(16000 * chunk_ms / 1000)
    # Warm up (first-call allocations, kernel init) on one window, then measure from scratch.
    s.push(x[: 640 * (hop + overlap) + 400])
    s.reset()
    s.reset_timing()
    t0 = time.perf_counter()
    for i in range(0, x.size, n):
        s.push(x[i:i + n])
    s.flush()
    wall = time.perf_counter() - t0
    lat = s.latency()
    lat["wall_s"] = wall
    return lat


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backends", nargs="+", default=["cpu", "reference"])
    ap.add_argument("--steps", nargs="+", type=int, default=[5, 10])
    ap.add_argument("--hops", nargs="+", type=int, default=[4])
    ap.add_argument("--overlap", type=int, default=12)
    ap.add_argument("--chunk-ms", type=float, default=20.0)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--guidance", nargs="+", type=float, default=[2.0],
                    help="CFG scales (1.0 = conditional branch only: half the compute)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = DisentTalkDenoiser(DisentTalkConfig()).eval()
    params = sum(p.numel() for p in model.parameters())
    print(f"load average before: {', '.join(f'{v:.1f}' for v in os.getloadavg())} "
          f"on {os.cpu_count()} cores")
    print(f"device: CPU ({platform.processor() or platform.machine()}), torch threads "
          f"{torch.get_num_threads()}, model {params / 1e6:.2f} M params (default config), "
          f"chunk {args.chunk_ms:g} ms, {args.seconds:g} s of audio")
    head = (f"{'backend':<10}{'cfg':>5}{'steps':>6}{'hop':>5}{'win':>5}{'algo ms':>9}{'comp ms':>9}"
            f"{'max ms':>8}{'audio/hop':>10}{'total ms':>10}{'RTF':>6}  <= {TARGET_MS:.0f} ms"
            f"{'cpu ms':>8}{'total(cpu)':>11}")
    print(head)
    print("-" * len(head))
    grid = [(b, g, s, h) for b in args.backends for g in args.guidance for s in args.steps
            for h in args.hops]
    for backend, guidance, steps, hop in grid:
        try:
            lat = run_one(model, backend, steps, hop, args.overlap, args.chunk_ms,
                          args.seconds, guidance)
        except Exception as exc:  # e.g. a backend not built here
            print(f"{backend:<10}{guidance:>5g}{steps:>6}{hop:>5}  skipped: "
                  f"{str(exc).splitlines()[0]}")
            continue
        ok = "yes" if lat["total_ms"] <= TARGET_MS else "no"
        print(f"{backend:<10}{guidance:>5g}{steps:>6}{hop:>5}{lat['window_frames']:>5}"
              f"{lat['algorithmic_ms']:>9.1f}{lat['compute_ms']:>9.1f}"
              f"{lat['compute_max_ms']:>8.1f}{lat['audio_ms_per_hop']:>10.1f}"
              f"{lat['total_ms']:>10.1f}"
              f"{lat['real_time_factor']:>6.2f}  {ok:>9}{lat['compute_cpu_ms']:>8.1f}"
              f"{lat['algorithmic_ms'] + lat['compute_cpu_ms'] + lat['audio_ms_per_chunk']:>11.1f}")
    print(f"load average after: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")

if __name__ == "__main__":
    main()
