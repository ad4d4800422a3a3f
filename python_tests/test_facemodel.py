"""Face models: the built-in procedural face and the BFM loader."""

import numpy as np
import pytest
import scipy.io
import torch

from disenttalk_fast.facemodel import blendshapes
from disenttalk_fast.facemodel.blendshapes import SEMANTIC_BLENDSHAPES
from disenttalk_fast.facemodel.morphable import MorphableModel


@pytest.fixture(scope="module")
def face():
    return MorphableModel.builtin()


def weights(**named):
    w = torch.zeros(len(SEMANTIC_BLENDSHAPES))
    for name, value in named.items():
        w[blendshapes.index(name)] = value
    return w


def test_builtin_shapes(face):
    V = face.num_vertices
    assert 2000 <= V <= 10000
    assert face.mean_shape.shape == (V, 3)
    assert face.id_basis.shape == (3 * V, 80)
    assert face.exp_basis.shape == (3 * V, 64)
    assert face.albedo_basis.shape == (3 * V, 80)
    assert face.mean_albedo.shape == (V, 3)
    assert 0.0 <= float(face.mean_albedo.min()) and float(face.mean_albedo.max()) <= 1.0
    assert face.triangles.dtype == torch.int64 and face.triangles.shape[1] == 3
    assert int(face.triangles.min()) == 0 and int(face.triangles.max()) < V
    assert face.vertices(torch.zeros(5, 64)).shape == (5, V, 3)
    assert face.vertices().shape == (V, 3)
    # Roughly BFM-sized and upright: taller than wide, centred near the origin.
    extent = face.mean_shape.amax(0) - face.mean_shape.amin(0)
    assert 1.4 < float(extent[1]) < 2.4 and 1.0 < float(extent[0]) < float(extent[1])


def test_builtin_is_deterministic(face):
    from disenttalk_fast.facemodel import builtin

    builtin.builtin_model.cache_clear()
    again = MorphableModel.builtin()
    assert again is not face
    assert torch.equal(again.exp_basis, face.exp_basis)
    assert torch.equal(again.mean_shape, face.mean_shape)


