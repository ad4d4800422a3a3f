"""render(): camera and lighting conventions, backends agree, expressions show up in the image."""

import math

import numpy as np
import pytest
import torch

from disenttalk_fast import _native
from disenttalk_fast.facemodel.blendshapes import SEMANTIC_BLENDSHAPES, index
from disenttalk_fast.facemodel.morphable import MorphableModel
from disenttalk_fast.render import camera, lighting, render


@pytest.fixture(scope="module")
def face():
    return MorphableModel.builtin()


def exp_for(face, **named):
    w = np.zeros((1, len(SEMANTIC_BLENDSHAPES)), np.float32)
    for name, v in named.items():
        w[0, index(name)] = v
    return face.weights_to_exp(w)


def test_rotation_matches_deep3dfacerecon_convention():
    a = torch.tensor([[0.3, -0.2, 0.1]])
    R = camera.rotation_matrix(a)[0].double()
    x, y, z = a[0].double().tolist()
    rx = torch.tensor([[1, 0, 0], [0, math.cos(x), -math.sin(x)], [0, math.sin(x), math.cos(x)]])
    ry = torch.tensor([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rz = torch.tensor([[math.cos(z), -math.sin(z), 0], [math.sin(z), math.cos(z), 0], [0, 0, 1]])
    torch.testing.assert_close(R, (rz @ ry @ rx).double(), atol=1e-6, rtol=0)


def test_projection_focal_and_orientation():
    pts = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 1.0, 0.0]]])
    s = camera.project(pts, 224)
    torch.testing.assert_close(s[0, 0], torch.tensor([112.0, 112.0, 10.0]))
    # +x to the right, +y up (smaller row), focal 1015 px at 224 px, camera at z = 10.
    torch.testing.assert_close(s[0, 1], torch.tensor([112.0 + 101.5, 112.0 - 101.5, 10.0]))
    assert camera.focal_length(448) == pytest.approx(2030.0)


def test_sh_lighting_zero_gamma_is_deep3dfacerecon_ambient():
    g = lighting.as_gamma(torch.zeros(27), 1, "cpu")
    n = torch.nn.functional.normalize(torch.randn(1, 10, 3), dim=-1)
    colour = lighting.shade(torch.full((10, 3), 0.5), n, g)
    expected = 0.8 * math.pi / math.sqrt(4 * math.pi) * 0.5
    torch.testing.assert_close(colour, torch.full_like(colour, expected))
    with pytest.raises(ValueError, match="gamma must be"):
        lighting.as_gamma(torch.zeros(9), 1, "cpu")


def test_default_light_is_brighter_facing_the_camera():
    g = lighting.as_gamma(None, 1, "cpu")
    n = torch.tensor([[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]])
    c = lighting.shade(torch.ones(3, 3), n, g)[0, :, 0]
    assert c[0] > c[1] and c[0] > c[2] and c.min() > 0.2


def test_render_shapes_and_background(face):
    frames = render(np.zeros((2, 64), np.float32), face, 64, background=(0.0, 0.0, 1.0))
    assert frames.dtype == np.uint8 and frames.shape == (2, 64, 64, 3)
    assert (frames[:, 0, 0] == [0, 0, 255]).all()                 # corner: background
    centre = frames[0, 28:36, 28:36].reshape(-1, 3).astype(int)
    assert (centre[:, 0] > centre[:, 2]).all()                     # centre: skin (reddish)


def test_backends_agree(face):
    exp = np.concatenate([np.zeros((1, 64), np.float32), exp_for(face, jaw_open=0.8)])
    backends = ["reference"] + (["cpu"] if _native.cpu_available() else [])
    frames = [render(exp, face, 48, backend=b, pose=[0.05, 0.2, 0.0, 0.0, 0.0, 0.0])
              for b in backends]
    for other in frames[1:]:
        diff = np.abs(other.astype(int) - frames[0].astype(int)).max(-1)
        assert (diff <= 2).mean() >= 0.99


def test_jaw_open_darkens_the_mouth(face):
    frames = render(np.concatenate([np.zeros((1, 64), np.float32), exp_for(face, jaw_open=1.0)]),
                    face, 96)
    rows = slice(60, 80)
    mouth_closed = frames[0, rows, 40:56].astype(float).mean()
    mouth_open = frames[1, rows, 40:56].astype(float).mean()
    assert mouth_open < mouth_closed - 15


def test_pixel_shading_and_supersampling_run(face):
    exp = np.zeros((1, 64), np.float32)
    a = render(exp, face, 48, shading="pixel").astype(int)
    b = render(exp, face, 48).astype(int)
    assert np.abs(a - b).mean() < 10
    c = render(exp, face, 48, supersample=2)
    assert c.shape == (1, 48, 48, 3)


