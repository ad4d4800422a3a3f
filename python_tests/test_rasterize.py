"""The z-buffer rasteriser: coverage, depth order, interpolation, and kernels vs the reference."""

import pytest
import torch

from disenttalk_fast import _native
from disenttalk_fast._bridge import OpInputError
from disenttalk_fast.render.rasterize import rasterize, rasterize_reference

HAS_CUDA = torch.cuda.is_available()

BACKENDS = [
    pytest.param("reference", "cpu", id="reference"),
    pytest.param("cpu", "cpu", id="cpu", marks=pytest.mark.skipif(
        not _native.cpu_available(), reason="C++ kernels not built")),
    pytest.param("cuda", "cuda", id="cuda", marks=[
        pytest.mark.cuda,
        pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device"),
        pytest.mark.skipif(not _native.cuda_compiled(), reason="CUDA kernels not compiled in")]),
]
KERNELS = BACKENDS[1:]


def expected_coverage(tri_xy, H, W):
    """Pixel centres inside the triangle, in float64; also the smallest |edge distance|."""
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float64) + 0.5,
                            torch.arange(W, dtype=torch.float64) + 0.5, indexing="ij")
    (x0, y0), (x1, y1), (x2, y2) = tri_xy.double().tolist()
    area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
    e = [((x2 - x1) * (ys - y1) - (y2 - y1) * (xs - x1)) / area,
         ((x0 - x2) * (ys - y2) - (y0 - y2) * (xs - x2)) / area,
         ((x1 - x0) * (ys - y0) - (y1 - y0) * (xs - x0)) / area]
    inside = (e[0] >= 0) & (e[1] >= 0) & (e[2] >= 0)
    margin = torch.stack(e).amin(0).abs().min()  # how close any centre is to the boundary
    return inside, margin


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_single_triangle_covers_exactly_the_expected_pixels(backend, device):
    H, W = 23, 31
    xy = torch.tensor([[3.37, 2.71], [27.93, 8.17], [11.21, 20.63]])
    inside, margin = expected_coverage(xy, H, W)
    assert margin > 1e-4  # no pixel centre sits on an edge, so the answer is unambiguous
    verts = torch.cat([xy, torch.full((3, 1), 2.0)], 1)[None].to(device)
    tris = torch.tensor([[0, 1, 2]], dtype=torch.int32, device=device)
    attrs = torch.ones(3, 1, device=device)
    image, tri_id = rasterize(verts, tris, attrs, H, W, backend=backend)
    assert tri_id.shape == (1, H, W) and image.shape == (1, H, W, 1)
    assert torch.equal((tri_id[0] == 0).cpu(), inside)
    assert torch.equal((tri_id[0] == -1).cpu(), ~inside)
    torch.testing.assert_close(image[0, ..., 0].cpu(), inside.float(), atol=1e-6, rtol=0)
    # Reversed winding draws the same pixels.
    _, tri_id_rev = rasterize(verts, tris.flip(1), attrs, H, W, backend=backend)
    assert torch.equal(tri_id_rev, tri_id)


