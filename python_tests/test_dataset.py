"""Clip datasets: `disenttalk prepare` with deliberately broken clips, and ClipDataset items."""

import json

import numpy as np
import pytest
import soundfile as sf

from disenttalk_fast.cli import main
from disenttalk_fast.data import ClipDataset, prepare_dataset
from disenttalk_fast.interop import write_motion
from disenttalk_fast.motion import Motion


def write_clip(audio_dir, coeff_dir, name, frames, audio_frames=None, dims=64, fmt="npz",
               fps=25.0, seed=0, nan=False, pose=True):
    rng = np.random.default_rng(seed)
    audio_frames = frames if audio_frames is None else audio_frames
    sf.write(audio_dir / f"{name}.wav",
             (rng.standard_normal(audio_frames * 640) * 0.1).astype(np.float32), 16000)
    exp = (rng.standard_normal((frames, dims)) * (1 + np.arange(dims)) + 3).astype(np.float32)
    if nan:
        exp[1, 1] = np.nan
    m = Motion(exp, rng.standard_normal((frames, 6)).astype(np.float32) if pose else None, fps)
    write_motion(m, coeff_dir / f"{name}.{fmt}")
    return m


@pytest.fixture()
def folders(tmp_path):
    a, c = tmp_path / "audio", tmp_path / "coeffs"
    a.mkdir()
    c.mkdir()
    good = {"good_npz": write_clip(a, c, "good_npz", 30, seed=1),
            "good_mat": write_clip(a, c, "good_mat", 21, fmt="mat", seed=2),
            "good_npy": write_clip(a, c, "good_npy", 12, audio_frames=13, fmt="npy", seed=3),
            "good_nopose": write_clip(a, c, "good_nopose", 15, seed=4, pose=False)}
    write_clip(a, c, "too_long_audio", 20, audio_frames=26, seed=5)
    write_clip(a, c, "wrong_dims", 20, dims=50, seed=6)
    write_clip(a, c, "has_nan", 20, nan=True, seed=7)
    write_clip(a, c, "at_30fps", 20, fps=30.0, seed=8)
    write_clip(a, c, "too_short", 4, seed=9)
    write_clip(a, c, "broken_audio", 20, seed=10)
    (a / "broken_audio.wav").write_bytes(b"RIFF....WAVEjunk" * 4)
    sf.write(a / "orphan_audio.wav", np.zeros(6400, np.float32), 16000)
    np.save(c / "orphan_coeffs.npy", np.zeros((10, 257), np.float32))
    return tmp_path, a, c, good


EXPECTED_REJECTIONS = {
    "too_long_audio": "length mismatch", "wrong_dims": "50 expression dims",
    "has_nan": "NaN", "at_30fps": "30 fps", "too_short": "fewer than 8",
    "broken_audio": "cannot read audio", "orphan_audio": "no coefficient file",
    "orphan_coeffs": "no audio file",
}


def test_prepare_cli_reports_every_rejected_clip(folders, capsys):
    root, a, c, good = folders
    assert main(["prepare", str(a), str(c), "-o", str(root / "ds")]) == 0
    out, err = capsys.readouterr()
    for cid, reason in EXPECTED_REJECTIONS.items():
        line = next((ln for ln in err.splitlines() if ln.startswith(f"rejected {cid}:")), None)
        assert line is not None and reason in line, (cid, err)
    assert "4 clips" in out and "8 rejected" in out
    rejected = [json.loads(ln) for ln in (root / "ds" / "rejected.jsonl").read_text().splitlines()]
    assert {r["id"] for r in rejected} == set(EXPECTED_REJECTIONS)
    # Running it again refuses to overwrite; the error is one line.
    assert main(["prepare", str(a), str(c), "-o", str(root / "ds")]) == 2
    assert "already holds a dataset" in capsys.readouterr().err


def test_clip_dataset_items(folders):
    root, a, c, good = folders
    report = prepare_dataset(a, c, root / "ds", val_fraction=0.0)
    assert len(report.accepted) == 4
    ds = ClipDataset(root / "ds", feature="mel")
    assert len(ds) == 4 and ds.cache.hits == 0
    stacked = np.concatenate([good[i].exp for i in sorted(good)])
    np.testing.assert_allclose(ds.exp_mean, stacked.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ds.exp_std, stacked.std(0), rtol=1e-5)
    for i, cid in enumerate(ds.ids):
        item = ds[i]
        L = good[cid].num_frames
        assert item["id"] == cid
        assert item["exp"].shape == (L, 64) and item["audio"].shape == (2 * L, 80)
        assert str(item["exp"].dtype) == "torch.float32"
        np.testing.assert_allclose(item["exp"].numpy() * ds.exp_std + ds.exp_mean,
                                   good[cid].exp, rtol=1e-5, atol=1e-4)
        assert (item["pose"] is None) == (cid == "good_nopose")
    assert ds.cache.hits == 4 and ds.cache.misses == 0   # features were computed by prepare
    raw = ClipDataset(root / "ds", normalise=False)
    np.testing.assert_allclose(raw[0]["exp"].numpy(), good[raw.ids[0]].exp)


def test_val_split_and_stats_over_train(folders):
    root, a, c, good = folders
    prepare_dataset(a, c, root / "ds", val_fraction=0.5)
    train, val = ClipDataset(root / "ds"), ClipDataset(root / "ds", split="val")
    assert len(train) == 2 and len(val) == 2 and not set(train.ids) & set(val.ids)
    stacked = np.concatenate([good[i].exp for i in train.ids])
    np.testing.assert_allclose(val.exp_mean, stacked.mean(0), rtol=1e-5, atol=1e-5)