def test_background_image_and_motion_object(face):
    class Motion:  # anything with .exp and .pose
        exp = np.zeros((3, 64), np.float32)
        pose = np.zeros((3, 6), np.float32)

    bg = np.full((32, 32, 3), 7, np.uint8)
    frames = render(Motion(), face, 32, background=bg)
    assert frames.shape == (3, 32, 32, 3) and (frames[:, 0, 0] == 7).all()


@pytest.mark.parametrize("kwargs,message", [
    (dict(motion=np.zeros((2, 10))), "motion has 10 expression dims"),
    (dict(pose=np.zeros((3, 6))), "pose must be (6,) or (2, 6)"),
    (dict(shading="flat"), "shading must be"),
    (dict(size=4), "size must be an int"),
    (dict(background=np.zeros((5, 5, 3))), "background must be"),
    (dict(gamma=np.zeros(26)), "gamma must be"),
    (dict(motion=np.full((2, 64), np.nan, np.float32)), "contain NaN"),
    (dict(pose=np.full(6, np.inf)), "pose contains NaN"),
])
def test_bad_inputs(face, kwargs, message):
    args = dict(motion=np.zeros((2, 64), np.float32), size=32)
    args.update(kwargs)
    motion = args.pop("motion")
    with pytest.raises(ValueError) as info:
        render(motion, face, **args)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.skipif(not _native.cpu_available(), reason="C++ kernels not built")
