"""`write_video(frames, audio, path, fps=25)`: uint8 frames + speech -> an .mp4 (H.264 + AAC)
that common players open.

- The video track is made exactly as long as the audio (to the nearest frame): missing frames
  repeat the last one, extra frames are dropped (a warning when that is more than 2 frames).
- Audio: a file path (any format soundfile reads; mixed down to mono) or an array / tensor of
  samples with `sample_rate` (8000-384000 Hz), read as `load_audio` reads arrays: (n,),
  (n, channels) or (channels, n) with at most 8 channels, float in [-1, 1] or integer PCM, mixed
  down to mono; unlike `load_audio` it keeps its own rate. NaN / inf samples are silenced, as
  `load_audio` does (all of them non-finite is an error). Rates AAC cannot store are resampled
  to 48 kHz. `audio=None` writes a silent (video-only) file.
- `path` must end in .mp4, .m4v or .mov: the content is always MP4, and another name (.avi,
  .mkv) would promise a container it is not.
- The file is written to a temporary name beside `path` and renamed into place only when
  complete, so an error never leaves a partial file behind.
"""

from __future__ import annotations

import math
import os
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np

from disenttalk_fast._atomic import atomic_output
from disenttalk_fast._checks import is_int, is_real
from disenttalk_fast.audio.load import check_rate, mono

AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
SUFFIXES = (".mp4", ".m4v", ".mov")   # names whose readers expect MP4 content
MAX_CRF = 51                          # libx264's crf range is 0..51
AAC_BITRATES = (8_000, 512_000)       # bit/s; the AAC encoder takes these at 8-96 kHz (tested)


def write_video(frames, audio, path, fps: float = 25, *, sample_rate: int | None = None,
                crf: int = 18, audio_bitrate: int = 128_000) -> Path:
    """Write `frames` (F, H, W, 3) uint8 with `audio` to `path`; returns the path."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise ValueError(f"{path}: write_video writes MP4 (H.264 + AAC); the name must end in "
                         f"{' / '.join(SUFFIXES)}")
    frames = _check_frames(frames)
    fps = _check_args(fps, crf, audio_bitrate)
    if sample_rate is not None:
        sample_rate = check_rate(sample_rate, "write_video: sample_rate")
    samples, rate = (None, None) if audio is None else _load_audio(audio, sample_rate)
    if samples is not None:
        frames = _conform(frames, round(len(samples) / rate * fps))
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: output folder {path.parent} does not exist")
    with atomic_output(path, suffix=".tmp.mp4") as tmp:
        _encode(tmp, frames, fps, samples, rate, crf, audio_bitrate)
    return path


def _check_frames(frames) -> np.ndarray:
    if hasattr(frames, "detach"):
        frames = frames.detach().cpu().numpy()
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"write_video: frames must be a non-empty (F, H, W, 3) array, "
                         f"got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"write_video: frames must be uint8, got {frames.dtype}")
    h, w = frames.shape[1:3]
    if h % 2 or w % 2:
        raise ValueError(f"write_video: H.264 (yuv420p) needs even width and height, got {w}x{h}")
    return np.ascontiguousarray(frames)



def _check_args(fps, crf, audio_bitrate) -> float:
    # (below 1 fps the mp4 time base rounds the rate to 0)
    if not is_real(fps) or not math.isfinite(fps) or not 1 <= fps <= 240:
        raise ValueError(f"write_video: fps must be a number in [1, 240], got {fps!r}")
    if not (is_int(crf) and 0 <= crf <= MAX_CRF):
        raise ValueError(f"write_video: crf must be an integer in 0..{MAX_CRF} (libx264), "
                         f"got {crf!r}")
    lo, hi = AAC_BITRATES
    if not (is_int(audio_bitrate) and lo <= audio_bitrate <= hi):
        raise ValueError(f"write_video: audio_bitrate must be an integer in {lo}..{hi} bit/s, "
                         f"got {audio_bitrate!r}")
    return float(fps)  # Fraction() in _encode takes float, not np.float32


def _load_audio(audio, sample_rate):
    if isinstance(audio, (str, os.PathLike)):
        import soundfile as sf

        apath = Path(audio)
        if not apath.is_file():
            raise FileNotFoundError(f"{apath}: no such audio file")
        try:
            samples, rate = sf.read(str(apath), dtype="float32", always_2d=True)
        except Exception as exc:
            raise ValueError(f"{apath}: not a readable audio file ({exc})") from None
        samples = samples.mean(axis=1)
        if sample_rate is not None and sample_rate != rate:
            raise ValueError(f"write_video: sample_rate={sample_rate} given but {apath} is "
                             f"{rate} Hz (leave sample_rate out for files)")
        name = str(apath)
    else:
        if sample_rate is None:
            raise ValueError("write_video: pass sample_rate= with an audio array")
        # load_audio's array handling (layout, integer PCM, mixdown), but not its resampling.
        samples, rate, name = mono(audio, "write_video: audio"), sample_rate, "audio"
    if len(samples) == 0:
        raise ValueError(f"{name}: the audio is empty")
    finite = np.isfinite(samples)
    if not finite.any():
        raise ValueError(f"{name}: every audio sample is NaN or infinite")
    if not finite.all():   # silence them, as load_audio does for the model (same file, same rule)
        samples = np.where(finite, samples, np.float32(0))
    if rate not in AAC_RATES:
        import soxr

        samples, rate = soxr.resample(samples, rate, 48000).astype(np.float32), 48000
    return np.clip(samples, -1.0, 1.0), rate


def _conform(frames, n):
    n = max(1, int(n))
    if abs(len(frames) - n) > 2:
        warnings.warn(f"write_video: {len(frames)} frames for audio lasting {n} frames; the "
                      f"video is {'padded with its last frame' if n > len(frames) else 'cut'}",
                      stacklevel=3)
    if n <= len(frames):
        return frames[:n]
    return np.concatenate([frames, np.repeat(frames[-1:], n - len(frames), axis=0)])


def _encode(tmp, frames, fps, samples, rate, crf, audio_bitrate):
    import av

    rate_q = Fraction(fps).limit_denominator(1001)
    with av.open(tmp, mode="w", format="mp4") as container:
        vstream = container.add_stream("libx264", rate=rate_q)
        vstream.width, vstream.height = frames.shape[2], frames.shape[1]
        vstream.pix_fmt = "yuv420p"
        vstream.options = {"crf": str(crf), "preset": "veryfast"}
        astream = None
        if samples is not None:
            astream = container.add_stream("aac", rate=rate)
            astream.layout = "mono"
            astream.bit_rate = audio_bitrate
        for i, image in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(image, format="rgb24")
            vf.pts = i
            for packet in vstream.encode(vf):
                container.mux(packet)
        for packet in vstream.encode():
            container.mux(packet)
        if astream is not None:
            chunk = 1024
            for start in range(0, len(samples), chunk):
                block = samples[start:start + chunk][None, :]
                af = av.AudioFrame.from_ndarray(block, format="fltp", layout="mono")
                af.sample_rate = rate
                af.pts = start
                for packet in astream.encode(af):
                    container.mux(packet)
            for packet in astream.encode():
                container.mux(packet)
