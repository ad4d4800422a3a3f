"""`load_training_data` on broken .npz files of clips: one-line errors naming the file."""

import numpy as np
import pytest

from disenttalk_fast.training.data_source import load_training_data

EXP = np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32)
AUDIO = np.zeros((20, 3), np.float32)


@pytest.mark.parametrize("extra,match", [
    ({"exp_mean": np.ones(4)}, "exp_mean without the other"),    # was silently ignored
    ({"exp_mean": np.ones((2, 2)), "exp_std": np.ones((2, 2))}, "must be 1-D with 4 values"),
    ({"exp_a": EXP + 1j}, "exp_a has dtype complex"),             # was cast to its real part
])
def test_bad_npz_contents(tmp_path, extra, match):
    path = tmp_path / "clips.npz"
    np.savez(path, **{"exp_a": EXP, "audio_a": AUDIO, **extra})
    with pytest.raises(ValueError, match=match) as info:
        load_training_data(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_corrupt_npz(tmp_path):
    path = tmp_path / "clips.npz"
    path.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(ValueError, match="clips.npz: not a readable .npz"):
        load_training_data(path)


def test_given_stats_are_used(tmp_path):
    path = tmp_path / "clips.npz"
    np.savez(path, exp_a=EXP, audio_a=AUDIO, exp_mean=np.ones(4), exp_std=np.full(4, 2.0))
    data = load_training_data(path)
    np.testing.assert_allclose(data.clips[0]["exp"].numpy(), (EXP - 1) / 2, rtol=1e-6)
