"""generate() and `disenttalk generate` end to end on a tiny model."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from disenttalk_fast.checkpoint import save_checkpoint
from disenttalk_fast.cli import main
from disenttalk_fast.generate import build_control, fit_length, generate, load_model
from disenttalk_fast.interop import read_motion
from disenttalk_fast.motion import Motion
from generate_testing import tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ckpt_path(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    m = tiny_model()
    rng = np.random.default_rng(0)
    mean = rng.standard_normal(64).astype(np.float32)
    std = (0.5 + rng.random(64)).astype(np.float32)
    save_checkpoint(folder / "tiny.safetensors", m, partition=m.partition, exp_mean=mean,
                    exp_std=std)
    return folder / "tiny.safetensors"


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "speech.wav"
    rng = np.random.default_rng(1)
    t = np.arange(int(16000 * 1.23)) / 16000     # 1.23 s -> ceil(30.75) = 31 frames
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
    sf.write(path, (x + 0.01 * rng.standard_normal(t.size)).astype(np.float32), 16000)
    return path


def test_generate_end_to_end(ckpt_path, wav):
    ckpt = load_model(ckpt_path, "cpu", "reference")
    m = generate(ckpt, wav, steps=4, seed=3, progress=False)
    assert isinstance(m, Motion) and m.exp.shape == (31, 64) and m.fps == 25
    assert m.pose.shape == (31, 6) and not m.pose.any()      # static pose by default
    assert m.partition == ckpt.partition and np.isfinite(m.exp).all()
    assert m.meta["sampler"] == "ddim" and m.meta["seed"] == 3
    again = generate(ckpt, wav, steps=4, seed=3, progress=False)
    np.testing.assert_array_equal(m.exp, again.exp)           # deterministic given the seed
    other = generate(ckpt, wav, steps=4, seed=4, progress=False)
    assert not np.allclose(m.exp, other.exp)
    # De-normalised with the checkpoint's stats: the bare model gives the normalised motion.
    bare = generate(ckpt.model, wav, steps=4, seed=3, progress=False)
    np.testing.assert_allclose(m.exp, bare.exp * ckpt.exp_std.numpy() + ckpt.exp_mean.numpy(),
                               rtol=1e-5, atol=1e-5)


def test_generate_inputs_path_array_features(ckpt_path, wav):
    from disenttalk_fast.audio import extract_features

    ckpt = load_model(ckpt_path, "cpu", "reference")
    a = generate(ckpt, wav, steps=3, progress=False)
    x, sr = sf.read(wav, dtype="float32")
    b = generate(ckpt, x, sr=sr, steps=3, progress=False)
    c = generate(ckpt, extract_features(wav), steps=3, progress=False)
    np.testing.assert_allclose(a.exp, b.exp, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a.exp, c.exp, rtol=1e-5, atol=1e-5)


def test_ddpm_and_windows(ckpt_path, wav):
    ckpt = load_model(ckpt_path, "cpu", "reference")
    m = generate(ckpt, wav, sampler="ddpm", progress=False, window=12, overlap=4)
    assert m.exp.shape == (31, 64) and m.meta["window"] == 12


def test_pose_from_reference_ping_pong(ckpt_path, wav, tmp_path):
    assert fit_length(np.arange(3)[:, None], 7)[:, 0].tolist() == [0, 1, 2, 1, 0, 1, 2]
    assert fit_length(np.arange(9)[:, None], 4)[:, 0].tolist() == [0, 1, 2, 3]
    ref = Motion(np.zeros((5, 64)), np.arange(30, dtype=np.float32).reshape(5, 6))
    ref.save(tmp_path / "ref.npz")
    m = generate(load_model(ckpt_path, "cpu", "reference"), wav, steps=2,
                 pose=tmp_path / "ref.npz", progress=False)
    np.testing.assert_array_equal(m.pose[:9], ref.pose[[0, 1, 2, 3, 4, 3, 2, 1, 0]])
    with pytest.raises(ValueError, match="holds no pose"):
        Motion(np.zeros((5, 64))).save(tmp_path / "nopose.npz")
        generate(load_model(ckpt_path, "cpu", "reference"), wav, steps=2,
                 pose=tmp_path / "nopose.npz", progress=False)
    # Bad references: one line naming the file.
    Motion(np.zeros((0, 64)), np.zeros((0, 6))).save(tmp_path / "empty.npz")
    nan_pose = np.zeros((4, 6), np.float32)
    nan_pose[1, 2] = np.nan
    Motion(np.zeros((4, 64)), nan_pose).save(tmp_path / "nanpose.npz")
    ckpt = load_model(ckpt_path, "cpu", "reference")
    for name, message in [("empty.npz", "has no frames"), ("nanpose.npz", "holds NaN or inf")]:
        with pytest.raises(ValueError, match=f"pose reference .*{name} {message}"):
            generate(ckpt, wav, steps=2, pose=tmp_path / name, progress=False)
        if name == "empty.npz":
            with pytest.raises(ValueError, match=f"eye reference .*{name}: {message}"):
                build_control(ckpt, 31, replace_from={"eye": tmp_path / name})


def test_region_control(ckpt_path, wav, tmp_path):
    ckpt = load_model(ckpt_path, "cpu", "reference")
    part = ckpt.partition
    lip, eye, glob = list(part.lip), list(part.eye), list(part.global_)
    mean, std = ckpt.exp_mean.numpy(), ckpt.exp_std.numpy()
    base = generate(ckpt, wav, steps=3, progress=False)
    scaled = generate(ckpt, wav, steps=3, progress=False,
                      control=build_control(ckpt, 31, scale={"lip": 1.5}))
    np.testing.assert_allclose((scaled.exp[:, lip] - mean[lip]) / std[lip],
                               1.5 * (base.exp[:, lip] - mean[lip]) / std[lip], rtol=1e-4,
                               atol=1e-4)
    np.testing.assert_allclose(scaled.exp[:, eye], base.exp[:, eye], rtol=1e-5, atol=1e-5)
    ref = Motion(np.random.default_rng(0).standard_normal((40, 64)).astype(np.float32))
    ref.save(tmp_path / "eyes.npz")
    ctrl = build_control(ckpt, 31, replace_from={"eye": tmp_path / "eyes.npz"},
                         freeze=("global",))
    m = generate(ckpt, wav, steps=3, progress=False, control=ctrl)
    np.testing.assert_allclose(m.exp[:, eye], ref.exp[:31, eye], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(m.exp[:, glob], np.broadcast_to(mean[glob], (31, len(glob))),
                               rtol=1e-5, atol=1e-5)
    # One region named on its own is that region (not its letters); numpy scalars are numbers.
    assert set(build_control(ckpt, 31, freeze="global").freeze) == {"global"}
    assert build_control(ckpt, 31, scale={"lip": np.float32(1.5)}).scales == {"lip": 1.5}


def test_build_control_errors_are_one_line(ckpt_path):
    ckpt = load_model(ckpt_path, "cpu", "reference")
    with pytest.raises(ValueError, match=r"^eye reference: has 32 expression dims") as info:
        build_control(ckpt, 31, replace_from={"eye": Motion(np.zeros((5, 32), np.float32))})
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="num_frames must be an integer >= 1"):
        build_control(ckpt, -1, freeze=("global",))


@pytest.mark.parametrize("name,fmt", [("out.npz", None), ("out.mat", None), ("out.npy", None),
                                      ("out.txt", None), ("out73.npy", "descriptor73")])
def test_cli_writes_every_format(ckpt_path, wav, tmp_path, capsys, name, fmt):
    out = tmp_path / name
    argv = ["generate", str(wav), "--model", str(ckpt_path), "-o", str(out), "--steps", "2",
            "--no-progress", "--seed", "1"]
    if fmt:
        argv += ["--format", fmt]
    assert main(argv) == 0
    line = capsys.readouterr().out.strip()
    assert "31 frames" in line and "motion FPS" in line
    m = read_motion(out)
    assert m.exp.shape == (31, 64) and np.isfinite(m.exp).all()


def test_cli_region_flags_and_video(ckpt_path, wav, tmp_path, capsys):
    pytest.importorskip("av")
    ref = tmp_path / "ref.npz"
    Motion(np.zeros((10, 64)), np.full((10, 6), 0.05, np.float32)).save(ref)
    out = tmp_path / "talk.mp4"
    assert main(["generate", str(wav), "--model", str(ckpt_path), "-o", str(out), "--steps", "2",
                 "--no-progress", "--size", "64", "--pose-from", str(ref), "--eyes-from",
                 str(ref), "--lip-scale", "1.2", "--freeze", "global"]) == 0
    assert out.stat().st_size > 0 and "video" in capsys.readouterr().out
    import av

    with av.open(str(out)) as f:
        kinds = {s.type for s in f.streams}
    assert kinds == {"video", "audio"}


@pytest.mark.parametrize("case,match", [
    ("missing_model", "no such checkpoint"), ("bad_ext", "unknown output type"),
    ("missing_audio", "no such audio file"), ("bad_format", "is written as")])
def test_cli_errors_are_one_line(ckpt_path, wav, tmp_path, capsys, case, match):
    model, audio, out, extra = str(ckpt_path), str(wav), str(tmp_path / "o.npz"), []
    if case == "missing_model":
        model = str(tmp_path / "nope.safetensors")
    elif case == "bad_ext":
        out = str(tmp_path / "o.bin")
    elif case == "missing_audio":
        audio = str(tmp_path / "nope.wav")
    else:
        extra = ["--format", "deep3d-mat"]
    assert main(["generate", audio, "--model", model, "-o", out, "--no-progress"] + extra) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and "\n" not in err
    assert not list(tmp_path.iterdir())



def test_cli_refuses_unwritable_outputs_before_working(ckpt_path, wav, tmp_path, capsys,
                                                       monkeypatch):
    import sys

    gen = sys.modules["disenttalk_fast.generate"]   # (the package exports a function so named)
    monkeypatch.setattr(gen, "generate", lambda *a, **k: pytest.fail("generated first"))
    (tmp_path / "d.npz").mkdir()
    from disenttalk_fast.interop import write_motion

    ref = tmp_path / "ref.mat"
    write_motion(Motion(np.zeros((4, 64), np.float32)), ref)
    cases = [(["-o", str(tmp_path / "d.npz")], "is a directory"),
             (["-o", str(tmp_path / ("a" * 300 + ".npz"))], "file name too long"),
             (["-o", str(tmp_path / "o.mp4"), "--size", "63"], "--size must be an even number"),
             (["-o", str(tmp_path / "o.npz"), "--template", str(ref)], "takes no template"),
             (["-o", str(tmp_path / "o.npz"), "--device", "meta"], "--device"),
             (["-o", str(tmp_path / "o.npz"), "--layer", "3"], "apply to HuBERT models")]
    for args, match in cases:
        assert main(["generate", str(wav), "--model", str(ckpt_path), "--no-progress"]
                    + args) == 2
        err = capsys.readouterr().err.strip()
        assert match in err and "\n" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz", "ref.mat"]


def test_non_finite_motion_is_an_error_not_a_file(ckpt_path, wav):
    import dataclasses

    # (guidance 1e38 used to overflow the motion; sampling now refuses guidance beyond 100, so
    # statistics at float32's limit overflow the de-normalisation instead.)
    ckpt = load_model(ckpt_path, "cpu", "reference")
    huge = dataclasses.replace(ckpt, exp_std=torch.full((64,), 3e38))
    with pytest.raises(ValueError, match="generated motion is not finite"):
        generate(huge, wav, steps=2, progress=False)


def test_generate_with_hubert_features(wav, tmp_path):
    transformers = pytest.importorskip("transformers")
    from disenttalk_fast.generate import as_checkpoint

    torch.manual_seed(0)
    cfg = transformers.HubertConfig(hidden_size=24, num_hidden_layers=2, num_attention_heads=2,
                                    intermediate_size=32, conv_dim=(8,) * 7,
                                    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    transformers.HubertModel(cfg).save_pretrained(tmp_path / "hubert")
    model = tiny_model(feature_type="hubert", audio_dim=24)
    m = generate(model, wav, steps=2, progress=False, hubert_dir=tmp_path / "hubert", layer=1,
                 device=None)
    assert m.exp.shape == (31, 64) and m.meta["feature"] == "hubert"
    with pytest.raises(ValueError, match="hubert_dir"):
        generate(model, wav, steps=2, progress=False)
    wrong = tiny_model(feature_type="hubert", audio_dim=32)
    with pytest.raises(ValueError, match="24"):
        generate(as_checkpoint(wrong), wav, steps=2, progress=False,
                 hubert_dir=tmp_path / "hubert")


def test_bounded_memory_path_equals_one_pass(ckpt_path, wav):
    ckpt = load_model(ckpt_path, "cpu", "reference")
    kw = dict(steps=3, seed=5, window=8, overlap=3, progress=False)
    ctrl = build_control(ckpt, 31, scale={"lip": 1.2}, freeze=("eye",))
    full = generate(ckpt, wav, bounded=False, control=ctrl, **kw)
    streamed = generate(ckpt, wav, bounded=True, control=ctrl, **kw)
    assert streamed.meta["bounded"] and "bounded" not in full.meta
    np.testing.assert_allclose(streamed.exp, full.exp, rtol=1e-4,
                               atol=1e-4 * max(1.0, float(np.abs(full.exp).max())))
    x, sr = sf.read(wav, dtype="float32")
    x44 = np.interp(np.arange(0, x.size, 16000 / 44100), np.arange(x.size), x).astype(np.float32)
    a = generate(ckpt, x44, sr=44100, bounded=True, **kw)
    b = generate(ckpt, x44, sr=44100, bounded=False, **kw)
    np.testing.assert_allclose(a.exp, b.exp, rtol=1e-4,
                               atol=1e-4 * max(1.0, float(np.abs(b.exp).max())))


def test_backend_is_per_call(wav):
    from disenttalk_fast.backends import BackendError

    model = tiny_model(backend="reference")
    a = generate(model, wav, steps=2, backend="auto", progress=False)
    assert model.backend == "reference" and a.meta["backend"] == "auto"
    b = generate(model, wav, steps=2, backend=None, progress=False)
    assert b.meta["backend"] == "reference"
    np.testing.assert_allclose(a.exp, b.exp, rtol=1e-3, atol=1e-3)   # kernels vs reference
    with pytest.raises(BackendError, match="unknown backend"):
        generate(model, wav, steps=2, backend="gpu", progress=False)


def test_per_call_backends_on_one_model_do_not_race(wav):
    """Threads calling one model with different backends: each call runs the backend it asked
    for and the model's own never changes (it used to be swapped in and out of the model)."""
    import threading

    model = tiny_model(backend="reference")
    seen, results = [], {}
    real = type(model).forward

    def spy(self, *args, **kwargs):   # record the backend each forward actually ran
        seen.append((threading.current_thread().name, self.backend))
        return real(self, *args, **kwargs)

    def call(backend):
        results[backend] = generate(model, wav, steps=3, backend=backend, progress=False)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(model), "forward", spy)
        threads = [threading.Thread(target=call, args=(b,), name=b) for b in ("auto", "cpu")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert model.backend == "reference"
    assert seen and all(name == backend for name, backend in seen)
    assert results["auto"].meta["backend"] == "auto" and results["cpu"].meta["backend"] == "cpu"


@pytest.mark.parametrize("kwargs,match", [
    ({"seed": 1.5}, "seed must be an integer"), ({"seed": 2 ** 64}, "seed must be an integer"),
    ({"sr": "16000"}, "sr must be a whole number"), ({"sr": float("nan")}, "whole number"),
    ({"device": "meta"}, "runs on 'cpu' or 'cuda'"), ({"device": "bogus"}, "not a device"),
    ({"bounded": True, "cache_dir": "."}, "bounded=True"),
])
def test_generate_argument_errors_are_one_line(wav, kwargs, match):
    model = tiny_model(backend="reference")
    audio = wav if "sr" not in kwargs else np.zeros(16000, np.float32)
    with pytest.raises(ValueError, match=match) as info:
        generate(model, audio, steps=2, progress=False, **kwargs)
    assert "\n" not in str(info.value)
    assert next(model.parameters()).device.type == "cpu"   # not moved by a refused device


def test_a_feature_cache_folder_that_is_a_file_is_one_line(wav, tmp_path):
    (tmp_path / "cache").write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="feature cache folder is a file"):
        generate(tiny_model(), wav, steps=2, progress=False, cache_dir=tmp_path / "cache")


