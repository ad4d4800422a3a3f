"""`generate(model, audio, ...) -> Motion`: speech in, 3DMM expression (+ pose) motion out.

    from disenttalk_fast.generate import generate
    motion = generate("model.safetensors", "speech.wav", steps=25, seed=0)
    motion.exp        # (L, 64) float32, original coefficient space, 25 fps, L = ceil(s * 25)
    write_motion(motion, "talk.mat")     # disenttalk_fast.interop

What it does: load the checkpoint (or take a loaded one), compute the audio features the model
was trained with (`mel`, or `hubert` from a local folder; cached on disk when `cache_dir` is
given), sample normalised expressions with the chosen sampler in windows of the model's training
length with held overlap (DESIGN section 6; long audio in bounded memory, no seam), then
de-normalise with the checkpoint's mean / std. Pose is not generated (as in the paper): it is
static (zeros = frontal) or taken from a reference motion (resampled from its fps to 25 fps),
ping-pong looped / trimmed to length.
Region control (`control`) works in the model's normalised space; `build_control` makes one
from raw-space references (eyes from a clip, lip exaggeration, frozen regions).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
from pathlib import Path

import numpy as np

from disenttalk_fast._checks import is_int
from disenttalk_fast._torch import DTYPES, torch
from disenttalk_fast.audio.load import check_rate
from disenttalk_fast.motion import POSE_DIMS, Motion
from disenttalk_fast.sampling.plan import check_seed


# -- model -------------------------------------------------------------------------------------
def load_model(path, device=None, backend: str = "auto", use_ema: bool = True, dtype=None):
    """A `Checkpoint` (config, partition, model, stats) from a .safetensors file, on `device`
    (default: CUDA when available), with the model's ops on `backend`. `dtype` (a torch dtype or
    "fp32" / "fp16" / "bf16"; None = as stored) casts the weights: half precision is what makes
    GPU sampling fast (the Triton kernels run it on the tensor cores); on the CPU it runs the
    reference ops, since the C++ kernels are fp32-only."""
    from disenttalk_fast.checkpoint import load_checkpoint

    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got '{dtype}'")
        dtype = DTYPES[dtype]
    if dtype is not None and dtype not in DTYPES.values():
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)} (or the torch dtype), got "
                         f"{dtype!r}")
    device = check_device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    ckpt = load_checkpoint(path, map_location=device, use_ema=use_ema, backend=backend)
    if dtype is not None:
        ckpt.model.to(dtype)
    ckpt.model.eval()
    return ckpt


def as_checkpoint(model_or_checkpoint, backend: str | None = None, device=None):
    """A Checkpoint from a path (loaded for `backend`, default "auto"), a Checkpoint, or a bare
    denoiser (stats: mean 0, std 1). A model passed in is never switched to `backend`: the
    Checkpoint returned holds `on_backend`'s view of it."""
    from disenttalk_fast.checkpoint import Checkpoint

    if isinstance(model_or_checkpoint, (str, os.PathLike)):
        return load_model(model_or_checkpoint, device, backend or "auto")
    if isinstance(model_or_checkpoint, Checkpoint):
        ckpt = model_or_checkpoint
    elif isinstance(model_or_checkpoint, torch.nn.Module) and hasattr(model_or_checkpoint,
                                                                      "config"):
        m = model_or_checkpoint
        n = m.config.num_dims
        ckpt = Checkpoint(config=m.config, partition=m.partition, model=m,
                          exp_mean=torch.zeros(n), exp_std=torch.ones(n),
                          feature_type=m.config.feature_type)
    else:
        raise TypeError(f"generate: expected a checkpoint path, a Checkpoint or a "
                        f"DisentTalkDenoiser, got {type(model_or_checkpoint).__name__}")
    if device is not None:
        ckpt.model.to(check_device(device))
    view = on_backend(ckpt.model, backend)
    return ckpt if view is ckpt.model else dataclasses.replace(ckpt, model=view)


