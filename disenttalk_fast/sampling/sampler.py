"""`sample`: generate normalised expression sequences from audio with a trained denoiser.

    from disenttalk_fast.sampling import sample, RegionControl
    exp = sample(model, audio_features, sampler="ddim", steps=25, guidance=2.0, seed=0,
                 control=RegionControl(lip_scale=1.2), window=200, overlap=32)   # (B, L, N)

The audio is encoded once (projection and every layer's cross-attention keys/values) into an
AudioCache, together with the null (unconditional) cache; each denoising step then runs both
guidance branches as one batch. Noise comes from a private torch.Generator seeded with `seed` on
the model's device, so the same seed on the same device gives the same motion.
"""

from __future__ import annotations


import numpy as np

from disenttalk_fast._checks import is_int
from disenttalk_fast._torch import torch
from disenttalk_fast.diffusion.gaussian import GaussianDiffusion
from disenttalk_fast.diffusion.guidance import GuidedEps, check_guidance
from disenttalk_fast.sampling.ddim import ddim_plan
from disenttalk_fast.sampling.ddpm import ddpm_plan
from disenttalk_fast.model.audio_cache import AudioCache
from disenttalk_fast.sampling.plan import check_seed, check_steps
from disenttalk_fast.sampling.region_control import RegionControl
from disenttalk_fast.sampling.windowed import WindowSampler, check_window, sample_windowed

SAMPLERS = ("ddim", "ddpm")


def make_plan(diffusion: GaussianDiffusion, sampler: str, steps: int | None, eta: float):
    if sampler == "ddim":
        return ddim_plan(diffusion, diffusion.timesteps if steps is None else steps, eta)
    if sampler == "ddpm":
        if steps is not None:
            check_steps(steps, diffusion.timesteps)
        return ddpm_plan(diffusion, steps)
    raise ValueError(f"unknown sampler {sampler!r} (choose from {', '.join(SAMPLERS)})")


def check_finite(z, model, guidance: float):
    """z (a tensor, or a numpy array of denormalised motion), or a one-line error instead of
    handing out NaN / inf motion (an fp16 overflow, a large guidance scale on a weak model,
    extreme features or broken weights can do that). sample, Streamer and generate share it."""
    finite = np.isfinite(z).all() if isinstance(z, np.ndarray) else torch.isfinite(z).all()
    if not bool(finite):
        dtype = str(next(model.parameters()).dtype).replace("torch.", "")
        raise ValueError(f"the generated motion is not finite: a value overflowed ({dtype} "
                         f"weights, guidance {guidance:g}; fp16's range, a scale far beyond "
                         f"1-5 or untrained weights can do that)")
    return z


def as_denoiser(model):
    """The denoiser to sample: `model` itself, or the model of a Checkpoint (what load_model
    returns); a one-line error for anything else."""
    from disenttalk_fast.checkpoint import Checkpoint

    if isinstance(model, Checkpoint):
        return model.model
    # (hasattr, not a class check: wrappers such as torch.compile's forward attribute lookups)
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "encode_audio"):
        raise ValueError(f"model must be a denoiser (DisentTalkDenoiser, FastDenoiser) or a "
                         f"Checkpoint from load_model, got {type(model).__name__}")
    return model


def _model_device(model) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _cache_shape(cache) -> tuple[int, int]:
    return int(cache.batch), int(cache.num_rows) // 2  # 2 audio rows per frame


def _count(n, name: str) -> int:
    if not is_int(n) or n < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {n!r}")
    return int(n)


def _check_batch(batch, held: int) -> None:
    """`batch` sizes unconditional sampling; with audio it may only repeat the audio's batch."""
    if batch is not None and _count(batch, "batch") != held:
        raise ValueError(f"batch={batch}, but the audio holds {held} sample(s): batch applies to "
                         f"audio=None; give the audio one row per sample")


def prepare_audio(model, audio, num_frames: int | None, batch: int | None, device):
    """-> (cond cache or None, batch, num_frames). audio: features (2L, D) / (B, 2L, D), an
    AudioCache from model.encode_audio, or None (unconditional: num_frames needed)."""
    if audio is None:
        if num_frames is None:
            raise ValueError("num_frames is required when no audio is given")
        batch = 1 if batch is None else batch
        return None, _count(batch, "batch"), _count(num_frames, "num_frames")
    if isinstance(audio, AudioCache):
        b, n = _cache_shape(audio)
        _check_batch(batch, b)
        if num_frames is not None:
            num_frames = _count(num_frames, "num_frames")
            if num_frames > n:
                raise ValueError(f"num_frames={num_frames} exceeds the {n} frames of the audio cache")
            n = num_frames
        if audio.num_rows != 2 * n:   # fewer frames, or an odd last row: as features are cut
            audio = audio.window(0, n)
        return audio, b, n
    if not isinstance(audio, torch.Tensor):
        try:   # numpy arrays and nested lists of numbers
            audio = torch.as_tensor(np.asarray(audio, dtype=np.float32))
        except (TypeError, ValueError):
            raise ValueError(f"audio must be features (rows, dim) / (batch, rows, dim), an "
                             f"AudioCache or None, got {type(audio).__name__}") from None
    if audio.dim() == 2:
        audio = audio[None]
    if audio.dim() != 3:
        raise ValueError(f"audio features must be (rows, dim) or (batch, rows, dim), got shape "
                         f"{tuple(audio.shape)}")
    rows = audio.shape[1]
    if rows < 2 or audio.shape[0] == 0:
        raise ValueError(f"audio is empty: {rows} feature rows (need 2 rows per frame, >= 1 frame)")
    _check_batch(batch, audio.shape[0])
    n = rows // 2 if num_frames is None else _count(num_frames, "num_frames")
    if n < 1 or 2 * n > rows:
        raise ValueError(f"num_frames={n} needs {2 * n} audio rows, the audio has {rows}")
    audio = audio[:, : 2 * n].to(device=device, dtype=torch.float32)
    # Checked after the cast: float64 features of 1e300 are finite, their float32 copy is not.
    if not torch.isfinite(audio).all():
        raise ValueError("audio features hold NaN or inf (as float32)")
    return model.encode_audio(audio), audio.shape[0], n


