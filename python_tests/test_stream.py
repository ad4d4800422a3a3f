"""Streamer: streamed motion equals offline windowed generation; chunk borders leave no trace."""

import numpy as np
import pytest

from disenttalk_fast.generate import as_checkpoint, build_control, generate
from disenttalk_fast.motion import Motion
from disenttalk_fast.sampling import RegionControl
from disenttalk_fast.stream import Streamer
from generate_testing import tiny_model

HOP, OVERLAP = 3, 5


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    # Two causal audio layers: the encoder needs carried-over context across windows.
    return tiny_model(seed=1, audio_layers=2, audio_kernel=3)


def speech_like(seconds, seed=0, sr=16000):
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    x = 0.3 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 2.7 * t))
    return (x + 0.02 * rng.standard_normal(t.size) + 0.05).astype(np.float32)   # + DC offset


def stream(model, x, chunk_sizes, **kw):
    s = Streamer(model, hop_frames=HOP, overlap_frames=OVERLAP, steps=3, seed=7, **kw)
    parts, i, k = [], 0, 0
    while i < x.shape[0]:
        n = chunk_sizes[k % len(chunk_sizes)]
        parts.append(s.push(x[i:i + n]))
        i, k = i + n, k + 1
    parts.append(s.flush())
    return s, parts


def offline(model, x, **kw):
    return generate(model, x, steps=3, seed=7, window=HOP + OVERLAP, overlap=OVERLAP,
                    progress=False, **kw)


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(b).max())))


@pytest.mark.parametrize("seconds", [0.2, 0.32, 1.0, 1.37])   # < window, = window, longer, odd
def test_stream_equals_offline_windowed(model, seconds):
    x = speech_like(seconds)
    ref = offline(model, x)
    s, parts = stream(model, x, [160, 8000, 1234, 3200, 17])   # 10 ms .. 500 ms and odd sizes
    got = np.concatenate([p.exp for p in parts])
    assert got.shape == ref.exp.shape
    close(got, ref.exp)
    firsts = [p.meta["first_frame"] for p in parts if p.num_frames]
    assert firsts == sorted(firsts) and firsts[0] == 0


def test_chunk_size_does_not_matter(model):
    x = speech_like(1.1, seed=2)
    outs = []
    for sizes in ([160], [8000], [3], [641, 639, 7777]):
        _, parts = stream(model, x, sizes)
        outs.append(np.concatenate([p.exp for p in parts]))
    for o in outs[1:]:
        close(o, outs[0])


def test_frames_are_emitted_as_soon_as_final(model):
    x = speech_like(1.0)
    s = Streamer(model, hop_frames=HOP, overlap_frames=OVERLAP, steps=2)
    window = HOP + OVERLAP
    # The first window needs rows < 2 * window, i.e. samples up to 640 * window + 40.
    assert s.push(x[:640 * window + 39]).num_frames == 0
    assert s.push(x[640 * window + 39:640 * window + 40]).num_frames == window
    assert s.push(x[640 * window + 40:640 * (window + HOP) + 40]).num_frames == HOP
    lat = s.latency()
    assert lat["algorithmic_ms"] == pytest.approx(HOP * 40 + 2.5 + 20.0)
    assert lat["windows"] == 2 and lat["compute_ms"] > 0 and lat["total_ms"] > lat["algorithmic_ms"]
    # The audio path of the three pushes (their conditioning; mel rows and encoding run in the
    # windows) counts too: per chunk in the latency, per hop of audio (pushed: window + hop
    # frames and 40 samples) in the real-time factor.
    assert s.audio_chunks == 3 and lat["audio_ms_per_chunk"] > 0
    s.push(np.zeros(0, np.float32))   # an empty push is not a chunk
    assert s.audio_chunks == 3
    hops = (640 * (window + HOP) + 40) / (640 * HOP)
    assert lat["audio_ms_per_hop"] == pytest.approx(1000 * s.audio_seconds / hops)
    assert lat["total_ms"] == pytest.approx(lat["algorithmic_ms"] + lat["compute_ms"]
                                            + lat["audio_ms_per_chunk"])
    assert lat["real_time_factor"] == pytest.approx(
        (lat["compute_ms"] + lat["audio_ms_per_hop"]) / (HOP * 40))