def test_seed_none_draws_one_and_records_it(wav):
    model = tiny_model(backend="reference")
    m = generate(model, wav, steps=2, seed=None, progress=False)
    again = generate(model, wav, steps=2, seed=m.meta["seed"], progress=False)
    np.testing.assert_array_equal(m.exp, again.exp)
    numpy_ints = generate(model, wav, steps=np.int64(2), seed=np.int64(m.meta["seed"]),
                          progress=False)
    np.testing.assert_array_equal(m.exp, numpy_ints.exp)
    assert type(numpy_ints.meta["steps"]) is int


def test_bounded_refuses_precomputed_features(ckpt_path, wav):
    from disenttalk_fast.audio import extract_features

    ckpt = load_model(ckpt_path, "cpu", "reference")
    feats = extract_features(wav, "mel")
    with pytest.raises(ValueError, match="precomputed features"):
        generate(ckpt, feats, steps=2, bounded=True, progress=False)



def test_loaded_model_is_the_fused_drop_in_unless_reference(ckpt_path, wav):
    """A checkpoint loaded for a kernel backend is a FastDenoiser (fused blocks, null-row skip),
    for "reference" the reference class; both generate the same motion."""
    from disenttalk_fast.model import DisentTalkDenoiser
    from disenttalk_fast.model.fast import FastDenoiser

    fast, ref = load_model(ckpt_path, "cpu", "auto"), load_model(ckpt_path, "cpu", "reference")
    assert isinstance(fast.model, FastDenoiser)
    assert type(ref.model) is DisentTalkDenoiser
    a = generate(fast, wav, steps=3, seed=1, progress=False)
    b = generate(ref, wav, steps=3, seed=1, progress=False)
    np.testing.assert_allclose(a.exp, b.exp, rtol=1e-3, atol=1e-3)