def check_device(device) -> torch.device:
    """`device` as a torch.device that can hold the model here; else a one-line ValueError."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device: {device!r} is not a device (use 'cpu', 'cuda' or "
                         f"'cuda:N')") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} asked for, but this PyTorch sees no CUDA GPU")
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device: {device!r}, but this machine has "
                         f"{torch.cuda.device_count()} CUDA GPU(s)")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device: the model runs on 'cpu' or 'cuda', got {device!r}")
    return dev


def on_backend(model, backend: str | None):
    """`model`, or (for a `backend` other than its own) a shallow copy of it that shares every
    parameter, buffer, submodule and hook and differs only in `backend`. A per-call backend
    that never changes the caller's model, so concurrent calls on one model with different
    backends cannot race."""
    if backend is None or backend == model.backend:
        return model
    view = copy.copy(model)
    view.backend = backend
    return view


def _dtype_name(model) -> str:
    return str(next(model.parameters()).dtype).replace("torch.", "")


def model_device(model) -> torch.device:
    return next(model.parameters()).device


# -- audio -------------------------------------------------------------------------------------
def is_feature_array(audio, audio_dim: int) -> bool:
    """Precomputed features: a 2-d array / tensor (rows, audio_dim) with audio_dim > 16 (no
    waveform has that many channels), or a 3-d tensor (1, rows, audio_dim)."""
    shape = getattr(audio, "shape", None)
    if shape is None or isinstance(audio, (str, os.PathLike)):
        return False
    return (len(shape) == 2 and shape[1] == audio_dim and audio_dim > 16) or \
        (len(shape) == 3 and shape[0] == 1 and shape[2] == audio_dim)


def check_one_clip(audio, audio_dim: int) -> None:
    """A one-line error for a batch of feature arrays (B, rows, audio_dim) with B != 1, which the
    waveform path would only call "too many channels": generate makes one clip's motion."""
    shape = getattr(audio, "shape", None)
    if shape is not None and not isinstance(audio, (str, os.PathLike)) and len(shape) == 3 \
            and shape[2] == audio_dim and shape[0] != 1:
        raise ValueError(f"audio: generate takes one clip's features, (rows, {audio_dim}) or "
                         f"(1, rows, {audio_dim}), got {tuple(shape)}; to sample a batch of "
                         f"clips use disenttalk_fast.sampling.sample")


def audio_features(ckpt, audio, *, sr=None, cache_dir=None, hubert_dir=None, layer=None,
                   device=None) -> np.ndarray:
    """(2L, audio_dim) rows for `audio` (path / file object / waveform array / precomputed
    features)."""
    from disenttalk_fast.audio.features import extract_features

    dim = ckpt.config.audio_dim
    if is_feature_array(audio, dim):
        feats = audio.detach().cpu().numpy() if hasattr(audio, "detach") else np.asarray(audio)
        feats = np.asarray(feats, np.float32).reshape(-1, dim)
        if feats.shape[0] < 2:
            raise ValueError(f"audio features: need at least 2 rows (one frame), got "
                             f"{feats.shape[0]}")
        if feats.shape[0] % 2:
            raise ValueError(f"audio features: {feats.shape[0]} rows is odd; features come "
                             f"2 rows per 25 fps frame")
        return feats
    feature = ckpt.feature_type
    opts = {}
    if feature == "hubert":
        opts = {"hubert_dir": hubert_dir, "layer": layer, "device": device}
    feats = extract_features(audio, feature, sr=sr, cache_dir=cache_dir, **opts)
    if feats.shape[1] != dim:
        raise ValueError(f"the model expects {dim}-wide {feature} features, the extractor gives "
                         f"{feats.shape[1]} (wrong --hubert model or layer?)")
    return feats