def test_audio_is_encoded_once_per_window_not_per_chunk(model, monkeypatch):
    """Mel rows and their encoding wait until a window needs them: 20 ms chunks cost only their
    conditioning, and the streamed motion still equals the offline one (tests above)."""
    s = Streamer(model, hop_frames=HOP, overlap_frames=OVERLAP, steps=2)
    calls = []
    real = s.model.encode_audio
    monkeypatch.setattr(s.model, "encode_audio", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = speech_like(1.0)
    pushes = [s.push(x[i:i + 320]) for i in range(0, x.size, 320)]
    assert len(pushes) == 50 and len(s.window_seconds) >= 3
    assert len(calls) == len(s.window_seconds)


def test_stream_int16_stereo_44k_matches_offline(model):
    x = speech_like(0.9, sr=44100)
    stereo = (np.stack([x, 0.5 * x], 1) * 32767).astype(np.int16)
    ref = offline(model, stereo, sr=44100)
    _, parts = stream(model, stereo, [441, 4410, 999], sample_rate=44100)
    close(np.concatenate([p.exp for p in parts]), ref.exp)


def test_stream_with_region_control_and_pose(model):
    x = speech_like(0.8)
    ckpt_like = as_checkpoint(model)
    n = 20
    eyes = Motion(np.random.default_rng(1).standard_normal((7, 64)).astype(np.float32))
    ctrl = build_control(ckpt_like, n, scale={"lip": 1.4}, freeze=("global",),
                         replace_from={"eye": eyes})
    pose = np.random.default_rng(0).standard_normal((7, 6)).astype(np.float32)
    ref = offline(model, x, control=ctrl, pose=pose)
    _, parts = stream(model, x, [1000], control=ctrl, pose=pose)
    close(np.concatenate([p.exp for p in parts]), ref.exp)
    np.testing.assert_array_equal(np.concatenate([p.pose for p in parts]), ref.pose)


def test_stream_pose_reference_at_50_fps_is_resampled(model):
    """A Motion records its rate: a 50 fps pose plays at its own speed, as offline."""
    x = speech_like(0.8)
    t50 = np.arange(60) / 50
    pose = np.stack([t50] * 6, axis=1).astype(np.float32)
    ref = Motion(np.zeros((60, 64), np.float32), pose, fps=50.0)
    _, parts = stream(model, x, [1000], pose=ref)
    got = np.concatenate([p.pose for p in parts])
    np.testing.assert_allclose(got[:, 0], np.arange(len(got)) / 25, atol=1e-6)
    np.testing.assert_array_equal(got, offline(model, x, pose=ref).pose)


def test_stream_errors(model):
    with pytest.raises(ValueError, match="hop_frames"):
        Streamer(model, hop_frames=0)
    s = Streamer(model, hop_frames=2, overlap_frames=2)
    with pytest.raises(ValueError, match="no samples"):
        s.flush()
    s = Streamer(model, hop_frames=2, overlap_frames=2)
    s.push(np.zeros(700, np.float32))
    s.flush()
    with pytest.raises(RuntimeError, match="after flush"):
        s.push(np.zeros(10, np.float32))
    s.reset()
    assert s.push(np.zeros(10, np.float32)).num_frames == 0
    hub = tiny_model(feature_type="hubert", audio_dim=32)
    with pytest.raises(ValueError, match="mel"):
        Streamer(hub)


@pytest.mark.parametrize("kwargs,match", [
    ({"control": {"lip": 1.2}}, "control must be a RegionControl"),
    ({"chunk_ms": "20"}, "chunk_ms must be a number"), ({"sample_rate": 44100.7}, "whole number"),
    ({"sample_rate": None}, "whole number"), ({"seed": -1}, "seed must be an integer"),
    ({"backend": "foo"}, "unknown backend"),
    ({"guidance": 1e20}, r"guidance scale must be in \[0, 100\]"),
    ({"hop_frames": 2.0}, "hop_frames must be an integer"),
    # A reference of the wrong width: checked when made, not at the first window mid-stream.
    ({"control": RegionControl(replace={"eye": np.zeros((50, 7), np.float32)})},
     "last dim must be N=64"),
])
def test_stream_argument_errors_at_construction(model, kwargs, match):
    with pytest.raises((ValueError, RuntimeError), match=match) as info:
        Streamer(model, **kwargs)
    assert "\n" not in str(info.value)
    assert model.backend == "reference"


def test_stream_numpy_integer_settings(model):
    s = Streamer(model, hop_frames=np.int64(3), overlap_frames=np.int32(5))
    assert (s.hop, s.overlap, s.window) == (3, 5, 8) and type(s.window) is int


def test_stream_refuses_to_emit_non_finite_motion(model, monkeypatch):
    """A window whose motion overflowed is a one-line error, not NaN frames."""
    import torch

    s = Streamer(model, hop_frames=HOP, overlap_frames=OVERLAP, steps=2)
    real = type(s.window_sampler).__call__
    monkeypatch.setattr(type(s.window_sampler), "__call__",
                        lambda self, *a, **k: real(self, *a, **k) * torch.tensor(float("inf")))
    with pytest.raises(ValueError, match="the generated motion is not finite"):
        s.push(speech_like(0.5))
        s.flush()


def test_stream_backend_leaves_the_model_alone(model):
    x = speech_like(0.5)
    s, parts = stream(model, x, [1000], backend="cpu")
    assert s.model.backend == "cpu" and model.backend == "reference"
    _, ref = stream(model, x, [1000])
    close(np.concatenate([p.exp for p in parts]), np.concatenate([p.exp for p in ref]))


@pytest.mark.parametrize("pcm,message", [
    (np.arange(3200, dtype=np.int64), "64-bit integer samples (int64)"),
    ([0, 1, -1, 2] * 800, "64-bit integer samples (int64)"),
    (np.full(3200, 3e4, np.float32), "divide it by 32768"),
    (np.r_[np.zeros(3199, np.float32), 1e30], "float samples reach 1e+30"),
])
def test_push_refuses_unscalable_samples_and_keeps_going(model, pcm, message):
    # Regression: int64 came out as silence, far out-of-range floats as a clipped square wave.
    s = Streamer(model, hop_frames=HOP, overlap_frames=OVERLAP, steps=3, seed=7)
    x = speech_like(0.5)
    first = s.push(x[:4000])
    with pytest.raises(ValueError) as info:
        s.push(pcm)
    assert message in str(info.value) and "\n" not in str(info.value)
    # A refused push leaves the stream as it was: the rest equals a stream without it.
    parts = [first, s.push(x[4000:]), s.flush()]
    got = np.concatenate([p.exp for p in parts])
    _, ref = stream(model, x, [4000, 4000])
    close(got, np.concatenate([p.exp for p in ref]))
