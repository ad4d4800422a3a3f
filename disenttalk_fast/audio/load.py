"""Audio in: any file soundfile reads, or an array, -> float32 mono 16 kHz.

What happens to the samples, in order (the same steps, with the same state, run in `Streamer`, so
offline and streamed audio are processed identically):

1. decode to float in [-1, 1) (soundfile scales every integer bit depth for us; integer arrays
   are scaled the same way: int8 / 128, int16 / 32768, int32 / 2^31, uint8 (x - 128) / 128,
   uint16 (x - 32768) / 32768, ...). 64-bit integers are refused: no PCM format is 64-bit, and
   int64 is what `np.asarray` makes of a list of Python ints and what torch's integer tensors
   default to, so the true scale (int16? int32?) is unknown and guessing gives silence or
   noise. Float samples are refused beyond +-MAX_FLOAT_PEAK (16; see there);
2. mix the channels down to mono by averaging them;
3. NaN / inf samples are set to 0 (a file where no sample is finite is an error);
4. resample to 16 kHz with soxr (HQ) through `soxr.ResampleStream`, block by block;
5. remove DC offset with a causal one-pole DC blocker, y[n] = x[n] - x[n-1] + R y[n-1] with
   R = 0.995 (-3 dB at about 13 Hz at 16 kHz, far below voice pitch). A causal filter rather than
   "subtract the mean" so that a stream, which never sees the whole signal, does the same thing;
6. clip to [-1, 1]: float files may exceed full scale a little and resampling a clipped
   (saturated) recording overshoots; the clipped fraction is kept on the loader
   (`clipped_fraction`).

Sources: a path, an open binary file object (`io.BytesIO`, `open(path, "rb")`: read from its
current position, as soundfile does; it must be seekable), or an array / tensor.

Array layout (`channels_last`, the one rule for `load_audio`, `Streamer.push` and
`write_video`): soundfile gives (samples, channels), torchaudio (channels, samples), and both are
accepted. (n,) is mono. A 2-D array whose one axis is at most `MAX_CHANNELS` (8) and whose other
axis is longer has its channels on the short axis, so (n, 2), (2, n), (n, 1) and (1, n) all work.
Tiny arrays with both axes <= 8 (a few samples of a stream) are read as (samples, channels). An
array with both axes > 8 (a (50, 80) feature matrix, say) is an error, not a guess.

The file is read in blocks of `BLOCK` frames, so memory holds the 16 kHz output (10 minutes =
38 MB) plus one block, never the whole decoded source at its original rate and channel count.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from disenttalk_fast._checks import is_real
from disenttalk_fast.audio.frames import SAMPLE_RATE

MIN_RATE = 8000
MAX_RATE = 384000
MAX_CHANNELS = 8         # arrays: the most channels an axis may hold (see "Array layout")
# Largest |sample| accepted from float input (step 1). Real float audio stays within [-1, 1] but
# for a little overshoot (a hot float mix, a resampled clipped recording: 1.5 at most in
# practice); far beyond it is integer PCM handed over as float (int16 full scale is 32767) or a
# corrupt sample (1e30). Clipping those would give a square wave (and one huge sample saturates
# the DC blocker's state for ~0.8 s), so they are refused. 16 is far above any real overshoot
# and far below int16 full scale.
MAX_FLOAT_PEAK = 16.0
BLOCK = 1 << 16          # source frames per read
DC_POLE = 0.995


class AudioError(ValueError):
    """Audio the user handed in cannot be used; the message names the source."""


class AudioConditioner:
    """Stateful steps 2-6 above: push blocks of source samples, get 16 kHz mono float32 out.

    `push(block)` takes samples as `mono` does ((n,), (n, channels) or (channels, n), float in
    [-1, 1] or integer PCM); `flush()` returns the resampler's tail once the input has ended.
    Chunk boundaries do not change the result.
    """

    def __init__(self, source_rate: int, name: str = "audio"):
        self.name = name
        self.source_rate = check_rate(source_rate, f"{name}: sample rate")
        self._resampler = None
        if self.source_rate != SAMPLE_RATE:
            import soxr

            self._resampler = soxr.ResampleStream(self.source_rate, SAMPLE_RATE, 1,
                                                  dtype="float32", quality="HQ")
        self._dc_prev_x = 0.0
        self._dc_prev_y = 0.0
        self.input_frames = 0
        self.finite_frames = 0
        self.output_samples = 0
        self.clipped_samples = 0

    def push(self, block, last: bool = False) -> np.ndarray:
        x = mono(block, self.name)
        finite = np.isfinite(x)
        n_finite = int(finite.sum())
        if n_finite != x.size:
            x = np.where(finite, x, np.float32(0))
        self.input_frames += x.size
        self.finite_frames += n_finite
        if self._resampler is not None:
            x = self._resampler.resample_chunk(np.ascontiguousarray(x), last=last)
        return self._dc_and_clip(x)

    def flush(self) -> np.ndarray:
        if self._resampler is None:
            return np.zeros(0, np.float32)
        return self.push(np.zeros(0, np.float32), last=True)

    def _dc_and_clip(self, x: np.ndarray) -> np.ndarray:
        if x.size == 0:
            return np.zeros(0, np.float32)
        # y[n] = x[n] - x[n-1] + R y[n-1], carrying x[-1], y[-1] across blocks.
        x64 = x.astype(np.float64)
        d = np.empty_like(x64)
        d[0] = x64[0] - self._dc_prev_x
        np.subtract(x64[1:], x64[:-1], out=d[1:])
        y = one_pole(d, self._dc_prev_y, DC_POLE)
        self._dc_prev_x = float(x64[-1])
        self._dc_prev_y = float(y[-1])
        over = np.abs(y) > 1.0
        n_over = int(over.sum())
        if n_over:
            y = np.clip(y, -1.0, 1.0)
        self.clipped_samples += n_over
        self.output_samples += y.size
        return y.astype(np.float32)

    @property
    def clipped_fraction(self) -> float:
        return self.clipped_samples / max(self.output_samples, 1)

    def check_content(self) -> None:
        """One-line errors for input with nothing usable in it."""
        if self.input_frames == 0:
            raise AudioError(f"{self.name}: contains no samples (zero-length audio)")
        if self.finite_frames == 0:
            raise AudioError(f"{self.name}: every sample is NaN or infinite")


def check_rate(rate, name: str) -> int:
    """A sample rate given as a whole number of Hz in MIN_RATE..MAX_RATE (16000.0 passes, 16000.5
    does not: it is not a rate a file can have)."""
    if not (is_real(rate) and math.isfinite(rate) and float(rate).is_integer()
            and MIN_RATE <= rate <= MAX_RATE):
        raise AudioError(f"{name} must be a whole number of Hz in {MIN_RATE}..{MAX_RATE}, "
                         f"got {rate!r}")
    return int(rate)


def one_pole(d: np.ndarray, y_prev: float, pole: float, block: int = 2048) -> np.ndarray:
    """y[n] = d[n] + pole * y[n-1] (y[-1] = y_prev), vectorised per block of `block` samples:
    y[n] = pole^n (sum_{j<=n} pole^-j d[j]) + pole^(n+1) y_prev. The block keeps pole^-j small
    (0.995^-2048 ~ 3e4) so float64 stays exact to ~1e-12. (scipy.signal.lfilter would do, but
    importing scipy.signal costs seconds.)"""
    k = np.arange(min(block, d.size), dtype=np.float64)
    pk, pinv = pole ** k, pole ** -k
    out = np.empty_like(d)
    for s in range(0, d.size, block):
        seg = d[s:s + block]
        m = seg.size
        y = pk[:m] * np.cumsum(seg * pinv[:m]) + (pole * pk[:m]) * y_prev
        out[s:s + m] = y
        y_prev = y[-1]
    return out


def _to_float(x: np.ndarray, name: str) -> np.ndarray:
    """Integer PCM scaled to [-1, 1) (step 1 of the module docstring); float samples as they are,
    after the MAX_FLOAT_PEAK check. One-line AudioErrors naming `name`."""
    if np.issubdtype(x.dtype, np.integer):
        if x.dtype.itemsize == 8:
            raise AudioError(f"{name}: 64-bit integer samples ({x.dtype}) have no PCM scale "
                             f"(lists of Python ints and torch integer tensors are int64): give "
                             f"int16 / int32 PCM, or float in [-1, 1]")
        half = float(2 ** (8 * x.dtype.itemsize - 1))
        if np.issubdtype(x.dtype, np.unsignedinteger):   # offset binary: silence is `half`
            return (x.astype(np.float32) - half) / half
        return x.astype(np.float32) / half
    _check_float_peak(x, name)
    return x


def _check_float_peak(x: np.ndarray, name: str) -> None:
    """A one-line AudioError for float samples beyond +-MAX_FLOAT_PEAK (NaN / inf aside: those
    are silenced, step 3)."""
    a = np.abs(x)
    peak = float(a.max(initial=0.0))
    if peak <= MAX_FLOAT_PEAK:   # the common case, one pass; NaN / inf fail it and look closer
        return
    peak = float(a[np.isfinite(a)].max(initial=0.0))
    if peak > MAX_FLOAT_PEAK:
        raise AudioError(f"{name}: float samples reach {peak:.4g}, beyond the +-{MAX_FLOAT_PEAK:g} "
                         f"accepted (float audio is in [-1, 1]); integer PCM given as float? "
                         f"divide it by 32768 (int16) or 2**31 (int32)")


def is_file_object(source) -> bool:
    """An open file object (io.BytesIO, open(path, "rb")), which soundfile reads, rather than
    an array / tensor."""
    return hasattr(source, "read") and not hasattr(source, "shape")


def as_array(source) -> np.ndarray:
    if hasattr(source, "detach") and hasattr(source, "cpu"):  # a torch tensor (io.BytesIO has a
        source = source.detach().cpu().numpy()                # `detach` of its own)
    return np.asarray(source)


def channels_last(x: np.ndarray, name: str) -> np.ndarray:
    """Numeric samples `x` as (samples,) or (samples, channels), by the module docstring's
    "Array layout" rule (a view, no copy); a one-line AudioError naming `name` otherwise."""
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number)):
        raise AudioError(f"{name}: expected numeric samples, got dtype {x.dtype}")
    if np.iscomplexobj(x):
        raise AudioError(f"{name}: complex samples are not audio")
    if x.size == 0:  # (0, 2), (2, 0), ...: no samples whatever the layout
        return x.reshape(0)
    # A second axis of <= 8 is channels: the first is either longer or also tiny, and tiny
    # arrays are (samples, channels). Otherwise a first axis of <= 8 is: (channels, samples).
    if x.ndim == 1 or (x.ndim == 2 and x.shape[1] <= MAX_CHANNELS):
        return x
    if x.ndim == 2 and x.shape[0] <= MAX_CHANNELS:
        return x.T
    raise AudioError(f"{name}: expected shape (samples,), (samples, channels) or (channels, "
                     f"samples) with at most {MAX_CHANNELS} channels, got {x.shape}")


def _mixdown(x: np.ndarray) -> np.ndarray:
    """(n,) or (n, channels) float -> (n,) float32, the channels averaged."""
    if x.ndim == 2:
        x = x.mean(axis=1, dtype=np.float64) if x.shape[1] > 1 else x[:, 0]
    return np.asarray(x, dtype=np.float32)


def mono(source, name: str) -> np.ndarray:
    """An audio array / tensor -> (n,) float32 at its own rate: the numeric check, the layout
    rule, integer PCM scaling and the mixdown (steps 1-2); no resampling or filtering, which is
    what `write_video` wants (it keeps the source rate)."""
    return _mixdown(_to_float(channels_last(as_array(source), name), name))


def _from_array(source, sr: int | None) -> np.ndarray:
    x = as_array(source)
    name = f"audio array {tuple(x.shape)}"
    # Orient once, so the row blocks below are (samples, channels) blocks.
    x = channels_last(x, name)
    cond = AudioConditioner(SAMPLE_RATE if sr is None else sr, name)
    out = [cond.push(x[i:i + BLOCK * 4]) for i in range(0, x.shape[0], BLOCK * 4)]
    out.append(cond.flush())
    cond.check_content()
    return np.concatenate(out).astype(np.float32, copy=False)


def _from_file(path: Path, sr: int | None) -> np.ndarray:
    name = str(path)
    if not path.exists():
        raise FileNotFoundError(f"{name}: no such audio file")
    if path.is_dir():
        raise AudioError(f"{name}: is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{name}: file is empty (0 bytes)")
    return _decode(name, name, sr)


def file_object_name(f) -> str:
    """What messages call an open file object: its file name when it has one."""
    name = getattr(f, "name", None)
    return f"audio file object {name}" if isinstance(name, str) else "audio file object"


def _check_seekable(f, name: str) -> None:
    # libsndfile seeks while it reads a header (and we rewind after reading one), so a pipe or
    # socket would fail deep inside soundfile.
    if hasattr(f, "seekable") and not f.seekable():
        raise AudioError(f"{name}: not seekable; read it into io.BytesIO(data) first")


def _open(source, name: str):
    """sf.SoundFile for a path or an open file object; a one-line AudioError if unreadable."""
    import soundfile as sf

    try:
        return sf.SoundFile(source)
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AudioError(f"{name}: cannot read audio ({msg})") from None


def _decode(source, name: str, sr: int | None) -> np.ndarray:
    """Steps 1-6 for a path or an open file object, block by block."""
    f = _open(source, name)
    with f:
        if sr is not None and int(sr) != f.samplerate:
            raise AudioError(f"{name}: sr={sr} given but the file says {f.samplerate} Hz")
        if f.channels < 1:
            raise AudioError(f"{name}: has no channels")
        cond = AudioConditioner(f.samplerate, name)
        out = []
        try:
            for block in f.blocks(blocksize=BLOCK, dtype="float32", always_2d=True):
                # The layout is known here: a file may have more than MAX_CHANNELS channels.
                # The peak is checked per channel, as for arrays (a mixdown can hide one).
                _check_float_peak(block, name)
                out.append(cond.push(_mixdown(block)))
        except AudioError:   # (samples we refuse, already one line naming the file)
            raise
        except Exception as exc:
            raise AudioError(f"{name}: decoding failed part-way ({exc})") from None
        out.append(cond.flush())
    cond.check_content()
    return np.concatenate(out).astype(np.float32, copy=False)


def load_audio(source, sr: int | None = None) -> np.ndarray:
    """Load `source` as float32 mono 16 kHz samples in [-1, 1] (see the module docstring).

    `source`: a path (str / PathLike) to any file soundfile reads (WAV, FLAC, OGG, AIFF, MP3
    with libsndfile >= 1.1, ...), an open, seekable binary file object holding such a file
    (io.BytesIO; read from its current position), or an array / tensor of shape (samples,),
    (samples, channels) or (channels, samples) with at most 8 channels, float in [-1, 1] (peak
    at most MAX_FLOAT_PEAK = 16) or 8- to 32-bit integer PCM. The channel axis is the short one
    of at most 8; an array with both axes <= 8 is read as (samples, channels), one with both
    > 8 is an error. `sr` is the array's sample rate (default 16000); for a file it is read from
    the file, and a different `sr` is an error.
    """
    if isinstance(source, (str, os.PathLike)):
        return _from_file(Path(source), sr)
    if is_file_object(source):
        name = file_object_name(source)
        _check_seekable(source, name)
        return _decode(source, name, sr)
    return _from_array(source, sr)


def duration_seconds(source) -> float:
    """The duration of an audio file (a path or an open file object, left where it was) from its
    header, without decoding; a one-line error if unreadable."""
    frames, rate = file_info(source)
    return frames / rate


def file_info(source) -> tuple[int, int]:
    """(frames, sample rate) of an audio file (a path or an open file object) from its header.
    A file object is rewound to where it was, so it can be read afterwards."""
    name = file_object_name(source) if is_file_object(source) else str(source)
    if not is_file_object(source):
        with _open(str(source), name) as f:
            return f.frames, f.samplerate
    _check_seekable(source, name)
    start = source.tell()
    try:
        with _open(source, name) as f:
            return f.frames, f.samplerate
    finally:
        source.seek(start)