# -- pose and references -----------------------------------------------------------------------
def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Rows of x looped back and forth (0 1 2 1 0 1 2 ...) or trimmed to exactly n. Ping-pong
    rather than wrap-around so a looped reference has no jump at the loop point."""
    x = np.asarray(x)
    if x.shape[0] == 0:
        raise ValueError("reference has no frames")
    if x.shape[0] >= n:
        return x[:n]
    if x.shape[0] == 1:
        return np.repeat(x, n, axis=0)
    period = np.concatenate([np.arange(x.shape[0]), np.arange(x.shape[0] - 2, 0, -1)])
    return x[np.resize(period, n)]


def _read_reference(ref, what: str) -> Motion:
    if isinstance(ref, Motion):
        return ref
    if isinstance(ref, (str, os.PathLike)):
        from disenttalk_fast.interop import read_motion

        if not str(ref).strip():   # (Path("") is ".": its error would name neither)
            raise ValueError(f"{what}: an empty path is not a motion file")
        return read_motion(ref)
    raise TypeError(f"{what}: expected a Motion or a motion file path, got {type(ref).__name__}")


# Slowest reference resampled (below): at 1 fps each reference frame becomes 25, so the resampled
# copy is at most 25x the reference; a lower rate is a broken fps field, not a recording.
MIN_REFERENCE_FPS = 1.0


def at_25fps(x: np.ndarray, fps: float, what: str) -> np.ndarray:
    """Rows of a reference recorded at `fps` (row i at time i / fps) resampled to 25 fps by
    linear interpolation over time: row j at j / 25, as many rows as cover the same duration
    (round(n * 25 / fps), at least 1). A 50 fps reference used frame for frame would play at half
    speed. 25 fps references are returned as they are (bit-exact)."""
    fps = float(fps)
    if fps == 25.0 or x.shape[0] == 0:
        return x
    if fps < MIN_REFERENCE_FPS:
        raise ValueError(f"{what}: recorded at {fps:g} fps; a reference is resampled to 25 fps "
                         f"and must be at least {MIN_REFERENCE_FPS:g} fps")
    n = x.shape[0]
    m = max(1, int(round(n * 25.0 / fps)))
    t = np.minimum(np.arange(m) * (fps / 25.0), n - 1)   # target times in reference frames
    i0 = np.floor(t).astype(np.int64)
    i1 = np.minimum(i0 + 1, n - 1)
    w = (t - i0)[:, None]
    x64 = x.astype(np.float64)
    return ((1.0 - w) * x64[i0] + w * x64[i1]).astype(x.dtype)


def reference_pose(pose) -> np.ndarray | None:
    """A pose reference as (L', 6) float32 rows at 25 fps, checked (one-line ValueErrors naming
    it, or the file it came from): None stays None; a Motion / motion file gives its pose,
    resampled from its fps (`at_25fps`); an array / tensor / nested list is taken as 25 fps."""
    if pose is None:
        return None
    # Messages name the file a pose came from.
    name = f"pose reference {pose}" if isinstance(pose, (str, os.PathLike)) else "pose"
    if isinstance(pose, (Motion, str, os.PathLike)):
        m = _read_reference(pose, "pose")
        if m.pose is None:
            where = "" if isinstance(pose, Motion) else f" {pose}"
            raise ValueError(f"pose reference{where} holds no pose")
        pose = at_25fps(m.pose, m.fps, name)
    if hasattr(pose, "detach") and hasattr(pose, "cpu"):   # a torch tensor
        pose = pose.detach().cpu().numpy()
    try:
        pose = np.asarray(pose, np.float32)
    except (TypeError, ValueError):   # a dict, a string, a ragged list, ...
        raise ValueError(f"{name} must be None, a Motion, a motion file or a (frames, "
                         f"{POSE_DIMS}) array, got {type(pose).__name__}") from None
    if pose.ndim == 1:
        pose = pose[None]
    if pose.ndim != 2 or pose.shape[1] != POSE_DIMS:
        raise ValueError(f"{name} must be (frames, {POSE_DIMS}) (3 angles + 3 translations), "
                         f"got {pose.shape}")
    if pose.shape[0] == 0:
        raise ValueError(f"{name} has no frames")
    if not np.isfinite(pose).all():
        raise ValueError(f"{name} holds NaN or inf")
    return pose


def pose_track(pose, num_frames: int) -> np.ndarray:
    """(L, 6) pose: zeros for None, else from a Motion / motion file (resampled to 25 fps) /
    (L', 6) array (25 fps), looped."""
    if pose is None:
        return np.zeros((num_frames, POSE_DIMS), np.float32)
    return np.ascontiguousarray(fit_length(reference_pose(pose), num_frames))


def build_control(ckpt, num_frames: int, *, replace_from: dict | None = None,
                  scale: dict | None = None, freeze=()):
    """A RegionControl (normalised space) from raw-space inputs.

    replace_from: region -> Motion / motion file whose dims of that region replace the generated
    ones (e.g. {"eye": "blinks.mat"}), resampled from its fps to 25 fps (`at_25fps`), looped /
    trimmed to length; scale: region -> factor about the training mean (e.g. {"lip": 1.3});
    freeze: regions held at the training mean expression (the neutral face of that region) for
    the whole clip.
    """
    from disenttalk_fast.sampling import RegionControl

    if not is_int(num_frames) or num_frames < 1:
        raise ValueError(f"build_control: num_frames must be an integer >= 1, got {num_frames!r}")
    if isinstance(freeze, str):   # one region named on its own
        freeze = (freeze,)
    replace = {}
    for region, ref in (replace_from or {}).items():
        m = _read_reference(ref, f"{region} reference")
        where = "" if isinstance(ref, Motion) else f" {ref}"
        if m.num_frames == 0 or not np.isfinite(m.exp).all():
            raise ValueError(f"{region} reference{where}: "
                             f"{'has no frames' if m.num_frames == 0 else 'holds NaN or inf'}")
        if m.num_dims != ckpt.config.num_dims:
            raise ValueError(f"{region} reference{where}: has {m.num_dims} expression dims, the "
                             f"model has {ckpt.config.num_dims}")
        exp = at_25fps(m.exp, m.fps, f"{region} reference{where}")
        z = ckpt.normalize(torch.from_numpy(np.ascontiguousarray(fit_length(exp, num_frames))))
        replace[region] = z
    frozen = {region: torch.zeros(ckpt.config.num_dims) for region in freeze}
    if not (replace or frozen or scale):
        return None
    return RegionControl(scale=dict(scale or {}), freeze=frozen, replace=replace)


# -- progress ----------------------------------------------------------------------------------
class _Progress:
    def __init__(self, enabled, desc="sampling"):
        self.enabled, self.desc, self.bar = enabled, desc, None

    def __call__(self, done, total):
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.desc, unit="step", leave=False)
        self.bar.update(done - self.bar.n)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def default_window(config) -> tuple[int, int]:
    """Windows of the model's training length, a fifth of it held as overlap."""
    window = max(2, int(config.window))
    return window, window // 5