def test_features_computed_lazily_when_not_prepared(folders):
    root, a, c, good = folders
    prepare_dataset(a, c, root / "ds", feature=None)
    ds = ClipDataset(root / "ds")
    ds[0]
    assert ds.cache.misses == 1
    ClipDataset(root / "ds")[0]        # a second dataset object finds it on disk
    ds2 = ClipDataset(root / "ds")
    ds2[0]
    assert ds2.cache.hits == 1


def test_bad_dataset_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such dataset"):
        ClipDataset(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="disenttalk prepare"):
        ClipDataset(tmp_path)
    a, c = tmp_path / "a", tmp_path / "c"
    a.mkdir()
    c.mkdir()
    with pytest.raises(ValueError, match="no usable clips"):
        prepare_dataset(a, c, tmp_path / "ds")


@pytest.fixture()
def small_dataset(tmp_path):
    a, c = tmp_path / "audio", tmp_path / "coeffs"
    a.mkdir()
    c.mkdir()
    for i in range(2):
        write_clip(a, c, f"clip{i}", 12, dims=16, seed=i)
    prepare_dataset(a, c, tmp_path / "ds", feature=None, val_fraction=0.0)
    return tmp_path / "ds"


@pytest.mark.parametrize("edit,match", [
    ({"exp_dim": None}, "exp_dim must be an integer"),
    ({"exp_dim": "abc"}, "exp_dim must be an integer"),
    ({"format_version": "abc"}, "format_version must be an integer"),
    ({"fps": "abc"}, "fps must be a finite number"),
    ({"exp_mean": ["a"] * 16}, "exp_mean must be a list of 16 numbers"),
    ({"exp_std": [-1.0] * 16}, "exp_std holds negative"),      # was silently replaced by 1
    ({"exp_std": [float("nan")] * 16}, "exp_std holds non-finite"),
])
def test_corrupt_dataset_json(small_dataset, edit, match):
    meta = json.loads((small_dataset / "dataset.json").read_text())
    meta.update(edit)
    (small_dataset / "dataset.json").write_text(json.dumps({k: v for k, v in meta.items()
                                                            if v is not None}))
    with pytest.raises(ValueError, match=match) as info:
        ClipDataset(small_dataset)
    assert "dataset.json: " in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name,content,match", [
    ("dataset.json", b"[1]", "dataset.json: expected a JSON object"),
    ("dataset.json", b"\xff\xfe\x00", "dataset.json: not a dataset file"),
    ("manifest.jsonl", b"[1, 2]\n", "manifest.jsonl: line 1 is not a JSON object"),
    ("manifest.jsonl", b'{"id": "a", "motion": "m", "audio": "a", "frames": "abc"}\n',
     "manifest.jsonl: line 1: frames must be an integer"),
])
def test_corrupt_dataset_files(small_dataset, name, content, match):
    (small_dataset / name).write_bytes(content)
    with pytest.raises(ValueError, match=match):
        ClipDataset(small_dataset)


def test_zero_std_dims_still_use_std_one(small_dataset):
    meta = json.loads((small_dataset / "dataset.json").read_text())
    meta["exp_std"][3] = 0.0
    (small_dataset / "dataset.json").write_text(json.dumps(meta))
    assert ClipDataset(small_dataset).exp_std[3] == 1


@pytest.mark.parametrize("kwargs,match", [
    ({"tolerance_frames": float("nan")}, "tolerance_frames must be a finite number >= 0"),
    ({"tolerance_frames": -1}, "tolerance_frames must be a finite number >= 0"),
    ({"exp_dim": "16"}, "exp_dim must be an integer >= 1"),
    ({"fps": float("inf")}, "fps must be a finite number > 0"),
    ({"min_frames": 2.5}, "min_frames must be an integer >= 1"),
    ({"val_fraction": float("nan")}, "val_fraction must be in"),
])
def test_prepare_rejects_bad_arguments(tmp_path, kwargs, match):
    a, c = tmp_path / "audio", tmp_path / "coeffs"
    a.mkdir()
    c.mkdir()
    # A 20-frame motion with 60 frames of audio: NaN tolerance used to accept it.
    write_clip(a, c, "mismatch", 20, audio_frames=60, dims=16)
    with pytest.raises(ValueError, match=match):
        prepare_dataset(a, c, tmp_path / "ds", feature=None, **kwargs)
    assert not (tmp_path / "ds").exists()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match="afile: exists and is not a folder"):
        prepare_dataset(a, c, tmp_path / "afile", feature=None)


def test_hubert_features_through_prepare_and_dataset(folders):
    transformers = pytest.importorskip("transformers")
    import torch

    root, a, c, good = folders
    torch.manual_seed(0)
    cfg = transformers.HubertConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                    intermediate_size=32, conv_dim=(8,) * 7,
                                    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    transformers.HubertModel(cfg).save_pretrained(root / "hubert")
    assert main(["prepare", str(a), str(c), "-o", str(root / "ds"), "--feature", "hubert",
                 "--hubert", str(root / "hubert"), "--layer", "1"]) == 0
    ds = ClipDataset(root / "ds", feature="hubert", hubert_dir=root / "hubert", layer=1,
                     device="cpu")
    item = ds[0]
    assert item["audio"].shape == (2 * item["exp"].shape[0], 16)
    assert ds.cache.hits == 1 and ds.cache.misses == 0
    assert main(["prepare", str(a), str(c), "-o", str(root / "ds2"), "--feature", "hubert"]) == 2
    assert main(["prepare", str(a), str(c), "-o", str(root / "ds3"), "--min-frames", "-1"]) == 2
    assert not (root / "ds3").exists()
