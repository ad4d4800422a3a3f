"""Motion .npz and every interop format: round trips and one-line errors for wrong keys/shapes."""

import warnings

import numpy as np
import pytest
from scipy.io import savemat

from disenttalk_fast.interop import Deep3DCoeffs, detect_format, read_motion, write_motion
from disenttalk_fast.interop.formats import read_template
from disenttalk_fast.motion import Motion
from disenttalk_fast.partition import Partition


def make_motion(frames=7, dims=64, pose=True, seed=0):
    rng = np.random.default_rng(seed)
    return Motion(rng.standard_normal((frames, dims)).astype(np.float32),
                  rng.standard_normal((frames, 6)).astype(np.float32) * 0.1 if pose else None,
                  25.0, Partition.contiguous(dims, 3, 2))


def test_npz_round_trip(tmp_path):
    m = make_motion()
    m.meta["seed"] = 3
    write_motion(m, tmp_path / "m.npz")
    back = read_motion(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.exp, m.exp)
    np.testing.assert_array_equal(back.pose, m.pose)
    assert back.partition == m.partition and back.fps == 25 and back.meta == {"seed": 3}
    no_pose = make_motion(pose=False, dims=10)
    no_pose.save(tmp_path / "n.npz")
    assert Motion.load(tmp_path / "n.npz").pose is None


@pytest.mark.parametrize("key,value", [("fps", np.array([25.0, 30.0])),
                                       ("format_version", np.array([1, 2])),
                                       ("format_version", np.array("abc"))])
def test_npz_scalar_fields_must_be_one_number(tmp_path, key, value):
    np.savez(tmp_path / "m.npz", exp=np.zeros((3, 8), np.float32), **{key: value})
    with pytest.raises(ValueError, match=f"m.npz: '{key}' must be one number") as info:
        read_motion(tmp_path / "m.npz")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name,fmt", [("a.mat", None), ("a.mat", "deep3d-keys"), ("a.npy", None),
                                      ("a.txt", None), ("a.npy", "descriptor73"),
                                      ("a.mat", "descriptor73")])
