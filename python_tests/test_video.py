"""write_video: decodes to the right frames, size, fps and audio; never leaves partial files;
and the `disenttalk render` command end to end."""

import subprocess
import sys
import tempfile

import av
import numpy as np
import pytest
import soundfile as sf

from disenttalk_fast import video
from disenttalk_fast.video import write_video


def probe(path):
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], (c.streams.audio[0] if c.streams.audio else None)
        info = dict(codec=v.codec_context.name, width=v.width, height=v.height,
                    fps=float(v.average_rate),
                    audio_codec=a.codec_context.name if a else None,
                    audio_seconds=float(a.duration * a.time_base) if a else None,
                    sample_rate=a.sample_rate if a else None)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    info["frames"] = frames
    return info


def tone(seconds, rate=16000):
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)


def test_decodes_to_the_right_frames_size_fps_and_audio(tmp_path):
    frames = np.zeros((25, 48, 64, 3), np.uint8)
    frames[:, :, :, 0] = np.arange(25, dtype=np.uint8)[:, None, None] * 10
    audio = tone(1.0)
    out = write_video(frames, audio, tmp_path / "a.mp4", fps=25, sample_rate=16000)
    info = probe(out)
    assert info["codec"] == "h264" and info["audio_codec"] == "aac"
    assert (info["width"], info["height"]) == (64, 48)
    assert info["fps"] == 25
    assert len(info["frames"]) == 25
    assert abs(info["audio_seconds"] - 1.0) <= 1 / 25
    assert info["sample_rate"] == 16000
    # Content survives encoding (red ramp over time).
    reds = [f[..., 0].mean() for f in info["frames"]]
    assert abs(reds[0] - 0) < 6 and abs(reds[-1] - 240) < 6


@pytest.mark.parametrize("n_frames", [20, 37])
def test_video_is_conformed_to_the_audio_length(tmp_path, n_frames):
    wav = tmp_path / "s.wav"
    sf.write(wav, tone(1.2, 22050), 22050)
    frames = np.full((n_frames, 32, 32, 3), 128, np.uint8)
    with pytest.warns(UserWarning, match="frames for audio lasting 30 frames"):
        out = write_video(frames, wav, tmp_path / "b.mp4")
    info = probe(out)
    assert len(info["frames"]) == 30
    assert abs(info["audio_seconds"] - 1.2) <= 1 / 25


def test_odd_rate_is_resampled_and_silent_video_works(tmp_path):
    out = write_video(np.zeros((5, 16, 16, 3), np.uint8), tone(0.2, 10000), tmp_path / "c.mp4",
                      sample_rate=10000)
    info = probe(out)
    assert info["sample_rate"] == 48000 and len(info["frames"]) == 5
    silent = probe(write_video(np.zeros((4, 16, 16, 3), np.uint8), None, tmp_path / "d.mp4"))
    assert silent["audio_codec"] is None and len(silent["frames"]) == 4