# -- generate ----------------------------------------------------------------------------------
def generate(model_or_checkpoint, audio, *, sampler: str = "ddim", steps: int | None = 25,
             guidance: float | None = None, seed: int = 0, backend: str | None = None, pose=None,
             control=None, progress: bool = True, window: int | None = None,
             overlap: int | None = None, eta: float = 0.0, sr: int | None = None,
             cache_dir=None, hubert_dir=None, layer=None, device=None,
             bounded: bool | None = None) -> Motion:
    """Generate motion for `audio`. See the module docstring.

    model_or_checkpoint: a checkpoint path, a `Checkpoint`, or a bare `DisentTalkDenoiser`
    (then no de-normalisation: mean 0, std 1). audio: a file path, an open binary file object
    (io.BytesIO; read from its current position), a waveform array (at `sr`, default 16 kHz;
    float in [-1, 1] or int16 / int32 PCM, see `load_audio`), or one clip's precomputed features
    (2L, audio_dim) or (1, 2L, audio_dim) (a batch is `sampling.sample`'s). sampler "ddim"
    (steps <= T) or "ddpm" (all T steps; meta["steps"] records the steps that ran).
    guidance: classifier-free scale (None = the model's default).
    seed: an integer (the same seed on the same device gives the same motion), or None for a
    fresh random one; either way it is recorded in meta["seed"].
    backend: the ops backend ("auto", "reference", "cpu", "cuda", "triton") for this call only:
    a model passed in is not changed (the call runs a view of it sharing its weights, so
    threads may call one model with different backends at once); None (default) keeps the
    model's own, and a checkpoint path is loaded with "auto". device: where the model runs;
    a model passed in is moved there and stays there. pose: None (static zeros), a Motion or a
    motion file (resampled from its fps to 25 fps), or a (L', 6) array (taken as 25 fps);
    checked before sampling. control: a RegionControl in the
    normalised space (see `build_control`). window / overlap: frames per sampling window and
    frames held from the previous one (default: the training window, a fifth of it).
    bounded: run the windows through `Streamer` (audio read block by block, audio encoded
    window by window): memory independent of the length, same result up to float rounding.
    None = automatically for `mel` models on audio longer than BOUNDED_AFTER_S seconds given as
    a file or waveform (precomputed features and the feature cache use the one-pass path;
    bounded=True with either is an error).
    The result's `meta` records the settings and the wall time.
    """
    from disenttalk_fast.backends import check_name

    t0 = time.perf_counter()
    if backend is not None:
        check_name(backend, "generate")
    seed = check_seed(seed)
    sr = None if sr is None else check_rate(sr, "sr")
    if is_int(steps):
        steps = int(steps)   # (a numpy integer would not serialise in meta)
    ckpt = as_checkpoint(model_or_checkpoint, backend, device)
    return _generate(ckpt, audio, t0, sampler=sampler, steps=steps, guidance=guidance,
                     seed=seed, pose=pose, control=control, progress=progress, window=window,
                     overlap=overlap, eta=eta, sr=sr, cache_dir=cache_dir,
                     hubert_dir=hubert_dir, layer=layer, bounded=bounded)


