"""Z-buffer triangle rasterisation: the pure-PyTorch reference and dispatch to the kernels.

`rasterize(verts, tris, attrs, height, width)` draws a mesh batched over frames and returns the
perspective-correct interpolation of per-vertex attributes (any number of channels: colour,
normal, albedo, ...) and the index of the visible triangle per pixel. Conventions (shared by the
reference, csrc/rasterize_cpu.cpp and csrc/rasterize_cuda.cu; see csrc/rasterize.h):

- `verts[..., 0:2]` are screen coordinates in pixels, y pointing down; pixel (row i, col j) has
  its centre at (j + 0.5, i + 0.5). `verts[..., 2]` is the view depth, positive in front of the
  camera.
- A pixel is covered when its centre has all barycentrics >= 0 (edges inclusive; either winding).
- The visible triangle has the smallest perspective-correct depth; ties go to the lower index.
- Triangles with a vertex at depth <= `near` or with zero screen area are not drawn.
"""

from __future__ import annotations

from disenttalk_fast import _bridge, _native, backends
from disenttalk_fast._torch import torch

_OP = "rasterize"
DEFAULT_NEAR = 1e-4


def rasterize(verts, tris, attrs, height: int, width: int, *, near: float = DEFAULT_NEAR,
              backend: str = "auto"):
    """Rasterise `verts` (F, V, 3) with triangles `tris` (T, 3) (int, 0-based) and interpolate
    `attrs` ((F, V, C) per frame or (V, C) shared). Returns (image (F, H, W, C) float32, zero where
    empty; tri_id (F, H, W) int32, -1 where empty). backend: auto | reference | cpu | cuda."""
    _check(verts, tris, attrs, height, width)
    which = resolve_backend(backend, verts.device)
    if which == "reference":
        return rasterize_reference(verts, tris, attrs, height, width, near=near)
    return _rasterize_native(which, verts, tris, attrs, height, width, near)


def resolve_backend(backend: str, device) -> str:
    """backends.resolve, except that there is no Triton rasteriser: an explicit 'triton' is an
    error, while DISENTTALK_BACKEND=triton (meant for the model's ops) makes 'auto' pick the
    compiled kernel for the device."""
    which = backends.resolve(backend, device)
    if which != "triton":
        return which
    if backend != "auto":
        raise backends.BackendError("rasterize: no Triton kernel; use 'cpu', 'cuda' or 'reference'")
    if device.type == "cuda" and _native.cuda_compiled():
        return "cuda"
    if device.type == "cpu" and _native.cpu_available():
        return "cpu"
    return "reference"


def _check(verts, tris, attrs, height, width) -> None:
    _bridge.check_tensor(_OP, "verts", verts, ndim=3, shape=(None, None, 3), dtype=torch.float32)
    F, V, _ = verts.shape
    _bridge.check_tensor(_OP, "tris", tris, ndim=2, shape=(None, 3), device=verts.device)
    if tris.dtype not in (torch.int32, torch.int64):
        raise _bridge.OpInputError(f"{_OP}: tris must be int32 or int64, got {tris.dtype}")
    if tris.numel() and (int(tris.min()) < 0 or int(tris.max()) >= V):
        raise _bridge.OpInputError(f"{_OP}: tris has indices outside [0, {V}) vertices")
    if not isinstance(attrs, torch.Tensor) or attrs.dim() not in (2, 3):
        raise _bridge.OpInputError(f"{_OP}: attrs must be a (F, V, C) or (V, C) tensor")
    want = (F, V, None) if attrs.dim() == 3 else (V, None)
    _bridge.check_tensor(_OP, "attrs", attrs, shape=want, dtype=torch.float32, device=verts.device)
    for name, n in (("height", height), ("width", width)):
        if not isinstance(n, int) or n < 1:
            raise _bridge.OpInputError(f"{_OP}: {name} must be a positive int, got {n!r}")


