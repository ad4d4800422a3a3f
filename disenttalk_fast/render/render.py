"""`render(motion, face_model) -> uint8 frames (F, H, W, 3)`: expression (+ pose) to images.

Per batch of frames: vertices from the morphable model, area-weighted vertex normals, pose,
spherical-harmonics shading, projection, then the z-buffer rasteriser (C++ / CUDA kernel, or the
PyTorch reference) and compositing over the background.

Shading: `shading="vertex"` (default, as Deep3DFaceRecon) lights each vertex and interpolates the
colour; `shading="pixel"` interpolates albedo and normal and lights every pixel (smoother
highlights on coarse meshes, a little slower).
"""

from __future__ import annotations

import operator

import numpy as np

from disenttalk_fast import _bridge, _native
from disenttalk_fast._torch import torch
from disenttalk_fast.render import camera, lighting
from disenttalk_fast.render.rasterize import rasterize, resolve_backend

DEFAULT_BACKGROUND = (0.33, 0.36, 0.42)
# Largest |vertex coordinate| rendered, in model units (a BFM face spans about 2, the camera is 10
# away). Far beyond it float32 cannot shade the mesh: the edge cross products behind the normals
# overflow, so normals collapse to zero (C++ kernel) or NaN and every pixel came out black.
MAX_EXTENT = 1e6
# Largest rendered image side (size x supersample): an 8192^2 float RGB batch is already GBs.
MAX_RENDER_SIZE = 8192
# Largest |pose angle| (radians): one full turn. Trackers give angles in (-pi, pi]; beyond a turn
# is degrees given as radians or garbage, and float32 sin / cos of a huge angle is noise.
MAX_POSE_ANGLE = 2 * np.pi
# Largest |pose translation| (model units: a face spans about 2, the camera is 10 away): beyond
# it the face is far outside the frame, behind the camera or a few pixels wide — blank frames
# written without a word, as a pose of 1e30 had been.
MAX_POSE_TRANSLATION = 1e3


def vertex_normals(verts: torch.Tensor, tris: torch.Tensor) -> torch.Tensor:
    """(F, V, 3) -> (F, V, 3) unit normals: the area-weighted sum of adjacent face normals."""
    a, b, c = verts[:, tris[:, 0]], verts[:, tris[:, 1]], verts[:, tris[:, 2]]
    face_n = torch.cross(b - a, c - a, dim=-1)
    normals = torch.zeros_like(verts)
    for k in range(3):
        normals.index_add_(1, tris[:, k], face_n)
    return torch.nn.functional.normalize(normals, dim=-1, eps=1e-12)


