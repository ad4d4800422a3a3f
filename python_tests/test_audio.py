"""load_audio: every format / rate / bit depth / channel count the tests write, and bad inputs."""

import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from disenttalk_fast.audio import AudioError, load_audio
from disenttalk_fast.audio.load import AudioConditioner

FORMATS = [  # (extension, soundfile format, subtype)
    ("wav", "WAV", "PCM_U8"), ("wav", "WAV", "PCM_16"), ("wav", "WAV", "PCM_24"),
    ("wav", "WAV", "PCM_32"), ("wav", "WAV", "FLOAT"), ("wav", "WAV", "DOUBLE"),
    ("flac", "FLAC", "PCM_16"), ("flac", "FLAC", "PCM_24"), ("ogg", "OGG", "VORBIS"),
    ("aiff", "AIFF", "PCM_16"),
]


def tone(sr, seconds=0.5, freq=440.0, channels=1, amp=0.5):
    t = np.arange(int(sr * seconds)) / sr
    x = amp * np.sin(2 * np.pi * freq * t)
    return np.repeat(x[:, None], channels, axis=1).astype(np.float32) if channels > 1 else \
        x.astype(np.float32)


def dominant_hz(x, sr=16000):
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return np.argmax(spec) * sr / x.size


def check_tone(y, seconds, freq=440.0, amp=0.5, tol_amp=0.08):
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(y.size - seconds * 16000) <= 2
    mid = y[y.size // 4: 3 * y.size // 4]
    assert abs(dominant_hz(mid) - freq) < 5
    assert abs(np.sqrt(2 * np.mean(mid ** 2)) - amp) < tol_amp


@pytest.mark.parametrize("ext,fmt,subtype", FORMATS)
def test_formats_and_bit_depths(tmp_path, ext, fmt, subtype):
    path = tmp_path / f"a.{ext}"
    sf.write(path, tone(22050), 22050, format=fmt, subtype=subtype)
    check_tone(load_audio(path), 0.5, tol_amp=0.1 if subtype == "PCM_U8" else 0.03)


@pytest.mark.parametrize("sr", [8000, 11025, 16000, 22050, 32000, 44100, 48000])
def test_sample_rates(tmp_path, sr):
    path = tmp_path / "a.wav"
    sf.write(path, tone(sr, freq=300.0), sr, subtype="PCM_16")
    check_tone(load_audio(path), 0.5, freq=300.0, tol_amp=0.03)


@pytest.mark.parametrize("channels", [1, 2, 3, 6])
def test_channel_counts_mix_down(tmp_path, channels):
    path = tmp_path / "a.flac"
    x = tone(16000, channels=channels)
    if channels > 1:
        x[:, 1:] = 0  # only channel 0 carries the tone: the average scales it by 1 / channels
    sf.write(path, x, 16000)
    check_tone(load_audio(path), 0.5, amp=0.5 / channels, tol_amp=0.01)


def test_array_inputs_and_int_pcm():
    x = tone(16000)
    np.testing.assert_allclose(load_audio((x * 32767).astype(np.int16)), load_audio(x), atol=2e-4)
    import torch

    np.testing.assert_array_equal(load_audio(torch.from_numpy(x)), load_audio(x))
    check_tone(load_audio(tone(44100), sr=44100), 0.5, tol_amp=0.03)


def stereo(x, first):
    """(2, n) or (n, 2): the tone in channel 0, silence in channel 1 (the mean halves it)."""
    return np.stack([x, np.zeros_like(x)], 0 if first else 1)


@pytest.mark.parametrize("layout", ["(2, n)", "(n, 2)", "(1, n)", "(n, 1)", "(6, n)",
                                    "(2, n) int16", "(2, n) torch"])
def test_channels_first_and_last_arrays(layout):
    # torchaudio gives (channels, samples), soundfile (samples, channels): the short axis of
    # <= 8 is the channels, whichever it is.
    x = tone(22050)
    if layout.startswith("(6, n)"):
        arr, amp = np.concatenate([x[None], np.zeros((5, x.size), np.float32)]), 0.5 / 6
    elif layout in ("(1, n)", "(n, 1)"):
        arr, amp = (x[None] if layout == "(1, n)" else x[:, None]), 0.5
    else:
        arr, amp = stereo(x, first=layout.startswith("(2, n)")), 0.25
    if layout.endswith("int16"):
        arr = (arr * 32767).astype(np.int16)
    if layout.endswith("torch"):
        import torch

        arr = torch.from_numpy(arr)
    check_tone(load_audio(arr, sr=22050), 0.5, amp=amp, tol_amp=0.01)


def test_tiny_arrays_are_samples_by_channels():
    # Both axes <= 8 is ambiguous: documented as (samples, channels).
    assert load_audio(np.zeros((4, 2), np.float32)).shape == (4,)
    assert load_audio(np.zeros((2, 5), np.float32)).shape == (2,)


@pytest.mark.parametrize("shape", [(50, 80), (80, 50), (9, 9)])
def test_no_axis_can_be_channels(shape):
    with pytest.raises(AudioError) as info:
        load_audio(np.zeros(shape, np.float32))
    msg = str(info.value)
    assert str(shape) in msg and "(channels, samples)" in msg and "\n" not in msg


def test_file_with_more_than_eight_channels_still_loads(tmp_path):
    # The layout rule is for arrays; a file says its own channel count.
    path = tmp_path / "many.wav"
    x = tone(16000, channels=12)
    x[:, 1:] = 0
    sf.write(path, x, 16000)
    check_tone(load_audio(path), 0.5, amp=0.5 / 12, tol_amp=0.01)


def test_conditioner_push_reads_channels_first_blocks():
    x = tone(44100)
    want = load_audio(x, sr=44100)
    cond = AudioConditioner(44100)
    both = stereo(x, first=True) * 2        # the mean of (2x, 0) is x
    parts = [cond.push(both[:, i:i + 4410]) for i in range(0, x.size, 4410)]
    parts.append(cond.flush())
    np.testing.assert_allclose(np.concatenate(parts), want, atol=1e-6)


@pytest.mark.parametrize("bad,message", [
    (np.zeros(100, bool), "expected numeric samples, got dtype bool"),
    (np.zeros(100, np.complex64), "complex samples are not audio"),
    (np.zeros((50, 80), np.float32), "at most 8 channels, got (50, 80)"),
])
def test_conditioner_push_rejects_what_load_audio_rejects(bad, message):
    import warnings

    for call in (lambda: load_audio(bad), lambda: AudioConditioner(16000, "stream").push(bad)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")      # a ComplexWarning is not an error message
            with pytest.raises(AudioError) as info:
                call()
        assert message in str(info.value) and "\n" not in str(info.value)


def test_generate_and_stream_read_channels_first_audio():
    from generate_testing import tiny_model

    from disenttalk_fast.generate import generate
    from disenttalk_fast.stream import Streamer

    model = tiny_model(seed=1)
    x = tone(16000, seconds=1.0)
    kw = dict(steps=2, seed=3, window=8, overlap=4, progress=False)
    mono_motion = generate(model, x, **kw)
    both = stereo(x, first=True) * 2
    motion = generate(model, both, **kw)
    assert motion.num_frames == mono_motion.num_frames == 25
    np.testing.assert_allclose(motion.exp, mono_motion.exp, atol=1e-5)
    s = Streamer(model, hop_frames=4, overlap_frames=4, steps=2, seed=3)
    parts = [s.push(both[:, i:i + 3200]) for i in range(0, x.size, 3200)]
    parts.append(s.flush())
    assert sum(p.num_frames for p in parts) == 25


def test_chunking_does_not_change_the_result():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(44100).astype(np.float32) * 0.2 + 0.1
    whole = load_audio(x, sr=44100)
    cond = AudioConditioner(44100)
    parts, i = [], 0
    for n in [1, 441, 4410, 7, 16000, 9999] * 3:
        parts.append(cond.push(x[i:i + n]))
        i += n
    parts.append(cond.push(x[i:]))
    parts.append(cond.flush())
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-6)


def test_dc_offset_removed_and_clipping_bounded(tmp_path):
    x = tone(16000, seconds=2.0) + 0.4          # DC offset 0.4
    y = load_audio(x)
    assert abs(y[8000:].mean()) < 1e-3          # after the filter settles (~0.2 s)
    check_tone(y[4000:], 1.75, tol_amp=0.02)
    path = tmp_path / "hot.wav"
    sf.write(path, 3.0 * tone(16000), 16000, subtype="FLOAT")   # float file far beyond full scale
    y = load_audio(path)
    assert np.abs(y).max() <= 1.0 and np.isfinite(y).all()


def test_some_nan_samples_become_silence():
    x = tone(16000)
    x[100:200] = np.nan
    y = load_audio(x)
    assert np.isfinite(y).all()


@pytest.mark.parametrize("case", ["zero_bytes", "zero_frames", "all_nan", "garbage", "missing",
                                  "directory"])
def test_bad_files_give_one_line_errors(tmp_path, case):
    path = tmp_path / "bad.wav"
    if case == "zero_bytes":
        path.write_bytes(b"")
    elif case == "zero_frames":
        sf.write(path, np.zeros(0, np.float32), 16000)
    elif case == "all_nan":
        sf.write(path, np.full(1000, np.nan, np.float32), 16000, subtype="FLOAT")
    elif case == "garbage":
        path.write_bytes(b"RIFF not really a wave file" * 10)
    elif case == "directory":
        path.mkdir()
    with pytest.raises((AudioError, FileNotFoundError)) as info:
        load_audio(path)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg


@pytest.mark.parametrize("bad", [np.zeros(0, np.float32), np.full(50, np.nan, np.float32),
                                 np.zeros((2, 3, 4), np.float32), np.array(["a", "b"])])
def test_bad_arrays(bad):
    with pytest.raises(AudioError):
        load_audio(bad)


def test_bad_rates(tmp_path):
    with pytest.raises(AudioError, match="sample rate"):
        load_audio(np.zeros(100, np.float32), sr=100)
    path = tmp_path / "a.wav"
    sf.write(path, tone(22050), 22050)
    with pytest.raises(AudioError, match="22050"):
        load_audio(path, sr=16000)


def test_long_file_loads_in_bounded_memory(tmp_path):
    # 2 minutes of 48 kHz stereo: decoding it whole would need 46 MB of float32 at the source
    # rate; block-wise reading keeps the peak near the 16 kHz output (7.7 MB) plus blocks.
    seconds, sr = 120, 48000
    path = tmp_path / "long.wav"
    with sf.SoundFile(path, "w", sr, 2, subtype="PCM_16") as f:
        block = (0.3 * np.sin(np.arange(sr) / sr * 2 * np.pi * 200)).astype(np.float32)
        for _ in range(seconds):
            f.write(np.stack([block, block], 1))
    tracemalloc.start()
    y = load_audio(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert abs(y.size - seconds * 16000) <= 2
    assert peak < 24e6, f"peak {peak / 1e6:.1f} MB"


def test_one_pole_matches_the_recursion():
    from disenttalk_fast.audio.load import one_pole

    d = np.random.default_rng(0).standard_normal(5000)
    want, y = np.empty_like(d), 0.3
    for i, v in enumerate(d):
        y = v + 0.995 * y
        want[i] = y
    np.testing.assert_allclose(one_pole(d, 0.3, 0.995), want, rtol=1e-10, atol=1e-10)


# -- integer widths, float range, file objects -------------------------------------------------
def one_line_error(call, *fragments):
    with pytest.raises(AudioError) as info:
        call()
    msg = str(info.value)
    assert "\n" not in msg and all(f in msg for f in fragments), msg
    return msg


def test_integer_pcm_widths_scale_to_full_scale():
    x = tone(16000)
    want = load_audio(x)
    for dtype, scale in [(np.int8, 127), (np.int16, 32767), (np.int32, 2 ** 31 - 1)]:
        np.testing.assert_allclose(load_audio((x * scale).astype(dtype)), want, atol=2e-2)
    # Unsigned PCM is offset binary (silence at mid-scale), like WAV's 8-bit samples.
    np.testing.assert_allclose(load_audio((x * 32767 + 32768).astype(np.uint16)), want, atol=1e-3)


@pytest.mark.parametrize("kind", ["int64", "uint64", "list", "torch"])
def test_64_bit_integer_samples_are_refused_not_silence(kind):
    # Regression: int64 was scaled by 2^63, so int16-range values came out as ~silence (RMS
    # 3e-16). np.asarray(list of Python ints) and torch integer tensors are int64.
    pcm = (tone(16000) * 10000).astype(np.int64)
    arr = {"int64": pcm, "uint64": pcm.astype(np.uint64), "list": pcm.tolist()}.get(kind)
    if kind == "torch":
        import torch

        arr = torch.from_numpy(pcm)
    dtype = "uint64" if kind == "uint64" else "int64"
    one_line_error(lambda: load_audio(arr), f"({dtype})", "int16 / int32 PCM",
                   "float in [-1, 1]")
    one_line_error(lambda: AudioConditioner(16000, "stream").push(arr), "stream:", dtype)


@pytest.mark.parametrize("case", ["int16_range_float", "spike_1e30", "float64_1e300",
                                  "spike_after_nan"])
def test_float_far_beyond_full_scale_is_refused_not_clipped(case):
    # Regression: these were clipped into a square wave (and one 1e30 sample saturated the DC
    # blocker's state for ~0.8 s).
    x = tone(16000)
    if case == "int16_range_float":
        x = x * 32767
    elif case == "spike_1e30":
        x[100] = 1e30
    elif case == "float64_1e300":
        x = x.astype(np.float64)
        x[100] = 1e300
    else:
        x[:50] = np.nan
        x[100] = 20.0
    peak = {"int16_range_float": "1.638e+04", "spike_1e30": "1e+30", "float64_1e300": "1e+300",
            "spike_after_nan": "reach 20,"}[case]
    one_line_error(lambda: load_audio(x), "audio array (8000,)", peak, "divide it by 32768")
    one_line_error(lambda: AudioConditioner(16000, "stream").push(x), "stream:", peak)


def test_ordinary_overshoot_still_loads_and_clips_as_before(tmp_path):
    from disenttalk_fast.audio.load import MAX_FLOAT_PEAK

    y = load_audio(1.2 / 0.5 * tone(16000))        # peak 1.2: clipped to [-1, 1]
    assert np.abs(y).max() <= 1.0 and (np.abs(y) > 0.99).mean() > 0.1
    load_audio(np.full(100, MAX_FLOAT_PEAK, np.float32))   # the bound itself passes
    path = tmp_path / "int_range.wav"                # a float file holding int16-range values
    sf.write(path, tone(16000) * 32767, 16000, subtype="FLOAT")
    one_line_error(lambda: load_audio(path), str(path), "divide it by 32768")
    # Checked per channel, in files as in arrays: opposite channels must not cancel it out.
    stereo = np.stack([40 * tone(16000), -36 * tone(16000)], axis=1)   # peaks 20, 18; mean 1
    sf.write(path, stereo, 16000, subtype="FLOAT")
    one_line_error(lambda: load_audio(path), str(path), "reach 20")
    one_line_error(lambda: load_audio(stereo), "audio array", "reach 20")


def test_file_objects_read_like_paths(tmp_path):
    import io

    path = tmp_path / "a.flac"
    sf.write(path, tone(22050), 22050)
    data = path.read_bytes()
    np.testing.assert_array_equal(load_audio(io.BytesIO(data)), load_audio(path))
    with open(path, "rb") as f:
        np.testing.assert_array_equal(load_audio(f), load_audio(path))
    one_line_error(lambda: load_audio(io.BytesIO(data), sr=16000), "audio file object",
                   "22050")
    one_line_error(lambda: load_audio(io.BytesIO(b"not audio" * 50)), "audio file object",
                   "cannot read audio")

    class Pipe(io.RawIOBase):   # a stream soundfile cannot seek in
        def readable(self):
            return True

        def seekable(self):
            return False

    one_line_error(lambda: load_audio(Pipe()), "not seekable", "io.BytesIO")
    # An array, not a file: the numeric check, not BytesIO.detach's io.UnsupportedOperation.
    one_line_error(lambda: AudioConditioner(16000, "stream").push(io.BytesIO(data)),
                   "expected numeric samples")