def _rasterize_native(which, verts, tris, attrs, height, width, near):
    F, V, _ = verts.shape
    C = attrs.shape[-1]
    verts = verts.contiguous()
    tris32 = tris.to(torch.int32).contiguous()
    attrs = attrs.contiguous()
    out = torch.empty((F, height, width, C), dtype=torch.float32, device=verts.device)
    tri_id = torch.empty((F, height, width), dtype=torch.int32, device=verts.device)
    args = (_bridge.addr(verts), _bridge.addr(tris32), _bridge.addr(attrs), _bridge.addr(out),
            _bridge.addr(tri_id))
    dims = (F, V, tris32.shape[0], C, height, width, attrs.dim() == 2, float(near))
    if which == "cpu":
        _native.require_cpu().rasterize_cpu(*args, *dims, _bridge.num_threads())
    else:
        lib = _native.require_cuda()
        scratch = torch.empty((F, height, width), dtype=torch.int64, device=verts.device)
        with torch.cuda.device(verts.device):
            lib.rasterize_cuda(*args, _bridge.addr(scratch), *dims,
                               _bridge.cuda_stream(verts.device))
    return out, tri_id


def rasterize_reference(verts, tris, attrs, height: int, width: int, *, near: float = DEFAULT_NEAR,
                        chunk: int = 256):
    """The specification, in plain PyTorch: every pixel centre against every triangle (in chunks
    of triangles). Slow; meant for tests on small images."""
    F, V, _ = verts.shape
    dev = verts.device
    tris = tris.long()
    rows = torch.arange(height, device=dev, dtype=torch.float32) + 0.5
    cols = torch.arange(width, device=dev, dtype=torch.float32) + 0.5
    py = rows[:, None].expand(height, width).reshape(-1, 1)
    px = cols[None, :].expand(height, width).reshape(-1, 1)
    C = attrs.shape[-1]
    images = torch.zeros((F, height * width, C), dtype=torch.float32, device=dev)
    ids = torch.full((F, height * width), -1, dtype=torch.int32, device=dev)
    for f in range(F):
        tv = verts[f][tris]  # (T, 3 corners, 3 coords)
        best_z = torch.full((height * width,), float("inf"), device=dev)
        best_t = torch.full((height * width,), -1, dtype=torch.long, device=dev)
        for start in range(0, tris.shape[0], chunk):
            x0, y0, z0, x1, y1, z1, x2, y2, z2 = _corners(tv[start:start + chunk])
            area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
            drawable = (area != 0) & torch.isfinite(area) & (z0 > near) & (z1 > near) & (z2 > near)
            inv_area = 1.0 / torch.where(drawable, area, torch.ones_like(area))
            w0, w1, w2 = _barycentrics(x0, y0, x1, y1, x2, y2, inv_area, px, py)
            inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0) & drawable
            z = 1.0 / (w0 * (1.0 / z0) + w1 * (1.0 / z1) + w2 * (1.0 / z2))
            z = torch.where(inside, z, torch.full_like(z, float("inf")))
            zmin, arg = z.min(dim=1)  # first index among equal depths
            better = zmin < best_z  # strict: earlier chunks (lower indices) win ties
            best_z = torch.where(better, zmin, best_z)
            best_t = torch.where(better, arg + start, best_t)
        hit = best_t >= 0
        ids[f] = best_t.to(torch.int32)
        if not hit.any():
            continue
        t = best_t[hit]
        x0, y0, z0, x1, y1, z1, x2, y2, z2 = (c[0] for c in _corners(tv[t]))
        area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
        w0, w1, w2 = _barycentrics(x0, y0, x1, y1, x2, y2, 1.0 / area, px[hit, 0], py[hit, 0])
        p = torch.stack([w0 / z0, w1 / z1, w2 / z2], dim=1)
        p = p / p.sum(dim=1, keepdim=True)
        a = attrs if attrs.dim() == 2 else attrs[f]
        corner_attrs = a[tris[t]]  # (P, 3, C)
        images[f, hit] = (p[:, :, None] * corner_attrs).sum(dim=1)
    return images.reshape(F, height, width, C), ids.reshape(F, height, width)


def _corners(tv):
    """Per-triangle corner coordinates as (1, T) rows (broadcast against (P, 1) pixels)."""
    return tuple(tv[:, k, c][None, :] for k in range(3) for c in range(3))


def _barycentrics(x0, y0, x1, y1, x2, y2, inv_area, px, py):
    w0 = ((x2 - x1) * (py - y1) - (y2 - y1) * (px - x1)) * inv_area
    w1 = ((x0 - x2) * (py - y2) - (y0 - y2) * (px - x2)) * inv_area
    w2 = ((x1 - x0) * (py - y0) - (y1 - y0) * (px - x0)) * inv_area
    return w0, w1, w2