@pytest.mark.parametrize("frames,audio,kw,message", [
    (np.zeros((3, 16, 16), np.uint8), None, {}, "frames must be a non-empty (F, H, W, 3)"),
    (np.zeros((3, 16, 16, 3), np.float32), None, {}, "frames must be uint8"),
    (np.zeros((3, 15, 16, 3), np.uint8), None, {}, "even width and height"),
    (np.zeros((3, 16, 16, 3), np.uint8), np.zeros(100), {}, "pass sample_rate="),
    (np.zeros((3, 16, 16, 3), np.uint8), np.zeros((50, 80)), dict(sample_rate=16000),
     "at most 8 channels, got (50, 80)"),
    (np.zeros((3, 16, 16, 3), np.uint8), np.zeros(100, bool), dict(sample_rate=16000),
     "expected numeric samples, got dtype bool"),
    (np.zeros((3, 16, 16, 3), np.uint8), np.zeros(0), dict(sample_rate=16000), "audio is empty"),
    (np.zeros((3, 16, 16, 3), np.uint8), np.full(100, np.nan), dict(sample_rate=16000),
     "every audio sample is NaN or infinite"),
    (np.zeros((3, 16, 16, 3), np.uint8), None, dict(fps=0), "fps must be"),
    (np.zeros((3, 16, 16, 3), np.uint8), None, dict(fps=1e-9), "fps must be"),
    (np.zeros((3, 16, 16, 3), np.uint8), None, dict(fps=float("nan")), "fps must be"),
    (np.zeros((3, 16, 16, 3), np.uint8), None, dict(fps=True), "fps must be"),
    *[(np.zeros((3, 16, 16, 3), np.uint8), np.zeros(1600), dict(sample_rate=sr),
       "sample_rate must be a whole number of Hz in 8000..384000")
      for sr in (0, -5, 1, 7999, 384001, 16000.5, True, "16000")],
    *[(np.zeros((3, 16, 16, 3), np.uint8), np.zeros(1600), dict(sample_rate=16000, crf=crf),
       "crf must be an integer in 0..51") for crf in (-1, 52, 100, 18.5, None)],
    *[(np.zeros((3, 16, 16, 3), np.uint8), np.zeros(1600),
       dict(sample_rate=16000, audio_bitrate=b), "audio_bitrate must be an integer in 8000..512000")
      for b in (-1, 0, 7999, 512_001, 128e3)],
])
def test_bad_inputs_give_one_line_errors_and_no_file(tmp_path, frames, audio, kw, message):
    out = tmp_path / "bad.mp4"
    with pytest.raises(ValueError) as info:
        write_video(frames, audio, out, **kw)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["out.avi", "out.mkv", "out.webm", "out"])
def test_non_mp4_names_are_refused(tmp_path, name):
    # The content is always MP4: an .avi name would promise a container it is not.
    with pytest.raises(ValueError) as info:
        write_video(np.zeros((2, 16, 16, 3), np.uint8), None, tmp_path / name)
    msg = str(info.value)
    assert name in msg and ".mp4" in msg and "\n" not in msg
    assert list(tmp_path.iterdir()) == []


def test_mp4_family_names_and_numpy_scalars_are_accepted(tmp_path):
    frames = np.zeros((5, 16, 16, 3), np.uint8)
    for name in ("a.m4v", "b.MOV", "c.Mp4"):
        assert probe(write_video(frames, None, tmp_path / name))["codec"] == "h264"
    info = probe(write_video(frames, tone(0.2), tmp_path / "d.mp4", fps=np.float32(25),
                             sample_rate=np.int64(16000), crf=np.int32(30)))
    assert info["fps"] == 25 and info["sample_rate"] == 16000 and len(info["frames"]) == 5


def decoded_audio(path):
    with av.open(str(path)) as c:
        return np.concatenate([f.to_ndarray().ravel() for f in c.decode(audio=0)])


@pytest.mark.parametrize("layout", ["(n,) float", "(n,) int16", "(n, 2) int16", "(2, n) float",
                                    "(2, n) torch"])