def test_half_precision_weights_on_the_cpu(ckpt_path, wav, tmp_path, capsys):
    """--dtype bf16 / fp16 run on the CPU through the reference ops ("auto" leaves half
    precision to them; the C++ kernels are fp32-only) and stay close to fp32; an explicit
    'cpu' backend refuses in one line."""
    full = generate(load_model(ckpt_path, "cpu"), wav, steps=3, seed=2, progress=False)
    half = generate(load_model(ckpt_path, "cpu", dtype="bf16"), wav, steps=3, seed=2,
                    progress=False)
    assert half.meta["dtype"] == "bfloat16" and full.meta["dtype"] == "float32"
    assert half.exp.dtype == full.exp.dtype
    scale = np.abs(full.exp).max()
    assert np.abs(half.exp - full.exp).max() <= 0.1 * scale
    with pytest.raises(ValueError, match="dtype must be one of fp32, fp16, bf16"):
        load_model(ckpt_path, "cpu", dtype="int8")
    out = tmp_path / "half.npz"
    # bf16, not fp16: this untrained tiny model's x0 estimate reaches ~5e5 after the first of 2
    # steps, past fp16's 65504, and a non-finite motion is refused (the next check).
    assert main(["generate", str(wav), "--model", str(ckpt_path), "-o", str(out), "--dtype",
                 "bf16", "--steps", "2", "--no-progress"]) == 0 and out.is_file()
    overflow = tmp_path / "fp16.npz"
    assert main(["generate", str(wav), "--model", str(ckpt_path), "-o", str(overflow),
                 "--dtype", "fp16", "--steps", "2", "--no-progress"]) == 2
    assert "generated motion is not finite" in capsys.readouterr().err
    assert not overflow.exists()
    bad = tmp_path / "bad.npz"
    assert main(["generate", str(wav), "--model", str(ckpt_path), "-o", str(bad), "--dtype",
                 "bf16", "--backend", "cpu", "--steps", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "backend 'cpu' supports float32" in err and not bad.exists()


@pytest.mark.parametrize("backend,raster", [("reference", "auto"), ("cpu", "cpu"),
                                            ("auto", "auto")])
def test_cli_backend_names_the_model_kernels_not_the_rasteriser(ckpt_path, wav, tmp_path,
                                                                 monkeypatch, backend, raster):
    """`--backend reference` must not draw the video with the reference rasteriser (a test
    oracle, seconds per small frame); cpu / cuda pass through."""
    pytest.importorskip("av")
    import importlib

    render_module = importlib.import_module("disenttalk_fast.render")  # the package, not dt.render
    real, seen = render_module.render, []

    def spy(*args, backend="auto", **kw):
        seen.append(backend)
        return real(*args, backend=backend, **kw)

    monkeypatch.setattr(render_module, "render", spy)
    out = tmp_path / "talk.mp4"
    assert main(["generate", str(wav), "--model", str(ckpt_path), "-o", str(out), "--steps", "1",
                 "--no-progress", "--size", "32", "--backend", backend]) == 0
    assert seen == [raster] and out.stat().st_size > 0


def ramp_reference(path, fps, seconds=2.0):
    """A Motion file at `fps` whose pose and expression are ramps in time (seconds)."""
    n = int(round(fps * seconds))
    t = (np.arange(n) / fps).astype(np.float32)
    pose = np.zeros((n, 6), np.float32)
    pose[:, 0], pose[:, 4] = 0.1 * t, t
    Motion(np.repeat(t[:, None], 64, 1), pose, fps=fps).save(path)
    return path


@pytest.mark.parametrize("fps", [50.0, 12.5])
def test_references_at_other_fps_are_resampled_to_25(ckpt_path, wav, tmp_path, capsys, fps):
    # Regression: a 50 fps pose / eye reference was used frame for frame (played at half speed).
    ref = ramp_reference(tmp_path / "ref.npz", fps)
    ckpt = load_model(ckpt_path, "cpu", "reference")
    eye = list(ckpt.partition.eye)
    times = np.arange(31) / 25                    # the clip's frame times
    control = build_control(ckpt, 31, replace_from={"eye": ref})
    for kw in ({}, {"bounded": True}):
        m = generate(ckpt, wav, steps=2, pose=ref, control=control, progress=False, **kw)
        np.testing.assert_allclose(m.pose[:, 0], 0.1 * times, atol=1e-6)
        np.testing.assert_allclose(m.pose[:, 4], times, atol=1e-6)
        np.testing.assert_allclose(m.exp[:, eye], np.repeat(times[:, None], len(eye), 1),
                                   atol=1e-4)
    np.testing.assert_array_equal(generate(ckpt, wav, steps=2, pose=Motion.load(ref),
                                           progress=False).pose, m.pose)
    out = tmp_path / "cli.npz"                    # the CLI's --pose-from / --eyes-from
    assert main(["generate", str(wav), "--model", str(ckpt_path), "-o", str(out), "--steps", "2",
                 "--no-progress", "--pose-from", str(ref), "--eyes-from", str(ref)]) == 0
    capsys.readouterr()
    got = read_motion(out)
    np.testing.assert_allclose(got.pose[:, 4], times, atol=1e-6)
    np.testing.assert_allclose(got.exp[:, eye], np.repeat(times[:, None], len(eye), 1),
                               atol=1e-4)


def test_reference_resampling_and_its_limit(ckpt_path, wav, tmp_path):
    from disenttalk_fast.generate import at_25fps

    ramp = np.arange(20, dtype=np.float32)[:, None]
    assert at_25fps(ramp, 50.0, "r")[:, 0].tolist() == list(range(0, 20, 2))
    assert at_25fps(ramp, 25.0, "r") is ramp      # 25 fps: as it is
    np.testing.assert_allclose(at_25fps(ramp[:3], 12.5, "r")[:, 0], [0, 0.5, 1, 1.5, 2, 2])
    ckpt = load_model(ckpt_path, "cpu", "reference")
    slow = ramp_reference(tmp_path / "slow.npz", 0.5, seconds=20)
    with pytest.raises(ValueError, match=r"pose reference .*slow.npz: recorded at 0.5 fps"):
        generate(ckpt, wav, steps=2, pose=slow, progress=False)
    with pytest.raises(ValueError, match=r"eye reference .*slow.npz: recorded at 0.5 fps"):
        build_control(ckpt, 31, replace_from={"eye": slow})


@pytest.mark.parametrize("pose", [{"a": 1}, "", [["x"] * 6], object()])
def test_a_pose_that_is_not_one_is_a_one_line_error_before_sampling(wav, monkeypatch, pose):
    import disenttalk_fast.sampling

    monkeypatch.setattr(disenttalk_fast.sampling, "sample",
                        lambda *a, **k: pytest.fail("sampled first"))
    with pytest.raises((ValueError, TypeError, FileNotFoundError)) as info:
        generate(tiny_model(), wav, steps=2, pose=pose, progress=False)
    msg = str(info.value)
    assert "pose" in msg and "\n" not in msg, msg


def test_meta_records_the_steps_that_ran(wav):
    model = tiny_model()                          # T = 20
    for kw, steps in [(dict(sampler="ddpm", steps=25), 20), (dict(sampler="ddpm", steps=None), 20),
                      (dict(sampler="ddim", steps=None), 20), (dict(sampler="ddim", steps=3), 3),
                      (dict(sampler="ddpm", steps=25, bounded=True), 20)]:
        m = generate(model, wav, progress=False, **kw)
        assert m.meta["steps"] == steps and type(m.meta["steps"]) is int, (kw, m.meta)


@pytest.mark.parametrize("batch", [0, 2])
def test_a_batch_of_features_says_generate_takes_one_clip(batch):
    with pytest.raises(ValueError) as info:
        generate(tiny_model(), torch.zeros(batch, 50, 80), steps=2, progress=False)
    msg = str(info.value)
    assert f"({batch}, 50, 80)" in msg and "one clip's features" in msg
    assert "sampling.sample" in msg and "\n" not in msg
    one = generate(tiny_model(), torch.zeros(1, 50, 80), steps=2, progress=False)
    assert one.num_frames == 25


def test_audio_as_a_file_object(ckpt_path, wav):
    # Regression: io.BytesIO has a `detach`, taken for a tensor's (io.UnsupportedOperation).
    import io

    ckpt = load_model(ckpt_path, "cpu", "reference")
    want = generate(ckpt, wav, steps=2, progress=False)
    data = wav.read_bytes()
    for kw in ({}, {"bounded": True}):
        got = generate(ckpt, io.BytesIO(data), steps=2, progress=False, **kw)
        np.testing.assert_allclose(got.exp, want.exp, rtol=1e-5, atol=1e-5)
    with open(wav, "rb") as f:
        np.testing.assert_array_equal(generate(ckpt, f, steps=2, progress=False).exp, want.exp)


@pytest.mark.parametrize("audio", ["int64", "float_int16_range"])
def test_generate_refuses_unscalable_waveforms(audio):
    x = (np.sin(np.arange(16000) / 5) * 10000)
    x = x.astype(np.int64) if audio == "int64" else x.astype(np.float32)
    for arg in (x, x.tolist(), torch.from_numpy(x)):
        with pytest.raises(ValueError) as info:
            generate(tiny_model(), arg, steps=2, progress=False)
        msg = str(info.value)
        assert ("int16 / int32 PCM" if audio == "int64" else "divide it by 32768") in msg
        assert "\n" not in msg


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_cli_refuses_a_folder_that_takes_no_files_before_sampling(ckpt_path, wav, capsys,
                                                                  monkeypatch):
    # Regression: as root, os.access says /proc is writable; the writer failed after sampling,
    # naming its temporary file.
    import sys

    gen = sys.modules["disenttalk_fast.generate"]
    monkeypatch.setattr(gen, "generate", lambda *a, **k: pytest.fail("generated first"))
    assert main(["generate", str(wav), "--model", str(ckpt_path), "-o", "/proc/o.npz",
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "/proc/o.npz" in err and ".tmp" not in err and "\n" not in err, err