def render(motion, face_model=None, size: int = 256, *, pose=None, id=None, tex=None,
           gamma=None, background=DEFAULT_BACKGROUND, shading: str = "vertex",
           supersample: int = 1, backend: str = "auto", device=None,
           batch_size: int = 32) -> np.ndarray:
    """Render expression coefficients to RGB frames.

    motion: a `Motion` (its exp and pose are used), or exp coefficients (F, K) / (K,) as a numpy
    array or tensor. face_model: a MorphableModel (default: the built-in face). pose: (F, 6) or
    (6,) angles (radians) + translation, overriding the motion's. id / tex: identity / albedo
    coefficients, (K,) for every frame or (F, K) per frame. gamma: 27 SH lighting coefficients
    (Deep3DFaceRecon layout) or (F, 27). background: an RGB colour (3 numbers in [0, 1]) or an
    image (size, size, 3): uint8 in 0..255, or float in [0, 1]. supersample: render at k times
    the size and average (anti-aliasing). batch_size: frames rendered at once. Returns uint8
    (F, size, size, 3).

    Bad arguments raise a one-line ValueError, as do exp / id coefficients so large that the face
    reaches beyond MAX_EXTENT model units (a face spans about 2): float32 cannot shade such a mesh,
    and it would have rendered as black frames. So do pose angles beyond +-2 pi radians
    (MAX_POSE_ANGLE: degrees, or garbage) and translations beyond +-1000 model units
    (MAX_POSE_TRANSLATION: the face would be out of sight).
    """
    from disenttalk_fast.facemodel.morphable import MorphableModel

    if face_model is not None and not isinstance(face_model, MorphableModel):
        raise ValueError(f"render: face_model must be a MorphableModel (e.g. "
                         f"MorphableModel.from_bfm(path)), got {type(face_model).__name__}")
    if shading not in ("vertex", "pixel"):
        raise ValueError(f"render: shading must be 'vertex' or 'pixel', got {shading!r}")
    size = _int(size, "size", "an int >= 8", 8)
    supersample = _int(supersample, "supersample", "a positive int", 1)
    if size * supersample > MAX_RENDER_SIZE:
        raise ValueError(f"render: size x supersample = {size * supersample} pixels is beyond "
                         f"the supported {MAX_RENDER_SIZE}")
    batch_size = _int(batch_size, "batch_size", "a positive int", 1)
    model = face_model if face_model is not None else MorphableModel.builtin()
    exp, motion_pose = _unpack(motion)
    if exp.shape[-1] != model.exp_dims:
        raise ValueError(f"render: motion has {exp.shape[-1]} expression dims but the face model "
                         f"'{model.name}' has {model.exp_dims}")
    dev = torch.device(device) if device is not None else model.device
    if model.device != dev:
        model = model.to(dev)
    F = exp.shape[0]
    if not np.isfinite(exp).all():
        raise ValueError("render: the expression coefficients contain NaN or infinite values")
    exp = torch.as_tensor(exp, dtype=torch.float32, device=dev)
    pose_t = _pose(pose if pose is not None else motion_pose, F, dev)
    _check_pose(pose_t)
    if tex is not None and model.tex_dims == 0:
        raise ValueError(f"render: tex given but the face model '{model.name}' has no albedo basis")
    id_t = _coeffs(id, "id", model.id_dims, F, dev)
    tex_t = _coeffs(tex, "tex", model.tex_dims, F, dev)
    gamma_t = lighting.as_gamma(gamma, F, dev)
    bg = _background(background, size, dev)
    frames = np.empty((F, size, size, 3), np.uint8)
    tris = model.triangles
    tris32 = tris.to(torch.int32)
    # A shared (or no) tex gives one albedo for all frames; per-frame tex is evaluated per batch.
    albedo = model.albedo(tex_t) if tex_t is None or tex_t.dim() == 1 else None
    render_size = size * supersample
    which = resolve_backend(backend, dev)
    for start in range(0, F, batch_size):
        sl = slice(start, min(F, start + batch_size))
        verts = model.vertices(exp[sl], _batch(id_t, sl))
        lo, hi = torch.aminmax(verts)  # (cheap, unlike isfinite().all(); NaN fails the test too)
        if not float(torch.maximum(-lo, hi)) <= MAX_EXTENT:
            coeffs = "exp" if id_t is None else "exp / id"
            raise ValueError(f"render: the {coeffs} coefficients are too large: the face geometry "
                             f"is not finite or reaches beyond {MAX_EXTENT:g} model units")
        prepare = _prepare_cpu if which == "cpu" else _prepare_torch
        batch_albedo = albedo if albedo is not None else model.albedo(tex_t[sl])
        screen, attrs = prepare(verts, tris, tris32, batch_albedo, pose_t[sl], gamma_t[sl],
                                render_size, shading == "vertex")
        image, tri_id = rasterize(screen, tris32, attrs, render_size, render_size, backend=which)
        if shading == "pixel":
            n = torch.nn.functional.normalize(image[..., 3:], dim=-1, eps=1e-12)
            rgb = lighting.shade(image[..., :3].flatten(1, 2), n.flatten(1, 2), gamma_t[sl])
            image = rgb.reshape(image.shape[:3] + (3,))
        if supersample == 1 and bg.dim() == 1:
            # Fast path (the common case): fill the background in place, no temporaries.
            image[tri_id < 0] = bg
            out = image
        elif supersample > 1:
            k = supersample
            pool = lambda t: torch.nn.functional.avg_pool2d(  # noqa: E731
                t.permute(0, 3, 1, 2), k).permute(0, 2, 3, 1)
            covered = (tri_id >= 0).unsqueeze(-1).float()
            image, covered = pool(image * covered), pool(covered)
            out = image + (1.0 - covered) * bg
        else:
            covered = (tri_id >= 0).unsqueeze(-1).float()
            out = image * covered + (1.0 - covered) * bg
        frames[sl] = out.clamp_(0.0, 1.0).mul_(255.0).add_(0.5).to(torch.uint8).cpu().numpy()
    return frames


def _prepare_torch(verts, tris, tris32, albedo, pose, gamma, size, shade):
    """Per-vertex stage in PyTorch: normals, pose, projection, lighting (any device)."""
    normals = vertex_normals(verts, tris)
    verts, rot = camera.transform(verts, pose)
    normals = normals @ rot.transpose(1, 2)
    screen = camera.project(verts, size)
    if shade:
        return screen, lighting.shade(albedo, normals, gamma).contiguous()
    alb = albedo.expand(verts.shape[0], -1, -1) if albedo.dim() == 2 else albedo
    return screen, torch.cat([alb, normals], -1).contiguous()


def _prepare_cpu(verts, tris, tris32, albedo, pose, gamma, size, shade):
    """The same stage fused in C++ (csrc/rasterize_cpu.cpp: render_vertices_cpu)."""
    F, V, _ = verts.shape
    verts = verts.contiguous()
    rot = camera.rotation_matrix(pose[:, :3]).contiguous()
    trans = pose[:, 3:].contiguous()
    albedo = albedo.contiguous()
    gamma = gamma.contiguous()
    screen = torch.empty_like(verts)
    attrs = torch.empty((F, V, 3 if shade else 6), dtype=torch.float32)
    _native.require_cpu().render_vertices_cpu(
        verts.data_ptr(), tris32.data_ptr(), albedo.data_ptr(), albedo.dim() == 2,
        rot.data_ptr(), trans.data_ptr(), gamma.data_ptr(), screen.data_ptr(), attrs.data_ptr(),
        F, V, tris32.shape[0], camera.focal_length(size), size / 2.0, camera.CAMERA_DISTANCE,
        shade, _bridge.num_threads())
    return screen, attrs