def sample(model, audio=None, num_frames: int | None = None, *, sampler: str = "ddim",
           steps: int | None = 25, eta: float = 0.0, guidance: float = 2.0, seed: int = 0,
           control: RegionControl | None = None, window: int | None = None,
           overlap: int | None = None,
           batch: int | None = None, diffusion: GaussianDiffusion | None = None,
           progress=None, cuda_graph: bool | None = None) -> torch.Tensor:
    """Generate (B, L, N) normalised expressions. See the module docstring.

    sampler "ddim" (steps S <= T, eta in [0, 1]) or "ddpm" (all T steps; steps must be None or
    T; the DDIM default 25 is ignored for ddpm). guidance: the classifier-free scale s >= 0
    (1 = conditional only). window / overlap: frames per window and frames shared with the
    previous window; window None = the model's training window (config.window: the lengths it
    has seen, and bounded memory for any input), overlap None = a fifth of the window. Pass
    window >= num_frames for one window.
    progress(done, total) after every denoising step.
    cuda_graph: capture one denoising step (both guidance branches) per window shape in a CUDA
    graph and replay it every step; None = on CUDA devices, falling back to eager launches with
    a warning if capture fails. To keep the captured step between calls, use `Sampler`.
    """
    return Sampler(model, sampler=sampler, steps=steps, eta=eta, guidance=guidance,
                   window=window, overlap=overlap, diffusion=diffusion,
                   cuda_graph=cuda_graph)(audio, num_frames, seed=seed, control=control,
                                          batch=batch, progress=progress)


class Sampler:
    """`sample` as an object that is called many times: the settings that stay fixed (model,
    sampler, steps, guidance, windows) are given once, the audio, seed and region control per
    call, with the same results as `sample` for the same arguments.

        sampler = Sampler(model, sampler="ddim", steps=10, guidance=2.0)
        for clip in clips:
            exp = sampler(clip_features, seed=0)

    On a CUDA device the captured CUDA-graph step is kept between calls, so a call whose window
    shape was seen before skips the step's warm-up and capture (on an H200 the fixed cost of a
    `sample` call, mostly that, was ~25 ms against 1.1-6.8 ms per step). It is captured again
    when the window shape, the kernels (the model's backend, DISENTTALK_BACKEND, PyTorch's TF32
    switch) or the weights' addresses (moving or re-casting the model) change. A Sampler's
    buffers serve one call at a time: use one Sampler per thread.
    """

    def __init__(self, model, *, sampler: str = "ddim", steps: int | None = 25, eta: float = 0.0,
                 guidance: float = 2.0, window: int | None = None, overlap: int | None = None,
                 diffusion: GaussianDiffusion | None = None, cuda_graph: bool | None = None):
        self.model = model = as_denoiser(model)
        self.guidance = check_guidance(guidance)
        if sampler == "ddpm" and steps == 25:  # the DDIM default: DDPM always runs all T steps
            steps = None
        diffusion = diffusion or GaussianDiffusion.from_config(model.config)
        self.plan = make_plan(diffusion, sampler, steps, eta)
        if window is not None:  # fail at construction; the overlap default needs the window
            check_window(window, 0 if overlap is None else overlap)
        self.window, self.overlap, self.cuda_graph = window, overlap, cuda_graph
        self._window_sampler: WindowSampler | None = None

    def __call__(self, audio=None, num_frames: int | None = None, *, seed: int = 0,
                 control: RegionControl | None = None, batch: int | None = None,
                 progress=None) -> torch.Tensor:
        """(B, L, N) normalised expressions for `audio` (see `sample` for the arguments)."""
        if control is not None and not isinstance(control, RegionControl):
            raise ValueError(f"control must be a RegionControl, got {type(control).__name__}")
        model = self.model
        device = _model_device(model)
        guidance = self.guidance
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                cond, b, n = prepare_audio(model, audio, num_frames, batch, device)
                window = self.window
                if window is None:
                    window = max(2, int(getattr(model.config, "window", n)))
                overlap = window // 5 if self.overlap is None else self.overlap
                check_window(window, overlap)
                null = model.encode_audio(None, num_frames=n, batch=b)
                if cond is None:
                    cond, guidance = null, 0.0
                eps_fn = GuidedEps(model, cond, null, guidance)
                partition = model.partition
                known = control.known(partition, b, n, device) if control is not None else None
                generator = torch.Generator(device=device).manual_seed(check_seed(seed))
                kept = self._sampler_on(device, generator)
                out = sample_windowed(eps_fn, kept.plan, batch=b, num_frames=n,
                                      num_dims=partition.num_dims, window=window,
                                      overlap=overlap, generator=generator, device=device,
                                      known=known, progress=progress, sampler=kept)
                if control is not None:
                    out = control.apply_output(out, partition)
                check_finite(out, model, guidance)
        finally:
            model.train(was_training)
        return out

    def _sampler_on(self, device, generator) -> WindowSampler:
        """The WindowSampler kept between calls (a new one when the model changed device)."""
        device = torch.device(device)
        if self._window_sampler is None or self._window_sampler.device != device:
            self._window_sampler = WindowSampler(self.plan.to(device), generator, device,
                                                 self.cuda_graph)
        return self._window_sampler