def true_depths(verts, H, W):
    """(T, H, W) float64 perspective-correct depth of every triangle at every pixel centre
    (inf where it does not cover the pixel), for unindexed triangles verts (3T, 3)."""
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float64) + 0.5,
                            torch.arange(W, dtype=torch.float64) + 0.5, indexing="ij")
    out = []
    for t in verts.double().reshape(-1, 3, 3):
        (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = t.tolist()
        area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
        w0 = ((x2 - x1) * (ys - y1) - (y2 - y1) * (xs - x1)) / area
        w1 = ((x0 - x2) * (ys - y2) - (y0 - y2) * (xs - x2)) / area
        w2 = 1.0 - w0 - w1
        z = 1.0 / (w0 / z0 + w1 / z1 + w2 / z2)
        out.append(torch.where((w0 >= 0) & (w1 >= 0) & (w2 >= 0), z, torch.inf))
    return torch.stack(out)


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_nearer_triangle_wins_whatever_the_order(backend, device):
    far = [[2.0, 2.0, 5.0], [18.0, 3.0, 5.0], [10.0, 17.0, 5.0]]
    near = [[4.0, 1.0, 3.0], [17.0, 15.0, 3.0], [1.0, 14.0, 3.0]]
    # A third triangle pierces both: its depth varies across it from 1 to 9.
    slanted = [[0.5, 9.7, 1.0], [19.6, 9.3, 9.0], [10.1, 19.4, 5.0]]
    for order in ([far, near, slanted], [slanted, near, far], [near, slanted, far]):
        verts = torch.tensor(sum(order, []))
        tris = torch.arange(9, dtype=torch.int32).reshape(3, 3)
        image, tri_id = rasterize(verts[None].to(device), tris.to(device),
                                  verts[:, 2:].contiguous().to(device), 20, 20, backend=backend)
        depths = true_depths(verts, 20, 20)
        best, expect = depths.min(0)
        expect[torch.isinf(best)] = -1
        second = depths.sort(0).values[1]
        clear = (second - best > 1e-3) | torch.isinf(best)   # not a near-tie between triangles
        assert clear.float().mean() > 0.95
        assert torch.equal(tri_id[0].cpu()[clear], expect[clear])
        seen = torch.isfinite(best)
        torch.testing.assert_close(image[0, ..., 0].cpu()[seen & clear],
                                   best[seen & clear].float(), atol=1e-4, rtol=1e-5)
        assert (expect == order.index(near)).any() and (expect == order.index(slanted)).any()


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_equal_depth_goes_to_the_lower_index(backend, device):
    tri = [[1.0, 1.0, 4.0], [14.0, 2.0, 4.0], [6.0, 13.0, 4.0]]
    verts = torch.tensor(tri + tri)[None].to(device)
    tris = torch.tensor([[3, 4, 5], [0, 1, 2]], dtype=torch.int32, device=device)
    _, tri_id = rasterize(verts, tris, torch.zeros(6, 1, device=device), 15, 15, backend=backend)
    assert set(tri_id.unique().tolist()) == {-1, 0}


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_interpolation_is_perspective_correct(backend, device):
    # A quad (two triangles) in 3D seen in perspective; attribute = the 3D x coordinate.
    f, c = 20.0, 16.0
    pts3 = torch.tensor([[-1.0, -1.0, 2.0], [1.0, -1.0, 6.0], [1.0, 1.0, 6.0], [-1.0, 1.0, 2.0]])
    screen = torch.stack([f * pts3[:, 0] / pts3[:, 2] + c, c - f * pts3[:, 1] / pts3[:, 2],
                          pts3[:, 2]], 1)
    tris = torch.tensor([[0, 1, 2], [0, 2, 3]], dtype=torch.int32)
    image, tri_id = rasterize(screen[None].to(device), tris.to(device),
                              pts3[:, :1].contiguous().to(device), 32, 32, backend=backend)
    image, tri_id = image.cpu(), tri_id.cpu()
    # Ground truth: cast the pixel ray onto the plane through the quad (z = 4 + 2 x).
    ys, xs = torch.meshgrid(torch.arange(32) + 0.5, torch.arange(32) + 0.5, indexing="ij")
    u = (xs - c) / f  # x / z along the ray
    z = 4.0 / (1.0 - 2.0 * u)
    expect = u * z
    hit = tri_id[0] >= 0
    assert hit.sum() > 50
    torch.testing.assert_close(image[0, ..., 0][hit], expect[hit], atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_behind_camera_and_degenerate_triangles_are_skipped(backend, device):
    verts = torch.tensor([[[1.0, 1.0, 1.0], [9.0, 1.0, -1.0], [5.0, 9.0, 1.0],
                           [1.0, 1.0, 1.0], [9.0, 9.0, 1.0], [5.0, 5.0, 1.0]]]).to(device)
    tris = torch.tensor([[0, 1, 2], [3, 4, 5]], dtype=torch.int32, device=device)
    _, tri_id = rasterize(verts, tris, torch.zeros(6, 2, device=device), 10, 10, backend=backend)
    assert (tri_id == -1).all()


@pytest.mark.parametrize("backend,device", BACKENDS)
def test_empty_mesh_gives_background(backend, device):
    verts = torch.zeros(2, 3, 3, device=device)
    tris = torch.zeros(0, 3, dtype=torch.int32, device=device)
    image, tri_id = rasterize(verts, tris, torch.ones(2, 3, 4, device=device), 5, 7,
                              backend=backend)
    assert image.shape == (2, 5, 7, 4) and (image == 0).all() and (tri_id == -1).all()


def random_mesh(F, V, T, H, W, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(F, V, 2, generator=g) * torch.tensor([W + 4.0, H + 4.0]) - 2.0
    z = 1.0 + 3.0 * torch.rand(F, V, 1, generator=g)
    tris = torch.randint(0, V, (T, 3), generator=g)
    return torch.cat([xy, z], -1), tris, torch.rand(F, V, 3, generator=g)


def on_an_edge(ref_id):
    """Pixels whose 4-neighbourhood in the reference id map holds another triangle."""
    F, H, W = ref_id.shape
    padded = torch.nn.functional.pad(ref_id.float()[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    centre = padded[:, 1:-1, 1:-1]
    edge = torch.zeros_like(centre, dtype=torch.bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        edge |= padded[:, dy:dy + H, dx:dx + W] != centre
    return edge


def assert_images_match(image, tri_id, ref_image, ref_id):
    close = (image.cpu() - ref_image).abs().amax(-1) <= 2.0 / 255.0
    assert close.float().mean() >= 0.995, f"only {close.float().mean():.4f} of pixels match"
    assert (close | on_an_edge(ref_id)).all(), "mismatching pixels away from triangle edges"
    assert ((tri_id.cpu() == ref_id) | on_an_edge(ref_id)).all()


@pytest.mark.parametrize("backend,device", KERNELS)
@pytest.mark.parametrize("F,V,T,H,W", [(1, 40, 30, 17, 23), (3, 200, 300, 32, 32),
                                       (2, 60, 50, 1, 9)])
def test_kernel_matches_reference_on_random_meshes(backend, device, F, V, T, H, W):
    verts, tris, attrs = random_mesh(F, V, T, H, W, seed=F * 1000 + T)
    ref_image, ref_id = rasterize_reference(verts, tris, attrs, H, W)
    image, tri_id = rasterize(verts.to(device), tris.to(device), attrs.to(device), H, W,
                              backend=backend)
    assert_images_match(image, tri_id, ref_image, ref_id)


@pytest.mark.parametrize("backend,device", KERNELS)
def test_kernel_matches_reference_on_the_face(backend, device):
    from disenttalk_fast.facemodel.morphable import MorphableModel
    from disenttalk_fast.render import camera

    model = MorphableModel.builtin()
    exp = torch.zeros(2, model.exp_dims)
    exp[1] = torch.as_tensor(model.weights_to_exp(torch.eye(19)[0] * 0.7))
    pose = torch.tensor([[0.0] * 6, [0.1, 0.3, 0.05, 0.0, 0.0, 0.0]])
    verts, _ = camera.transform(model.vertices(exp), pose)
    screen = camera.project(verts, 48)
    attrs = model.mean_albedo
    ref_image, ref_id = rasterize_reference(screen, model.triangles, attrs, 48, 48, chunk=2048)
    image, tri_id = rasterize(screen.to(device), model.triangles.to(device), attrs.to(device),
                              48, 48, backend=backend)
    assert_images_match(image, tri_id, ref_image, ref_id)


@pytest.mark.parametrize("backend,device", KERNELS)
def test_shared_and_per_frame_attributes_agree(backend, device):
    verts, tris, attrs = random_mesh(3, 50, 40, 16, 16, seed=7)
    shared = attrs[0]
    a, ia = rasterize(verts.to(device), tris.to(device), shared.to(device), 16, 16,
                      backend=backend)
    b, ib = rasterize(verts.to(device), tris.to(device),
                      shared.expand(3, -1, -1).contiguous().to(device), 16, 16, backend=backend)
    assert torch.equal(a, b) and torch.equal(ia, ib)


def test_bad_inputs_give_one_line_errors():
    verts = torch.zeros(1, 4, 3)
    tris = torch.tensor([[0, 1, 2]])
    attrs = torch.zeros(4, 3)
    cases = [
        (dict(verts=torch.zeros(4, 3)), "verts must have 3 dims"),
        (dict(verts=torch.zeros(1, 4, 2)), "verts has shape"),
        (dict(verts=torch.zeros(1, 4, 3, dtype=torch.float64)), "dtype"),
        (dict(tris=torch.tensor([[0, 1, 4]])), "outside [0, 4)"),
        (dict(tris=torch.tensor([[0.0, 1.0, 2.0]])), "int32 or int64"),
        (dict(attrs=torch.zeros(5, 3)), "attrs has shape"),
        (dict(height=0), "height must be a positive int"),
    ]
    for override, message in cases:
        kw = dict(verts=verts, tris=tris, attrs=attrs, height=4, width=4)
        kw.update(override)
        with pytest.raises(OpInputError) as info:
            rasterize(kw["verts"], kw["tris"], kw["attrs"], kw["height"], kw["width"])
        assert message in str(info.value) and "\n" not in str(info.value)


def test_triton_backend(monkeypatch):
    from disenttalk_fast.backends import BackendError

    # On the GPU's tensors when there is one (else the interpreter's CPU tensors), so the error
    # is the missing kernel and not the tensors' device.
    device = "cuda" if HAS_CUDA else "cpu"
    verts, tris, attrs = (t.to(device) for t in random_mesh(1, 10, 5, 8, 8, seed=1))
    with pytest.raises(BackendError, match="no Triton kernel"):
        rasterize(verts, tris, attrs, 8, 8, backend="triton")
    # DISENTTALK_BACKEND=triton is for the model's ops: 'auto' still rasterises.
    monkeypatch.setenv("DISENTTALK_BACKEND", "triton")
    image, tri_id = rasterize(verts, tris, attrs, 8, 8)
    ref_image, ref_id = rasterize_reference(verts.cpu(), tris.cpu(), attrs.cpu(), 8, 8)
    assert_images_match(image, tri_id, ref_image, ref_id)
