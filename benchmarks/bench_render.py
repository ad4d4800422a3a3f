#!/usr/bin/env python
"""Rendering throughput on a BFM-size mesh (35,721 vertices, 70,688 triangles; the real BFM front
face has 35,709 / 70,789) at 256x256: frames/s of the whole render() and a per-stage breakdown,
per backend. The mesh is a face-shaped height field with a random smooth 64-dim expression basis
(exp ~ N(0, 1)), so no licensed file is needed.

    python benchmarks/bench_render.py [--frames 64] [--size 256] [--backends cpu,cuda]
                                      [--with-reference]   # the PyTorch reference, 1 small frame
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from disenttalk_fast import _native
from disenttalk_fast.facemodel.builtin import _smooth_fields, half_width, height
from disenttalk_fast.facemodel.morphable import MorphableModel
from disenttalk_fast.render import camera, lighting, render
from disenttalk_fast.render.rasterize import rasterize, rasterize_reference


def bfm_size_model(n=189, seed=0) -> MorphableModel:
    v, u = np.meshgrid(np.linspace(-1.0, 0.95, n), np.linspace(-1.0, 1.0, n), indexing="ij")
    x, y = u * half_width(v), v
    pos = np.stack([x, y, height(x, y)], -1).reshape(-1, 3)
    r, c = np.meshgrid(np.arange(n - 1), np.arange(n - 1), indexing="ij")
    a = (r * n + c).ravel()
    tris = np.concatenate([np.stack([a, a + 1, a + n + 1], 1), np.stack([a, a + n + 1, a + n], 1)])
    g = torch.Generator().manual_seed(seed)
    V = len(pos)
    # Smooth, low-frequency expression modes like a real 3DMM's (random per-vertex noise would
    # crumple the mesh into overlapping slivers no face model produces).
    exp_basis = torch.as_tensor(_smooth_fields(pos, 64, np.random.default_rng(seed), 0.02, 0.3),
                                dtype=torch.float32)
    return MorphableModel(
        mean_shape=torch.as_tensor(pos, dtype=torch.float32),
        id_basis=torch.randn(3 * V, 80, generator=g) * 1e-3, exp_basis=exp_basis,
        triangles=torch.as_tensor(tris), mean_albedo=torch.full((V, 3), 0.7),
        name="bfm-size test mesh")


def timed(fn, repeat=3):
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best


def stages(model, exp, size, backend, device):
    """Seconds per batch for each stage of render(), run separately."""
    from disenttalk_fast.render.render import _prepare_cpu, _prepare_torch

    model = model.to(device)
    exp = exp.to(device)
    pose = torch.zeros(len(exp), 6, device=device)
    gamma = lighting.as_gamma(None, len(exp), device)
    tris = model.triangles
    tris32 = tris.to(torch.int32)
    albedo = model.mean_albedo
    out = {}
    verts = model.vertices(exp)
    out["vertices (basis matmul)"] = timed(lambda: model.vertices(exp))
    args = (verts, tris, tris32, albedo, pose, gamma, size, True)
    out["per-vertex stage, PyTorch"] = timed(lambda: _prepare_torch(*args))
    if backend == "cpu":
        out["per-vertex stage, C++ fused"] = timed(lambda: _prepare_cpu(*args))
    screen, colour = (_prepare_cpu if backend == "cpu" else _prepare_torch)(*args)
    out["rasterise + interpolate"] = timed(
        lambda: rasterize(screen, tris32, colour, size, size, backend=backend))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--backends", default="cpu,cuda")
    ap.add_argument("--with-reference", action="store_true")
    args = ap.parse_args()

    model = bfm_size_model()
    print(f"mesh: {model.num_vertices} vertices, {model.num_triangles} triangles; "
          f"{args.frames} frames at {args.size}x{args.size}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}; "
          f"cuda: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}")
    g = torch.Generator().manual_seed(1)
    exp = torch.randn(args.frames, 64, generator=g)
    for backend in args.backends.split(","):
        device = "cuda" if backend == "cuda" else "cpu"
        if backend == "cuda" and not (torch.cuda.is_available() and _native.cuda_compiled()):
            print(f"\n[{backend}] skipped (no CUDA device or kernels not compiled)")
            continue
        if backend == "cpu" and not _native.cpu_available():
            print(f"\n[{backend}] skipped (C++ kernels not built)")
            continue
        m = model.to(device)
        run = lambda: render(exp, m, args.size, backend=backend, device=device,  # noqa: E731
                             batch_size=args.frames)
        total = timed(run)
        cpu0 = time.process_time()
        run()
        cpu = time.process_time() - cpu0
        print(f"\n[{backend}] render(): {args.frames / total:8.1f} frames/s "
              f"({1000 * total / args.frames:.2f} ms/frame wall, end to end incl. uint8 copy; "
              f"process CPU time {1000 * cpu / args.frames:.2f} ms/frame over all threads)")
        for name, sec in stages(model, exp, args.size, backend, device).items():
            print(f"    {name:<28s} {1000 * sec / args.frames:7.2f} ms/frame")
    if args.with_reference:
        size = 32
        verts, _ = camera.transform(model.vertices(exp[:1]), torch.zeros(1, 6))
        screen = camera.project(verts, size)
        sec = timed(lambda: rasterize_reference(screen, model.triangles, model.mean_albedo,
                                                size, size, chunk=4096), repeat=1)
        fast = timed(lambda: rasterize(screen, model.triangles, model.mean_albedo, size, size,
                                       backend="cpu"))
        print(f"\n[reference] rasterise 1 frame at {size}x{size}: {1000 * sec:.0f} ms "
              f"(C++ kernel: {1000 * fast:.2f} ms, {sec / fast:.0f}x faster)")


if __name__ == "__main__":
    main()