def test_audio_arrays_are_read_as_load_audio_reads_them(tmp_path, layout):
    # Integer PCM is scaled (not clipped to full-scale noise), stereo either way round is mixed
    # down: the tone comes out at its level (stereo (2x, 0) averages to x).
    x = tone(1.0)
    if layout.startswith("(n,)"):
        arr, amp = x, 0.3
    else:
        arr, amp = np.stack([2 * x, np.zeros_like(x)], 0 if layout.startswith("(2, n)") else 1), 0.3
    if layout.endswith("int16"):
        arr = (arr * 32767).astype(np.int16)
    if layout.endswith("torch"):
        import torch

        arr = torch.from_numpy(arr)
    out = write_video(np.zeros((25, 16, 16, 3), np.uint8), arr, tmp_path / "a.mp4",
                      sample_rate=16000)
    y = decoded_audio(out)
    mid = y[y.size // 4: 3 * y.size // 4]
    assert abs(np.sqrt(2 * np.mean(mid ** 2)) - amp) < 0.02
    spec = np.abs(np.fft.rfft(mid))
    assert abs(np.argmax(spec) * 16000 / mid.size - 330) < 5


def test_missing_audio_file_and_folder(tmp_path):
    frames = np.zeros((2, 16, 16, 3), np.uint8)
    with pytest.raises(FileNotFoundError, match="no such audio file"):
        write_video(frames, tmp_path / "nope.wav", tmp_path / "x.mp4")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_video(frames, None, tmp_path / "no" / "x.mp4")


def test_failure_while_encoding_leaves_nothing_behind(tmp_path, monkeypatch):
    out = tmp_path / "e.mp4"
    out.write_bytes(b"previous complete file")

    def broken(tmp, *args):
        with open(tmp, "wb") as f:
            f.write(b"half a video")
        raise RuntimeError("encoder died")

    monkeypatch.setattr(video, "_encode", broken)
    with pytest.raises(RuntimeError, match="encoder died"):
        write_video(np.zeros((2, 16, 16, 3), np.uint8), None, out)
    assert out.read_bytes() == b"previous complete file"   # untouched
    assert [p.name for p in tmp_path.iterdir()] == ["e.mp4"]  # no temp file left


def run_cli(*args):
    # Run away from the source tree so that `-m` imports the installed package (with _C).
    return subprocess.run([sys.executable, "-m", "disenttalk_fast.cli", *args],
                          capture_output=True, text=True, timeout=300, cwd=tempfile.gettempdir())


def test_render_command_end_to_end(tmp_path):
    from disenttalk_fast.facemodel.morphable import MorphableModel

    face = MorphableModel.builtin()
    w = np.zeros((10, 19), np.float32)
    w[:, 0] = np.linspace(0, 1, 10)
    np.savez(tmp_path / "m.npz", exp=face.weights_to_exp(w), fps=np.array(25.0))
    sf.write(tmp_path / "s.wav", tone(0.4), 16000)
    res = run_cli("render", str(tmp_path / "m.npz"), "-o", str(tmp_path / "o.mp4"),
                  "--audio", str(tmp_path / "s.wav"), "--size", "64")
    assert res.returncode == 0, res.stderr
    info = probe(tmp_path / "o.mp4")
    assert len(info["frames"]) == 10 and info["width"] == 64
    # Errors: one line, exit status 2, no output file.
    np.savez(tmp_path / "bad.npz", exp=np.zeros((4, 12), np.float32))
    np.savez(tmp_path / "none.npz", exp=np.zeros((0, face.exp_dims), np.float32))
    np.savez(tmp_path / "fast.npz", exp=face.weights_to_exp(w), fps=np.array(1000.0))
    for args, message in [
        (("missing.npz",), "no such motion file"),
        ((str(tmp_path / "bad.npz"),), "12 expression dims"),
        ((str(tmp_path / "none.npz"),), "none.npz: the motion has no frames"),
        ((str(tmp_path / "fast.npz"),), "fast.npz: a video needs 1-240 fps"),
        ((str(tmp_path / "m.npz"), "--bfm", str(tmp_path / "s.wav")), "not a readable MATLAB"),
    ]:
        res = run_cli("render", *args, "-o", str(tmp_path / "x.mp4"), "--size", "32")
        assert res.returncode == 2 and message in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "x.mp4").exists()


def test_partly_non_finite_audio_is_silenced_as_load_audio_does(tmp_path):
    x = tone(0.4)
    x[1000:1100] = np.nan
    write_video(np.zeros((10, 16, 16, 3), np.uint8), x, tmp_path / "o.mp4", sample_rate=16000)
    assert probe(tmp_path / "o.mp4")["audio_codec"] == "aac"