def _unpack(motion):
    if isinstance(motion, torch.Tensor):  # (checked first: tensors have an .exp method)
        motion = motion.detach().cpu().numpy()
    elif not isinstance(motion, (np.ndarray, list, tuple)) and hasattr(motion, "exp"):
        return _unpack(motion.exp)[0], getattr(motion, "pose", None)
    exp = np.asarray(motion, np.float32)
    if exp.ndim == 1:
        exp = exp[None]
    if exp.ndim != 2:
        raise ValueError(f"render: expression coefficients must be (frames, dims), "
                         f"got shape {exp.shape}")
    return exp, None


def _int(value, name, what, low):
    """`value` as an int >= low: any integral number (np.int64 included), but not a bool."""
    try:
        n = None if isinstance(value, (bool, np.bool_)) else operator.index(value)
    except TypeError:
        n = None
    if n is None or n < low:
        raise ValueError(f"render: {name} must be {what}, got {value!r}")
    return n


def _tensor(x, name, dev):
    """A float32 tensor on `dev` from a tensor, array or (nested) sequence of numbers."""
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(np.asarray(x, np.float32))
        except (TypeError, ValueError):  # not numbers, or ragged
            raise ValueError(f"render: {name} must be numbers, got {type(x).__name__}") from None
    return x.to(device=dev, dtype=torch.float32)


def _coeffs(x, name, dims, frames, dev):
    """id / tex coefficients: None, (dims,) for every frame or (frames, dims) per frame."""
    if x is None:
        return None
    t = _tensor(x, name, dev)
    if t.shape not in ((dims,), (frames, dims)):
        raise ValueError(f"render: {name} must be ({dims},) or ({frames}, {dims}) coefficients, "
                         f"got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"render: {name} contains NaN or infinite values")
    return t


def _batch(coeffs, sl):
    """The batch's rows of per-frame (F, K) coefficients; shared (K,) ones (or None) as is."""
    return coeffs[sl] if coeffs is not None and coeffs.dim() == 2 else coeffs


def _pose(pose, frames, dev):
    if pose is None:
        return torch.zeros((frames, 6), device=dev)
    p = _tensor(pose, "pose", dev)
    if p.dim() == 1:
        p = p[None].expand(frames, -1)
    if p.shape != (frames, 6):
        raise ValueError(f"render: pose must be (6,) or ({frames}, 6), got {tuple(p.shape)}")
    return p


def _check_pose(pose_t):
    """One-line errors for a (F, 6) pose with non-finite or out-of-bounds angles / translations
    (MAX_POSE_ANGLE, MAX_POSE_TRANSLATION)."""
    if not torch.isfinite(pose_t).all():
        raise ValueError("render: the pose contains NaN or infinite values")
    if pose_t.numel() == 0:
        return
    angle = float(pose_t[:, :3].abs().max())
    if angle > float(np.float32(MAX_POSE_ANGLE)):   # (2 pi itself passes once in float32)
        raise ValueError(f"render: the pose angles reach {angle:.4g} radians, beyond +-2 pi (a "
                         f"full turn); degrees given as radians?")
    shift = float(pose_t[:, 3:].abs().max())
    if shift > MAX_POSE_TRANSLATION:
        raise ValueError(f"render: the pose translations reach {shift:.4g} model units, beyond "
                         f"+-{MAX_POSE_TRANSLATION:g} (a face spans about 2, the camera is 10 "
                         f"away: it would be out of sight)")


def _background(background, size, dev):
    """An RGB colour (3 numbers in [0, 1]) -> (3,), or an image (size, size, 3) -> the same in
    [0, 1]: an integer (uint8) image is 0..255, a float image is taken as already in [0, 1]."""
    if isinstance(background, torch.Tensor):
        background = background.detach().cpu().numpy()
    try:
        img = np.asarray(background)
    except ValueError:  # ragged nesting
        img = np.asarray(None)
    if img.shape not in ((3,), (size, size, 3)) or img.dtype.kind not in "iuf":
        got = f"dtype {img.dtype}" if img.shape in ((3,), (size, size, 3)) else f"shape {img.shape}"
        raise ValueError(f"render: background must be an RGB colour (3 numbers in [0, 1]) or a "
                         f"({size}, {size}, 3) image, got {got}")
    if img.ndim == 3 and img.dtype.kind in "iu":
        if img.min() < 0 or img.max() > 255:
            raise ValueError("render: an integer background image must be in 0..255")
        return torch.as_tensor(img.astype(np.float32) / 255.0, device=dev)
    img = img.astype(np.float32)
    if not np.isfinite(img).all():
        raise ValueError("render: background contains NaN or infinite values")
    if img.min() < 0.0 or img.max() > 1.0:
        what = ("background colour must be in [0, 1]" if img.ndim == 1 else
                "a float background image must be in [0, 1] (a uint8 image is 0..255)")
        raise ValueError(f"render: {what}, got values in [{img.min():g}, {img.max():g}]")
    return torch.as_tensor(img, device=dev)