def _same_face(a, b):
    for name in ("mean_shape", "id_basis", "exp_basis", "triangles", "mean_albedo",
                 "albedo_basis", "mouth_vertex_indices", "eye_vertex_indices"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and torch.equal(x, y), name
    assert a.landmarks == b.landmarks and a.name == b.name
    assert torch.equal(a.blendshapes.mixing, b.blendshapes.mixing)
    assert torch.equal(a.blendshapes.shapes, b.blendshapes.shapes)
    exp = torch.linspace(-1, 1, 5 * 64).reshape(5, 64)
    assert torch.equal(a.blendshapes.exp_to_weights(exp), b.blendshapes.exp_to_weights(exp))


def test_builtin_face_is_kept_on_disk(face, tmp_path, monkeypatch):
    """Built once, saved; a later process loads the same arrays without building. A cache file
    that does not load is rebuilt and replaced; an unwritable folder or "off" only means
    building every time."""
    from disenttalk_fast.facemodel import builtin, builtin_cache

    builds = []
    monkeypatch.setattr(builtin, "build_model", lambda: builds.append(1) or face)
    monkeypatch.setenv(builtin_cache.CACHE_ENV, str(tmp_path / "cache"))
    try:
        builtin.builtin_model.cache_clear()
        assert builtin.builtin_model() is face and builds == [1]
        path = builtin_cache.cache_path()
        assert path.is_file() and path.parent == tmp_path / "cache"
        builtin.builtin_model.cache_clear()
        loaded = builtin.builtin_model()
        assert builds == [1] and loaded is not face
        _same_face(loaded, face)

        path.write_bytes(b"not a safetensors file")
        builtin.builtin_model.cache_clear()
        assert builtin.builtin_model() is face and builds == [1, 1]
        _same_face(builtin_cache._load(path), face)

        (tmp_path / "plain_file").write_text("x")
        monkeypatch.setenv(builtin_cache.CACHE_ENV, str(tmp_path / "plain_file" / "cache"))
        builtin.builtin_model.cache_clear()
        assert builtin.builtin_model() is face and builds == [1, 1, 1]

        monkeypatch.setenv(builtin_cache.CACHE_ENV, "off")
        assert builtin_cache.cache_path() is None
    finally:
        builtin.builtin_model.cache_clear()


def test_expression_basis_is_orthonormal(face):
    E = face.exp_basis.double()
    torch.testing.assert_close(E.T @ E, torch.eye(64, dtype=torch.float64), atol=1e-5, rtol=0)


def test_weights_and_exp_map_both_ways(face):
    w = torch.rand(7, len(SEMANTIC_BLENDSHAPES), generator=torch.Generator().manual_seed(0))
    exp = face.weights_to_exp(w)
    assert exp.shape == (7, 64)
    torch.testing.assert_close(face.exp_to_weights(exp), w, atol=1e-4, rtol=0)
    # The expression reproduces the blendshape displacements exactly.
    rig = face.blendshapes
    direct = face.mean_shape + torch.einsum("ls,svc->lvc", w, rig.shapes)
    torch.testing.assert_close(face.vertices(exp), direct, atol=1e-4, rtol=0)
    # numpy in -> numpy out
    assert isinstance(face.weights_to_exp(w.numpy()), np.ndarray)
    with pytest.raises(ValueError, match="19 values"):
        face.weights_to_exp(np.zeros((2, 5)))


def test_basis_is_entangled_like_a_pca(face):
    """Each semantic shape spreads over several dims and most dims mix several shapes."""
    M = face.blendshapes.mixing.abs()
    energy = M ** 2 / (M ** 2).sum(0, keepdim=True)          # per shape, share of each dim
    dims_for_90 = (energy.sort(0, descending=True).values.cumsum(0) < 0.9).sum(0) + 1
    assert (dims_for_90 >= 2).float().mean() > 0.8
    row_share = M ** 2 / (M ** 2).sum(1, keepdim=True).clamp_min(1e-20)
    shapes_per_dim = (row_share > 0.05).sum(1)
    assert (shapes_per_dim[:19] >= 2).float().mean() > 0.6


def test_region_sensitivity(face):
    sens = face.region_sensitivity()
    assert set(sens) == {"lip", "eye", "global"}
    for v in sens.values():
        assert v.shape == (64,) and (v >= 0).all()
    top_lip = set(np.argsort(-sens["lip"])[:13])
    top_eye = set(np.argsort(-sens["eye"])[:8])
    assert len(top_lip & top_eye) <= 3


def displacement(face, **named):
    exp = face.weights_to_exp(weights(**named)[None])
    return (face.vertices(exp)[0] - face.mean_shape).norm(dim=-1)


def test_blink_moves_eyelids_not_lips(face):
    d = displacement(face, eye_blink_left=1.0)
    assert float(d[face.eye_vertex_indices].max()) > 0.04
    assert float(d[face.mouth_vertex_indices].max()) < 1e-4
    left = face.mean_shape[:, 0] > 0
    assert float(d[~left].max()) < 1e-4            # the right eye stays open
    open_ = face.eye_openness(face.mean_shape)
    closed = face.eye_openness(face.vertices(face.weights_to_exp(weights(eye_blink_left=1.0))))
    assert float(open_[0]) > 0.07 and float(closed[0]) < 0.2 * float(open_[0])
    torch.testing.assert_close(closed[1], open_[1], atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", blendshapes.LIP_BLENDSHAPES)
def test_lip_shapes_move_lips_not_eyes(face, name):
    d = displacement(face, **{name: 1.0})
    assert float(d[face.mouth_vertex_indices].max()) > 0.01
    assert float(d[face.eye_vertex_indices].max()) < 1e-4


@pytest.mark.parametrize("name", blendshapes.EYE_BLENDSHAPES)
def test_eye_shapes_move_eyes_not_lips(face, name):
    d = displacement(face, **{name: 1.0})
    assert float(d[face.eye_vertex_indices].max()) > 0.005
    assert float(d[face.mouth_vertex_indices].max()) < 1e-4


def test_jaw_open_opens_the_mouth(face):
    closed = float(face.mouth_opening(face.mean_shape))
    opened = face.mouth_opening(face.vertices(face.weights_to_exp(
        torch.stack([weights(jaw_open=0.5), weights(jaw_open=1.0)]))))
    assert closed < 0.01
    assert 0.1 < float(opened[0]) < float(opened[1])
    assert face.mouth_vertex_indices.numel() > 50


def test_identity_changes_shape(face):
    v = face.vertices(torch.zeros(64), id=torch.ones(80))
    assert float((v - face.mean_shape).norm(dim=-1).max()) > 0.01
    with pytest.raises(ValueError, match="id coefficients must have 80"):
        face.vertices(torch.zeros(64), id=torch.ones(3))


# --- BFM loader ------------------------------------------------------------------------------

def synthetic_bfm(V=80, T=120, seed=0):
    rng = np.random.default_rng(seed)
    shape = rng.normal(size=(V, 3)) + np.array([5.0, 0.0, 0.0])
    keypoints = rng.choice(V, size=68, replace=False) + 1
    return {
        "meanshape": shape.reshape(1, -1),
        "idBase": rng.normal(size=(3 * V, 80)),
        "exBase": rng.normal(size=(3 * V, 64)),
        "meantex": rng.uniform(0, 255, size=(1, 3 * V)),
        "texBase": rng.normal(size=(3 * V, 80)),
        "tri": rng.integers(1, V + 1, size=(T, 3)).astype(np.float64),  # 1-based, stored as double
        "point_buf": rng.integers(1, T + 1, size=(V, 8)),
        "keypoints": keypoints.reshape(1, 68).astype(np.float64),
    }


def test_bfm_loader_reads_the_layout(tmp_path):
    data = synthetic_bfm()
    path = tmp_path / "BFM_model_front.mat"
    scipy.io.savemat(path, data)
    m = MorphableModel.from_bfm(path)
    V = 80
    assert m.num_vertices == V and m.exp_dims == 64 and m.id_dims == 80 and m.tex_dims == 80
    expected = data["meanshape"].reshape(V, 3)
    expected = expected - expected.mean(0)                       # re-centred like Deep3DFaceRecon
    np.testing.assert_allclose(m.mean_shape.numpy(), expected, atol=1e-5)
    assert torch.equal(m.triangles, torch.as_tensor(data["tri"].astype(np.int64) - 1))
    np.testing.assert_allclose(m.mean_albedo.numpy(), data["meantex"].reshape(V, 3) / 255, atol=1e-6)
    assert m.keypoints.tolist() == (data["keypoints"].ravel().astype(int) - 1).tolist()
    exp = torch.randn(2, 64)
    want = expected.reshape(-1) + exp.double().numpy() @ data["exBase"].T
    np.testing.assert_allclose(m.vertices(exp).reshape(2, -1).numpy(), want, rtol=1e-4, atol=1e-3)
    assert m.mouth_opening(m.vertices(exp)).shape == (2,)
    assert m.eye_openness(m.vertices(exp)).shape == (2, 2)
    with pytest.raises(ValueError, match="no semantic blendshapes"):
        m.weights_to_exp(np.zeros((1, 19)))


@pytest.mark.parametrize("key,value,message", [
    ("exBase", None, "missing key 'exBase'"),
    ("tri", None, "missing key 'tri'"),
    ("exBase", np.zeros((10, 64)), "'exBase' has shape (10, 64), expected (240, K)"),
    ("meanshape", np.zeros((1, 100)), "'meanshape' has shape (1, 100), expected (1, 3V)"),
    ("tri", np.zeros((5, 4)), "'tri' has shape (5, 4), expected (T, 3)"),
    ("tri", np.full((5, 3), 81.0), "'tri' has indices outside 1..80"),
    ("tri", np.full((5, 3), 1.5), "'tri' must hold integer vertex indices"),
    ("meantex", np.zeros((1, 7)), "'meantex' has shape (1, 7)"),
])
def test_bfm_bad_files_give_one_line_errors(tmp_path, key, value, message):
    data = synthetic_bfm()
    if value is None:
        del data[key]
    else:
        data[key] = value
    path = tmp_path / "bad.mat"
    scipy.io.savemat(path, data)
    with pytest.raises(ValueError) as info:
        MorphableModel.from_bfm(path)
    text = str(info.value)
    assert message in text and str(path) in text and "\n" not in text


def test_bfm_not_a_mat_file(tmp_path):
    path = tmp_path / "face.mat"
    path.write_bytes(b"this is not a mat file at all" * 10)
    with pytest.raises(ValueError, match="not a readable MATLAB .mat face model"):
        MorphableModel.from_bfm(path)
    with pytest.raises(FileNotFoundError, match="no such face model file"):
        MorphableModel.from_bfm(tmp_path / "missing.mat")