def _generate(ckpt, audio, t0, *, sampler, steps, guidance, seed, pose, control, progress,
              window, overlap, eta, sr, cache_dir, hubert_dir, layer, bounded) -> Motion:
    from disenttalk_fast.sampling.sampler import check_finite, sample

    model = ckpt.model
    dev = model_device(model)
    if window is None:
        window, default_overlap = default_window(ckpt.config)
        overlap = default_overlap if overlap is None else overlap
    overlap = window // 5 if overlap is None else overlap
    guidance = ckpt.config.guidance_scale if guidance is None else guidance
    check_one_clip(audio, ckpt.config.audio_dim)
    pose = reference_pose(pose)   # checked now, not after sampling; a Motion's at 25 fps
    features = is_feature_array(audio, ckpt.config.audio_dim)
    if bounded is None:
        bounded = (ckpt.feature_type == "mel" and cache_dir is None and not features
                   and _duration(audio, sr) > BOUNDED_AFTER_S)
    if bounded:
        if features or cache_dir is not None:
            raise ValueError(f"bounded=True reads audio block by block and takes a file or a "
                             f"waveform, without cache_dir; got "
                             f"{'precomputed features' if features else 'cache_dir'}")
        return _generate_bounded(ckpt, audio, sr, t0, sampler=sampler, steps=steps,
                                 guidance=guidance, seed=seed, pose=pose, control=control,
                                 progress=progress, window=window, overlap=overlap, eta=eta)
    feats = audio_features(ckpt, audio, sr=sr, cache_dir=cache_dir, hubert_dir=hubert_dir,
                           layer=layer, device=dev)
    num_frames = feats.shape[0] // 2
    t_feat = time.perf_counter()
    bar = _Progress(progress)
    try:
        z = sample(model, torch.from_numpy(feats).to(dev), sampler=sampler, steps=steps,
                   eta=eta, guidance=guidance, seed=seed, control=control, window=window,
                   overlap=overlap, progress=bar)
    finally:
        bar.close()
    # (sample checked z; denormalising can still overflow, e.g. with a huge exp_std)
    exp = check_finite(ckpt.denormalize(z[0].float()).cpu().numpy(), model, guidance)
    seconds = time.perf_counter() - t0
    meta = {"sampler": sampler, "steps": steps_run(ckpt.config, sampler, steps),
            "guidance": float(guidance), "seed": int(seed),
            "window": int(window), "overlap": int(overlap),
            "backend": getattr(model, "backend", None),
            "dtype": _dtype_name(model),
            "feature": ckpt.feature_type, "seconds": round(seconds, 4),
            "feature_seconds": round(t_feat - t0, 4)}
    if isinstance(audio, (str, os.PathLike)):
        meta["audio"] = str(Path(audio))
    return Motion(exp, pose_track(pose, num_frames), 25.0, ckpt.partition, meta)


