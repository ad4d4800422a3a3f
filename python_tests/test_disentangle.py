"""Disentanglement (paper Eq. 1-2): recovery of planted dims, the conflict rule, the CLI."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

from disenttalk_fast.cli import main
from disenttalk_fast.disentangle import disentangle, select_regions
from disenttalk_fast.partition import Partition


def planted_face(num_dims=64, k_lip=13, k_eye=8, clips=4, frames=120, seed=0):
    """Simulate a linear face model whose lip- and eye-sensitive directions are known.

    A mesh of V vertices moves by B @ e, B an entangled orthonormal basis (every column moves
    every vertex). Expression e(t) = S (a(t) u_lip + b(t) u_eye + W g(t)) + fit noise, with mouth
    opening a(t), eye opening b(t) and global factors g(t) mixed over ALL dims by W; the mouth and
    eye directions u_lip, u_eye live only on the planted dims P_lip, P_eye. S scales each dim by
    a log-uniform factor (0.01 to 100) so raw |delta| is misleading without sigma. Closing the
    lips (eyes) sets a (b) to 0; the edited frames are "fitted" back through B with fresh noise.
    """
    rng = np.random.default_rng(seed)
    perm = rng.permutation(num_dims)
    p_lip, p_eye = sorted(perm[:k_lip]), sorted(perm[k_lip:k_lip + k_eye])
    basis, _ = np.linalg.qr(rng.standard_normal((300, num_dims)))       # entangled, orthonormal
    u_lip = np.zeros(num_dims)
    u_lip[p_lip] = rng.uniform(0.5, 1.0, k_lip) * rng.choice([-1, 1], k_lip)
    u_eye = np.zeros(num_dims)
    u_eye[p_eye] = rng.uniform(0.5, 1.0, k_eye) * rng.choice([-1, 1], k_eye)
    mix = rng.standard_normal((num_dims, 6)) * 0.4                      # global factors
    scale = 10.0 ** rng.uniform(-2, 2, num_dims)

    def fit(coeffs):  # render to the mesh and fit back: identity up to noise relative to S
        verts = (coeffs * scale) @ basis.T
        noise = 0.02 * rng.standard_normal(coeffs.shape) * scale
        return verts @ basis + noise

    original, lips, eyes = [], [], []
    for _ in range(clips):
        t = np.arange(frames)[:, None]
        a = 0.5 + 0.5 * np.sin(t * rng.uniform(0.3, 0.8) + rng.uniform(0, 6))      # talking
        b = (rng.uniform(size=(frames, 1)) > 0.08).astype(float)                    # blinks
        g = np.cumsum(rng.standard_normal((frames, 6)) * 0.2, axis=0)                # slow drift
        base = a * u_lip + b * u_eye + g @ mix.T
        original.append(fit(base))
        lips.append(fit(base - a * u_lip))
        eyes.append(fit(base - b * u_eye))
    return original, lips, eyes, p_lip, p_eye


def test_recovers_planted_dims():
    original, lips, eyes, p_lip, p_eye = planted_face()
    part = disentangle(original, lips, eyes, k_lip=13, k_eye=8)
    assert list(part.lip) == [int(i) for i in p_lip]
    assert list(part.eye) == [int(i) for i in p_eye]
    assert sorted(part.global_) == sorted(set(range(64)) - set(p_lip) - set(p_eye))
    assert set(part.scores) == {"lip", "eye"} and len(part.scores["lip"]) == 64
    # Without the sigma normalisation the huge-scale dims' fitting noise would win: check the
    # planted data really needs it (so the test can fail).
    raw = np.max([np.abs(lp - o).max(0) for o, lp in zip(original, lips)], axis=0)
    assert set(np.argsort(-raw)[:13]) != set(p_lip)


@pytest.mark.parametrize("scale", [1e300, 1e-300])
def test_any_common_scale_gives_the_same_partition(scale):
    """The scores are scale-free: values of 1e300 (whose squares overflow) or 1e-300 give the
    partition of the same data at scale 1."""
    original, lips, eyes, _, _ = planted_face()
    part = disentangle(original, lips, eyes)
    with np.errstate(all="raise"):
        scaled = disentangle([o * scale for o in original], [x * scale for x in lips],
                             [e * scale for e in eyes])
    assert (scaled.lip, scaled.eye) == (part.lip, part.eye)
    np.testing.assert_allclose(scaled.scores["lip"], part.scores["lip"], rtol=1e-9)


def test_small_planted_problem_and_stacked_input():
    original, lips, eyes, p_lip, p_eye = planted_face(num_dims=12, k_lip=3, k_eye=2, clips=2)
    part = disentangle(np.stack(original), np.stack(lips), np.stack(eyes), k_lip=3, k_eye=2)
    assert list(part.lip) == list(p_lip) and list(part.eye) == list(p_eye)
    single = disentangle(original[0], lips[0], eyes[0], k_lip=3, k_eye=2)
    assert single.num_dims == 12


def test_conflict_goes_to_the_larger_score():
    # dim 0 is both regions' best; its eye score is larger, so eye keeps it and lip takes its
    # next best (dim 1). dim 2 is then lip's 2nd; eye's 2nd would be dim 1 (lip's, larger there).
    lip = np.array([5.0, 4.0, 3.0, 0.1, 0.0, 0.0])
    eye = np.array([6.0, 2.0, 0.0, 1.0, 0.5, 0.0])
    assert select_regions(lip, eye, 2, 2) == ([1, 2], [0, 3])
    # An exact tie goes to lip.
    tie = select_regions(np.array([1.0, 0.5, 0, 0]), np.array([1.0, 0.2, 0.1, 0]), 1, 1)
    assert tie == ([0], [1])
    # Chains of conflicts: after losing dim 0, eye's next best (1) is lip's too and lip wins it.
    lip = np.array([9.0, 8.0, 0.0, 0.0, 0.0])
    eye = np.array([3.0, 2.0, 1.0, 0.0, 0.0])
    assert select_regions(lip, eye, 2, 1) == ([0, 1], [2])


def test_partition_json_round_trip(tmp_path):
    original, lips, eyes, *_ = planted_face(num_dims=12, k_lip=3, k_eye=2, clips=1)
    part = disentangle(original, lips, eyes, k_lip=3, k_eye=2)
    part.save(tmp_path / "p.json")
    back = Partition.load(tmp_path / "p.json")
    assert back == part and back.scores == part.scores


PART = {"num_dims": 6, "lip": [0, 1], "eye": [2], "global": [3, 4, 5]}


@pytest.mark.parametrize("edit,match", [
    ({"num_dims": 10**9}, "num_dims must be an integer in 1..4096"),   # bounded before building
    ({"num_dims": 6.9}, "num_dims must be an integer"),
    ({"num_dims": "6"}, "num_dims must be an integer"),
    ({"lip": "01"}, "lip must be a list"),
    ({"lip": [0, 1.7]}, "lip must be a list of integer dims"),
    ({"lip": [False, True]}, "lip must be a list of integer dims"),
    ({"lips": [0, 1]}, "unknown partition key"),
    ({"scores": [1, 2]}, "scores must be a mapping"),
    ({"scores": None}, "scores must be a mapping"),
    ({"scores": {"lip": [1.0]}}, "must be 6 finite numbers"),
    ({"scores": {"lip": [float("nan")] * 6}}, "must be 6 finite numbers"),
    ({"scores": {"nose": [1.0] * 6}}, "unknown region 'nose'"),
])
def test_partition_from_dict_rejects_bad_values(edit, match):
    with pytest.raises(ValueError, match=match) as info:
        Partition.from_dict({**PART, **edit}, "p.json")
    assert str(info.value).startswith("p.json: ") and "\n" not in str(info.value)
    good = Partition.from_dict({**PART, "scores": {"lip": [0, 1, 2, 3, 4, 5.5]}})
    assert good.lip == (0, 1) and good.scores == {"lip": (0.0, 1.0, 2.0, 3.0, 4.0, 5.5)}


def test_partition_load_bad_files(tmp_path):
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="bin.json: not a partition file"):
        Partition.load(tmp_path / "bin.json")
    with pytest.raises(ValueError, match="is a directory"):
        Partition.load(tmp_path)


@pytest.mark.parametrize("args,match", [
    (("orig2d", "short", "orig2d"), "closed_lips clip 0 has shape"),
    (("orig2d", "orig2d", "wide"), "closed_eyes clip 0 has shape"),
    (("nan", "orig2d", "orig2d"), "original clip 0 contains NaN"),
    (("orig1d", "orig1d", "orig1d"), "original must be"),
    (("empty", "empty", "empty"), "original holds no clips"),
    (("ramp", "ramp", "moved"), "closed_lips equals the original in every dim"),
    (("ramp", "moved", "ramp"), "closed_eyes equals the original in every dim"),
])
def test_bad_inputs(args, match):
    arrays = {"orig2d": np.zeros((5, 10)), "short": np.zeros((4, 10)), "wide": np.zeros((5, 11)),
              "nan": np.full((5, 10), np.nan), "orig1d": np.zeros(10), "empty": [],
              "ramp": np.arange(50.0).reshape(5, 10), "moved": np.arange(50.0).reshape(5, 10) + 1}
    with pytest.raises(ValueError, match=match) as info:
        disentangle(*(arrays[a] for a in args), k_lip=2, k_eye=2)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="leaves no global dims"):
        disentangle(np.ones((5, 4)), np.ones((5, 4)), np.ones((5, 4)), k_lip=2, k_eye=2)
    with pytest.raises(ValueError, match="k_eye must be an integer >= 1"):
        disentangle(np.ones((5, 4)), np.ones((5, 4)), np.ones((5, 4)), k_lip=1, k_eye=0)


# -- CLI ---------------------------------------------------------------------------------------

def write_planted(tmp_path, kind):
    original, lips, eyes, p_lip, p_eye = planted_face(num_dims=64, clips=3)
    paths = []
    for role, clips in (("orig", original), ("lips", lips), ("eyes", eyes)):
        if kind == "npy":
            path = tmp_path / f"{role}.npy"
            np.save(path, np.concatenate(clips).astype(np.float32))
        elif kind == "mat":
            path = tmp_path / f"{role}.mat"
            coeff = np.zeros((sum(len(c) for c in clips), 257), np.float32)
            coeff[:, 80:144] = np.concatenate(clips)
            savemat(path, {"coeff": coeff})
        else:   # a folder of per-clip .npz files with matching names
            path = tmp_path / role
            path.mkdir()
            for i, clip in enumerate(clips):
                np.savez(path / f"clip{i}.npz", exp=clip.astype(np.float32))
        paths.append(str(path))
    return paths, p_lip, p_eye


@pytest.mark.parametrize("kind", ["npy", "mat", "folder"])
def test_cli_end_to_end(tmp_path, capsys, kind):
    (orig, lips, eyes), p_lip, p_eye = write_planted(tmp_path, kind)
    out = tmp_path / "partition.json"
    assert main(["disentangle", "--original", orig, "--closed-lips", lips, "--closed-eyes", eyes,
                 "-o", str(out)]) == 0
    part = Partition.load(out)
    assert list(part.lip) == list(p_lip) and list(part.eye) == list(p_eye)
    assert "lip [" in capsys.readouterr().out
    assert json.loads(out.read_text())["scores"]["lip"]


def test_cli_installed_script_and_missing_file(tmp_path):
    (orig, lips, eyes), *_ = write_planted(tmp_path, "npy")
    out = tmp_path / "p.json"
    script = Path(sys.executable).with_name("disenttalk")      # the installed console script
    cmd = [str(script), "disentangle", "--original", orig,
           "--closed-lips", str(tmp_path / "nope.npy"), "--closed-eyes", eyes, "-o", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 2 and not out.exists()
    assert res.stderr.strip().count("\n") == 0 and "nope.npy: no such file" in res.stderr


@pytest.mark.parametrize("setup,match", [
    (lambda d: np.save(d / "x.npy", np.zeros(5)), "must be a (frames, dims) array"),
    (lambda d: (d / "x.npy").write_bytes(b"garbage!"), "cannot read .npy file"),
    (lambda d: np.savez(d / "x.npz", other=np.zeros((3, 4))), "no 'exp', 'coeff'"),
    (lambda d: savemat(d / "x.mat", {"coeff": np.zeros((3, 100))}), "must have 257 columns"),
    (lambda d: np.save(d / "x.npy", np.zeros((5, 8))), "the output is a .json file"),
])
def test_cli_bad_files(tmp_path, capsys, setup, match):
    setup(tmp_path)
    bad = next(p for p in tmp_path.iterdir())
    good = tmp_path / "good.npy"
    np.save(good, np.random.default_rng(0).standard_normal((5, 8)))
    out = tmp_path / ("p.txt" if "output" in match else "p.json")
    assert main(["disentangle", "--original", str(bad), "--closed-lips", str(good),
                 "--closed-eyes", str(good), "-o", str(out), "--k-lip", "2", "--k-eye", "2"]) == 2
    err = capsys.readouterr().err
    assert match in err and err.strip().count("\n") == 0 and not out.exists()


def test_cli_folder_mismatch(tmp_path, capsys):
    (orig, lips, eyes), *_ = write_planted(tmp_path, "folder")
    (tmp_path / "lips" / "clip1.npz").unlink()
    assert main(["disentangle", "--original", orig, "--closed-lips", lips, "--closed-eyes", eyes,
                 "-o", str(tmp_path / "p.json")]) == 2
    assert "missing 1 clip(s)" in capsys.readouterr().err
