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