def steps_run(config, sampler: str, steps) -> int:
    """The denoising steps a (successful) call ran, for meta: DDPM always runs all T (the DDIM
    default steps=25 is ignored for it), DDIM `steps`, or T for steps=None."""
    return int(config.timesteps) if sampler == "ddpm" or steps is None else int(steps)


# -- bounded-memory path (long audio) ------------------------------------------------------------
BOUNDED_AFTER_S = 120.0


def _duration(audio, sr) -> float:
    """Seconds of a file or file object (from its header) or a waveform array; 0 when
    unknown."""
    from disenttalk_fast.audio.load import is_file_object

    if isinstance(audio, (str, os.PathLike)) or is_file_object(audio):
        from disenttalk_fast.audio.load import duration_seconds

        try:
            return duration_seconds(audio)
        except (ValueError, OSError):
            return 0.0   # the regular path reports the problem
    if getattr(audio, "shape", None) is None:
        return 0.0
    from disenttalk_fast.audio.load import AudioError, as_array, channels_last

    try:   # (channels, samples) arrays count their samples, not their channels
        return channels_last(as_array(audio), "audio").shape[0] / (sr or 16000)
    except AudioError:
        return 0.0   # the regular path reports the problem


def _audio_blocks(audio, sr):
    """(sample rate, iterator of raw sample blocks) for a file, a file object or a waveform
    array."""
    from disenttalk_fast.audio.load import (BLOCK, AudioError, as_array, channels_last,
                                            file_info, file_object_name, is_file_object)

    if isinstance(audio, (str, os.PathLike)) or is_file_object(audio):
        import soundfile as sf

        if is_file_object(audio):
            source, name = audio, file_object_name(audio)
        else:
            path = Path(audio)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no such audio file")
            source, name = str(path), str(path)
        rate = file_info(source)[1]   # one-line error when unreadable; a file object rewound
        if sr is not None and int(sr) != rate:
            raise AudioError(f"{name}: sr={sr} given but the file says {rate} Hz")

        def blocks():
            try:
                yield from sf.blocks(source, blocksize=BLOCK, dtype="float32", always_2d=True)
            except RuntimeError as exc:
                raise AudioError(f"{name}: decoding failed part-way ({exc})") from None
        return rate, blocks()
    x = channels_last(as_array(audio), f"audio array {tuple(np.shape(audio))}")
    return (sr or 16000), (x[i:i + BLOCK] for i in range(0, x.shape[0], BLOCK))


def _generate_bounded(ckpt, audio, sr, t0, *, sampler, steps, guidance, seed, pose, control,
                      progress, window, overlap, eta) -> Motion:
    from disenttalk_fast.sampling.sampler import check_finite
    from disenttalk_fast.sampling.windowed import check_window, window_starts
    from disenttalk_fast.stream import Streamer

    check_window(window, overlap)
    rate, blocks = _audio_blocks(audio, sr)
    expected = max(1, int(np.ceil(_duration(audio, sr) * 25)))
    bar = _Progress(progress)
    total = len(window_starts(expected, window, overlap))
    stream = Streamer(ckpt, hop_frames=window - overlap, overlap_frames=overlap, sampler=sampler,
                      steps=steps, eta=eta, guidance=guidance, seed=seed, control=control,
                      pose=pose, sample_rate=rate,
                      progress=lambda done: bar(min(done, total), total))
    try:
        parts = [stream.push(b) for b in blocks]
        parts.append(stream.flush())
    finally:
        bar.close()
    exp = check_finite(np.concatenate([p.exp for p in parts]), ckpt.model, guidance)
    pose_arr = np.concatenate([p.pose for p in parts])
    seconds = time.perf_counter() - t0
    meta = {"sampler": sampler, "steps": steps_run(ckpt.config, sampler, steps),
            "guidance": float(guidance), "seed": int(seed),
            "window": int(window), "overlap": int(overlap),
            "backend": getattr(ckpt.model, "backend", None), "dtype": _dtype_name(ckpt.model),
            "feature": ckpt.feature_type,
            "seconds": round(seconds, 4), "bounded": True}
    if isinstance(audio, (str, os.PathLike)):
        meta["audio"] = str(Path(audio))
    return Motion(exp, pose_arr, 25.0, ckpt.partition, meta)