@pytest.mark.parametrize("shade", [True, False])
def test_fused_cpu_vertex_stage_matches_pytorch(face, shade):
    from disenttalk_fast.render.render import _prepare_cpu, _prepare_torch

    g = torch.Generator().manual_seed(3)
    F = 3
    verts = face.vertices(torch.randn(F, 64, generator=g))
    pose = torch.randn(F, 6, generator=g) * 0.2
    gamma = lighting.as_gamma(torch.randn(F, 27, generator=g) * 0.1, F, "cpu")
    for albedo in (face.mean_albedo, torch.rand(F, face.num_vertices, 3, generator=g)):
        args = (verts, face.triangles, face.triangles.int(), albedo, pose, gamma, 64, shade)
        s_cpu, a_cpu = _prepare_cpu(*args)
        s_ref, a_ref = _prepare_torch(*args)
        torch.testing.assert_close(s_cpu, s_ref, atol=2e-3, rtol=1e-5)
        torch.testing.assert_close(a_cpu, a_ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("shading", ["vertex", "pixel"])
def test_per_frame_id_and_tex_match_frame_by_frame(face, backend, shading):
    # Regression: per-frame tex was computed for all frames and handed whole to every batch (the
    # C++ kernel reused the first batch's rows); per-frame id was not sliced at all.
    if backend == "cpu" and not _native.cpu_available():
        pytest.skip("C++ kernels not built")
    F = 5
    rng = np.random.default_rng(0)
    exp = rng.normal(size=(F, 64)).astype(np.float32) * 0.5
    id_ = rng.normal(size=(F, face.id_dims)).astype(np.float32) * 0.5
    tex = rng.normal(size=(F, face.tex_dims)).astype(np.float32) * 0.5
    common = dict(backend=backend, shading=shading)
    batched = render(exp, face, 24, id=id_, tex=tex, batch_size=2, **common)
    single = np.concatenate([render(exp[i], face, 24, id=id_[i], tex=tex[i], **common)
                             for i in range(F)])
    np.testing.assert_array_equal(batched, single)
    # A shared (K,) tex / id is the same as repeating it per frame.
    shared = render(exp, face, 24, id=id_[0], tex=tex[0], batch_size=2, **common)
    repeated = render(exp, face, 24, id=np.repeat(id_[:1], F, 0), tex=np.repeat(tex[:1], F, 0),
                      batch_size=2, **common)
    np.testing.assert_array_equal(shared, repeated)


def test_integral_numpy_sizes_and_array_background_colour(face):
    exp = np.zeros((3, 64), np.float32)
    want = render(exp, face, 32, supersample=2, batch_size=2, background=(0.1, 0.2, 0.3))
    got = render(exp, face, np.int64(32), supersample=np.int32(2), batch_size=np.int64(2),
                 background=np.array([0.1, 0.2, 0.3]))
    np.testing.assert_array_equal(got, want)
    got = render(exp, face, 32, supersample=2, batch_size=2,
                 background=torch.tensor([0.1, 0.2, 0.3]))
    np.testing.assert_array_equal(got, want)


def test_float_background_image_is_taken_as_0_to_1(face):
    exp = np.zeros((1, 64), np.float32)
    as_float = render(exp, face, 32, background=np.full((32, 32, 3), 0.5, np.float32))
    as_uint8 = render(exp, face, 32, background=np.full((32, 32, 3), 128, np.uint8))
    assert (as_float[0, 0, 0] == 128).all()
    np.testing.assert_array_equal(as_float, as_uint8)


def test_huge_expression_is_an_error_not_black_frames(face):
    # Regression: exp = 1e30 blew the mesh up past float32's range for normals: NaN colours gave
    # all-black frames (the giant mesh covered every pixel, so no background either).
    with pytest.raises(ValueError) as info:
        render(np.full((1, 64), 1e30, np.float32), face, 32)
    assert str(info.value).startswith("render:") and "exp" in str(info.value)
    assert "\n" not in str(info.value)
    # Large but sensible coefficients still render.
    render(np.full((1, 64), 5.0, np.float32), face, 32)


@pytest.mark.parametrize("kwargs,message", [
    (dict(batch_size=0), "batch_size must be a positive int"),
    (dict(size=100_000), "beyond the supported 8192"),
    (dict(size=4096, supersample=4), "beyond the supported 8192"),
    (dict(batch_size=-1), "batch_size must be a positive int"),
    (dict(batch_size=2.0), "batch_size must be a positive int"),
    (dict(batch_size=True), "batch_size must be a positive int"),
    (dict(size=True), "size must be an int"),
    (dict(size=32.0), "size must be an int"),
    (dict(supersample=np.float64(2)), "supersample must be a positive int"),
    (dict(id=np.zeros((3, 80))), "id must be (80,) or (2, 80)"),
    (dict(id=np.zeros(79)), "id must be (80,) or (2, 80)"),
    (dict(tex=np.zeros((3, 80))), "tex must be (80,) or (2, 80)"),
    (dict(tex=np.full(80, np.nan)), "tex contains NaN"),
    (dict(id=np.full((2, 80), np.inf)), "id contains NaN"),
    (dict(id="x"), "id must be"),
    (dict(background=(np.nan, 0.0, 0.0)), "background contains NaN"),
    (dict(background=np.full((32, 32, 3), np.inf)), "background contains NaN"),
    (dict(background=(0.0, 0.0, 2.0)), "background colour must be in [0, 1]"),
    (dict(background=(0, 0, 255)), "background colour must be in [0, 1]"),
    (dict(background=np.full((32, 32, 3), 255.0)), "float background image must be in [0, 1]"),
    (dict(background=(0.1, 0.2)), "background must be"),
    (dict(background="red"), "background must be"),
    (dict(gamma=np.full(27, np.nan)), "gamma contains NaN"),
    (dict(gamma=np.full((2, 27), np.inf)), "gamma contains NaN"),
    (dict(gamma=1.0), "gamma must be"),
    (dict(face_model="x.mat"), "face_model must be a MorphableModel"),
    (dict(id=np.full(80, 1e35)), "too large"),
    # Regression: a pose of 1e30 wrote a video (of background) without a word.
    (dict(pose=np.full(6, 1e30)), "pose angles reach 1e+30 radians, beyond +-2 pi"),
    (dict(pose=[30.0, 0, 0, 0, 0, 0]), "degrees given as radians?"),
    (dict(pose=np.array([[0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, -5e3]])),
     "pose translations reach 5000 model units, beyond +-1000"),
])
def test_bad_inputs_more(face, kwargs, message):
    args = dict(motion=np.zeros((2, 64), np.float32), face_model=face, size=32)
    args.update(kwargs)
    with pytest.raises(ValueError) as info:
        render(args.pop("motion"), args.pop("face_model"), **args)
    text = str(info.value)
    assert text.startswith("render:") and message in text and "\n" not in text


def test_pose_within_bounds_renders(face):
    from disenttalk_fast.motion import Motion
    from disenttalk_fast.render.render import MAX_POSE_ANGLE, MAX_POSE_TRANSLATION

    pose = np.array([[-MAX_POSE_ANGLE, 0.2, 3.0, 0.5, -0.3, 1.0],
                     [0.0, 0.0, 0.0, 0.0, 0.0, -MAX_POSE_TRANSLATION]], np.float32)
    assert render(np.zeros((2, 64), np.float32), face, 16, pose=pose).shape == (2, 16, 16, 3)
    with pytest.raises(ValueError, match="pose translations reach"):   # a Motion's pose too
        render(Motion(np.zeros((2, 64)), pose * [1, 1, 1, 1, 1, 2]), face, 16)
