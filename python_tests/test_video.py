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
    out = write_video(np.zeros((5, 16, 16, 3), np.uint8), tone(0.2, 7000), tmp_path / "c.mp4",
                      sample_rate=7000)
    info = probe(out)
    assert info["sample_rate"] == 48000 and len(info["frames"]) == 5
    silent = probe(write_video(np.zeros((4, 16, 16, 3), np.uint8), None, tmp_path / "d.mp4"))
    assert silent["audio_codec"] is None and len(silent["frames"]) == 4


@pytest.mark.parametrize("frames,audio,kw,message", [
    (np.zeros((3, 16, 16), np.uint8), None, {}, "frames must be a non-empty (F, H, W, 3)"),
    (np.zeros((3, 16, 16, 3), np.float32), None, {}, "frames must be uint8"),
    (np.zeros((3, 15, 16, 3), np.uint8), None, {}, "even width and height"),
    (np.zeros((3, 16, 16, 3), np.uint8), np.zeros(100), {}, "pass sample_rate="),
    (np.zeros((3, 16, 16, 3), np.uint8), np.zeros((2, 100)), dict(sample_rate=16000),
     "audio must be mono"),
    (np.zeros((3, 16, 16, 3), np.uint8), np.zeros(0), dict(sample_rate=16000), "audio is empty"),
    (np.zeros((3, 16, 16, 3), np.uint8), None, dict(fps=0), "fps must be"),
])
def test_bad_inputs_give_one_line_errors_and_no_file(tmp_path, frames, audio, kw, message):
    out = tmp_path / "bad.mp4"
    with pytest.raises(ValueError) as info:
        write_video(frames, audio, out, **kw)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


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
    for args, message in [
        (("missing.npz",), "no such motion file"),
        ((str(tmp_path / "bad.npz"),), "12 expression dims"),
        ((str(tmp_path / "m.npz"), "--bfm", str(tmp_path / "s.wav")), "not a readable MATLAB"),
    ]:
        res = run_cli("render", *args, "-o", str(tmp_path / "x.mp4"), "--size", "32")
        assert res.returncode == 2 and message in res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "x.mp4").exists()
