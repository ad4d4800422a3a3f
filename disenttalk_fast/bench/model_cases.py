"""Whole-model benchmark cases: one denoiser step and whole sampling runs.

Providers: "eager" = the reference DisentTalkDenoiser, "compile" = torch.compile of it,
"cpu" / "cuda" / "triton" = FastDenoiser on that backend (with the CUDA-graph step on the GPU).
Shapes: the default model (DESIGN section 5), the paper's 53-second clip (1325 frames) with
guidance (one sample's conditional and unconditional branches in one call: B=2 rows of eps),
DDPM-400, DDIM-50 and DDIM-10,
and a streaming chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from disenttalk_fast._torch import torch
from disenttalk_fast.config import DisentTalkConfig
from disenttalk_fast.diffusion.guidance import GuidedEps
from disenttalk_fast.model import AudioCache, DisentTalkDenoiser
from disenttalk_fast.model.fast import FastDenoiser
from disenttalk_fast.sampling import Sampler, sample


@dataclass
class ModelCase:
    name: str
    shape: str
    run_reference: Callable[[], object]
    run_backend: Callable[[str], object]   # "compile" = torch.compile of the reference model
    bytes_moved: int | None = None
    warmup: int = 2          # whole sampling runs take seconds: fewer warm-ups and repeats
    min_repeats: int = 5


def _models(device, dtype, config, mode):
    torch.manual_seed(0)
    ref = DisentTalkDenoiser(config).eval().to(device=device, dtype=dtype)
    fast = {}

    compiled = []

    def get(provider):
        # torch.compile wraps the model, not the benchmark closure: a closure that enters
        # inference_mode inside a compiled region fails in inductor ("Cannot set version_counter
        # for inference tensor"), and a model is what users compile.
        if provider == "compile":
            if not compiled:
                compiled.append(torch.compile(ref, mode=mode))
            return compiled[0]
        if provider not in fast:
            fast[provider] = FastDenoiser.from_reference(ref, provider)
        return fast[provider]

    return ref, get


JOBS = ("step", "ddim", "ddpm", "stream")


def model_cases(device: torch.device, dtype: torch.dtype, quick: bool = False,
                compile_mode: str | None = None, jobs=JOBS, window: int | None = None):
    """`compile_mode`: torch.compile's mode for the "compile" provider (None: its default).
    `jobs`: which of JOBS to run. `window`: frames per sampling window for the whole-clip runs
    (None: the whole clip as one window, the paper's setting)."""
    config = DisentTalkConfig()
    ref, get = _models(device, dtype, config, compile_mode)
    step_frames = ((250,) if quick else (250, 1325)) if "step" in jobs else ()
    for L in step_frames:
        z = torch.randn(1, L, config.num_dims, device=device, dtype=dtype)
        t = torch.full((1,), 200, device=device, dtype=torch.long)
        audio = torch.randn(1, 2 * L, config.audio_dim, device=device, dtype=dtype)
        with torch.no_grad():
            # The cache guidance builds: the audio row, then the null-audio row.
            cache = AudioCache.cat([ref.encode_audio(audio),
                                    ref.encode_audio(None, num_frames=L, batch=1)])

        def step(model, z=z, t=t, cache=cache):
            # What guidance runs (GuidedEps): model(z, t, cache, guided=True), one sample's two
            # branches (B=2 rows of eps) with the shared part computed once.
            with torch.inference_mode():
                return GuidedEps.build(model, None, None, 2.0, "both", cache)(z, t)

        yield ModelCase("denoiser step +CFG", f"B=2 L={L}", lambda s=step: s(ref),
                        lambda p, s=step: s(get(p)))

    clip = 250 if quick else 1325
    runs = [("DDIM-10", "ddim", 10), ("DDIM-25", "ddim", 25)] if quick else \
        [("DDIM-10", "ddim", 10), ("DDIM-50", "ddim", 50), ("DDPM-400", "ddpm", None)]
    audio = torch.randn(1, 2 * clip, config.audio_dim, device=device, dtype=dtype)
    win = clip if window is None else min(window, clip)
    for label, sampler, steps in runs:
        if sampler not in jobs:
            continue

        def run(model, sampler=sampler, steps=steps):
            return sample(model, audio, sampler=sampler, steps=steps, guidance=2.0, seed=0,
                          window=win)

        yield ModelCase(f"sample {label} +CFG", f"{clip} frames, window {win}",
                        lambda r=run: r(ref), lambda p, r=run: r(get(p)), warmup=1,
                        min_repeats=2)
    if "ddim" in jobs:
        # The same DDIM-10 through one Sampler kept between calls: on a GPU its captured step is
        # reused, so this row minus the one above is the per-call warm-up and capture.
        kept = {}

        def run_kept(model, key):
            if key not in kept:
                kept[key] = Sampler(model, sampler="ddim", steps=10, guidance=2.0, window=win)
            return kept[key](audio, seed=0)

        yield ModelCase("sample DDIM-10 +CFG, kept Sampler", f"{clip} frames, window {win}",
                        lambda: run_kept(ref, "eager"), lambda p: run_kept(get(p), p),
                        warmup=1, min_repeats=3)
    if "stream" not in jobs:
        return

    # A streaming chunk: one 2-second window (50 frames) sampled with DDIM-10, the unit of work
    # the Streamer repeats.
    chunk = torch.randn(1, 100, config.audio_dim, device=device, dtype=dtype)

    def stream_chunk(model):
        return sample(model, chunk, sampler="ddim", steps=10, guidance=2.0, seed=0)

    yield ModelCase("stream chunk DDIM-10 +CFG", "50 frames", lambda: stream_chunk(ref),
                    lambda p: stream_chunk(get(p)), warmup=1, min_repeats=3)