def test_interop_round_trips(tmp_path, name, fmt):
    m = make_motion()
    used = write_motion(m, tmp_path / name, format=fmt)
    assert detect_format(tmp_path / name) == used
    back = read_motion(tmp_path / name)
    np.testing.assert_allclose(back.exp, m.exp, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(back.pose, m.pose, rtol=1e-6, atol=1e-6)
    assert back.num_frames == 7


def test_template_keeps_identity_and_crop(tmp_path):
    rng = np.random.default_rng(1)
    coeff = rng.standard_normal((7, 257)).astype(np.float32)
    tp = np.tile(np.array([256, 256, 1.1, 120.0, 118.0], np.float32), (7, 1))
    savemat(tmp_path / "ref.mat", {"coeff": coeff, "transform_params": tp})
    m = make_motion()
    write_motion(m, tmp_path / "out.mat", template=tmp_path / "ref.mat")
    out = read_template(tmp_path / "out.mat")
    np.testing.assert_array_equal(out.coeff[:, :80], coeff[:, :80])          # identity
    np.testing.assert_array_equal(out.coeff[:, 144:224], coeff[:, 144:224])  # texture
    np.testing.assert_array_equal(out.coeff[:, 80:144], m.exp)
    np.testing.assert_array_equal(out.transform_params, tp)
    write_motion(m, tmp_path / "out.txt", template=tmp_path / "ref.mat")
    d = np.loadtxt(tmp_path / "out.txt")
    np.testing.assert_allclose(d[:, 70:73], tp[:, 2:5])
    # A template of another length contributes its first frame.
    write_motion(make_motion(frames=3), tmp_path / "short.npy", template=tmp_path / "ref.mat")
    np.testing.assert_array_equal(np.load(tmp_path / "short.npy")[:, :80], coeff[[0, 0, 0], :80])


def test_reads_deep3d_per_image_and_sadtalker_layouts(tmp_path):
    rng = np.random.default_rng(2)
    keys = {"id": 80, "exp": 64, "tex": 80, "angle": 3, "gamma": 27, "trans": 3}
    d = {k: rng.standard_normal((1, n)).astype(np.float32) for k, n in keys.items()}
    d["lm68"] = np.zeros((1, 68, 2))
    savemat(tmp_path / "img.mat", d)          # one image, as Deep3DFaceRecon writes it
    m = read_motion(tmp_path / "img.mat")
    np.testing.assert_array_equal(m.exp, d["exp"])
    np.testing.assert_array_equal(m.pose, np.concatenate([d["angle"], d["trans"]], 1))
    full = rng.standard_normal((5, 257)).astype(np.float32)
    savemat(tmp_path / "sad.mat", {"coeff_3dmm": full[:, :73], "full_3dmm": full})
    np.testing.assert_array_equal(read_motion(tmp_path / "sad.mat").exp, full[:, 80:144])


def test_deep3d_coeff_slices():
    coeff = np.arange(257, dtype=np.float32)[None].repeat(2, 0)
    c = Deep3DCoeffs(coeff)
    assert c.part("exp")[0, 0] == 80 and c.part("angle")[0].tolist() == [224, 225, 226]
    assert c.part("gamma").shape == (2, 27) and c.part("trans")[0].tolist() == [254, 255, 256]


@pytest.mark.parametrize("name,fmt", [("a.npz", None), ("a.mat", None), ("a.mat", "deep3d-keys"),
                                      ("a.npy", None), ("a.txt", None),
                                      ("a.npy", "descriptor73"), ("a.mat", "descriptor73")])
def test_zero_frames_round_trip(tmp_path, name, fmt):
    # An empty .txt used to read back as a (0, 1) table and be refused.
    used = write_motion(Motion(np.zeros((0, 64))), tmp_path / name, format=fmt)
    assert detect_format(tmp_path / name) == used
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "empty input" or "mean of empty slice" either
        back = read_motion(tmp_path / name)
    assert back.exp.shape == (0, 64) and back.pose_or_zeros().shape == (0, 6)


@pytest.mark.parametrize("name", ["a.npz", "a.mat", "a.npy", "a.txt"])
def test_frame_rate_lost_by_a_format_warns(tmp_path, name):
    m = make_motion()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_motion(m, tmp_path / name)             # 25 fps is what every format reads back
    m.fps = 30.0
    if name.endswith(".npz"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            write_motion(m, tmp_path / name)
        assert read_motion(tmp_path / name).fps == 30
        return
    with pytest.warns(UserWarning, match="stores no frame rate; this 30 fps motion reads back "
                                         "as 25 fps") as record:
        write_motion(m, tmp_path / name)
    assert str(tmp_path / name) in str(record[0].message)
    assert read_motion(tmp_path / name, fps=30).fps == 30


WRITE_REFUSALS = [
    ("array", TypeError, "write_motion: motion must be a Motion, got ndarray"),
    ("none", TypeError, "write_motion: motion must be a Motion, got NoneType"),
    ("template_int", TypeError, r"template must be a path, a Deep3DCoeffs or a \(frames, 73\) "
                                "descriptor array, got int"),
    ("template_wrong_width", ValueError, "template: a 73-d descriptor must be"),
    ("template_no_frames", ValueError, "the template has no frames"),
    ("template_for_npz", ValueError, "takes no template"),
    ("descriptor_for_deep3d", ValueError, "no identity, texture or lighting"),
    ("no_crop_for_descriptor", ValueError, "no transform_params"),
]


@pytest.mark.parametrize("case,error,match", WRITE_REFUSALS, ids=[c[0] for c in WRITE_REFUSALS])
def test_write_motion_refuses_what_it_cannot_use(tmp_path, case, error, match):
    # These used to end in an AttributeError or a numpy broadcast error, or ignore the template.
    m, coeffs = make_motion(), Deep3DCoeffs(np.zeros((7, 257)))
    write_motion(m, tmp_path / "ref.txt")
    motion, name, template = {
        "array": (m.exp, "a.npz", None),
        "none": (None, "a.mat", None),
        "template_int": (m, "a.mat", 5),
        "template_wrong_width": (m, "a.txt", np.zeros((7, 70))),
        "template_no_frames": (m, "a.txt", np.zeros((0, 73))),
        "template_for_npz": (m, "a.npz", coeffs),
        "descriptor_for_deep3d": (m, "a.mat", tmp_path / "ref.txt"),
        "no_crop_for_descriptor": (m, "a.txt", coeffs),
    }[case]
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(error, match=match) as info:
        write_motion(motion, out / name, template=template)
    assert "\n" not in str(info.value)
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("case,match", [
    ("mat_wrong_keys", "coeff"),
    ("mat_wrong_width", r"\(frames, 257\)"),
    ("keys_mismatched_lengths", "different frame counts"),
    ("npy_wrong_width", "width 50"),
    ("txt_wrong_width", r"\(frames, 73\)"),
    ("not_a_mat", "not a readable .mat"),
    ("npz_without_exp", "missing array 'exp'"),
    ("unknown_ext", "unknown motion file extension"),
])
def test_bad_files_one_line_errors(tmp_path, case, match):
    rng = np.random.default_rng(0)
    p = tmp_path / {"npy_wrong_width": "x.npy", "txt_wrong_width": "x.txt",
                    "npz_without_exp": "x.npz", "unknown_ext": "x.csv"}.get(case, "x.mat")
    if case == "mat_wrong_keys":
        savemat(p, {"hello": np.zeros((3, 3))})
    elif case == "mat_wrong_width":
        savemat(p, {"coeff": np.zeros((3, 250)), "full_3dmm": np.zeros((3, 250))})
    elif case == "keys_mismatched_lengths":
        savemat(p, {"id": np.zeros((2, 80)), "exp": np.zeros((3, 64)), "tex": np.zeros((2, 80)),
                    "angle": np.zeros((2, 3)), "gamma": np.zeros((2, 27)),
                    "trans": np.zeros((2, 3))})
    elif case == "npy_wrong_width":
        np.save(p, rng.standard_normal((3, 50)))
    elif case == "txt_wrong_width":
        np.savetxt(p, rng.standard_normal((3, 70)))
    elif case == "not_a_mat":
        p.write_bytes(b"MATLAB? no" * 20)
    elif case == "npz_without_exp":
        np.savez(p, pose=np.zeros((3, 6)))
    else:
        p.write_text("1,2,3")
    with pytest.raises(ValueError, match=match) as info:
        read_motion(p)
    assert str(p) in str(info.value) and "\n" not in str(info.value)


def test_write_errors_leave_no_file(tmp_path):
    with pytest.raises(ValueError, match="64 expression dims"):
        write_motion(make_motion(dims=10), tmp_path / "x.mat")
    with pytest.raises(ValueError, match="written as"):
        write_motion(make_motion(), tmp_path / "x.txt", format="deep3d-mat")
    with pytest.raises(ValueError, match="cannot tell"):
        write_motion(make_motion(), tmp_path / "x.bin")
    assert list(tmp_path.iterdir()) == []


def test_motion_validation():
    for fps in (0, -25.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="Motion.fps must be finite and > 0"):
            Motion(np.zeros((4, 64)), fps=fps)
    with pytest.raises(ValueError, match="Motion.fps must be a number, got None"):
        Motion(np.zeros((4, 64)), fps=None)
    with pytest.raises(ValueError, match="pose"):
        Motion(np.zeros((4, 64)), np.zeros((3, 6)))
    with pytest.raises(ValueError, match="partition"):
        Motion(np.zeros((4, 10)), partition=Partition.contiguous(64))


@pytest.mark.parametrize("tp,match", [(np.zeros(7, np.float32), "must be finite"),
                                      (np.array(["abc"]), "must be numbers")])
def test_per_key_mat_transform_params_are_checked(tmp_path, tp, match):
    from scipy.io import savemat

    from disenttalk_fast.interop.deep3d import KEYS, SLICES

    keys = {k: np.zeros((3, SLICES[k].stop - SLICES[k].start), np.float32) for k in KEYS}
    savemat(tmp_path / "k.mat", {**keys, "transform_params": tp})
    with pytest.raises(ValueError, match=f"k.mat: 'transform_params' {match}"):
        read_motion(tmp_path / "k.mat")


@pytest.mark.parametrize("width", [257, 73])
def test_complex_arrays_are_not_coefficients(tmp_path, width):
    np.save(tmp_path / "c.npy", np.zeros((3, width), np.complex64))
    with pytest.raises(ValueError, match="must be \\(frames, .*numbers, got complex64"):
        read_motion(tmp_path / "c.npy")
