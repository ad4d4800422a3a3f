"""`render(motion, face_model) -> uint8 frames (F, H, W, 3)`: expression (+ pose) to images.

Per batch of frames: vertices from the morphable model, area-weighted vertex normals, pose,
spherical-harmonics shading, projection, then the z-buffer rasteriser (C++ / CUDA kernel, or the
PyTorch reference) and compositing over the background.

Shading: `shading="vertex"` (default, as Deep3DFaceRecon) lights each vertex and interpolates the
colour; `shading="pixel"` interpolates albedo and normal and lights every pixel (smoother
highlights on coarse meshes, a little slower).
"""

from __future__ import annotations

import numpy as np

from disenttalk_fast import _bridge, _native
from disenttalk_fast._torch import torch
from disenttalk_fast.render import camera, lighting
from disenttalk_fast.render.rasterize import rasterize, resolve_backend

DEFAULT_BACKGROUND = (0.33, 0.36, 0.42)


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
    coefficients. gamma: 27 SH lighting coefficients (Deep3DFaceRecon layout) or (F, 27).
    background: RGB in [0, 1] or a uint8 image (size, size, 3). supersample: render at k times
    the size and average (anti-aliasing). Returns uint8 (F, size, size, 3).
    """
    from disenttalk_fast.facemodel.morphable import MorphableModel

    model = face_model if face_model is not None else MorphableModel.builtin()
    exp, motion_pose = _unpack(motion)
    if exp.shape[-1] != model.exp_dims:
        raise ValueError(f"render: motion has {exp.shape[-1]} expression dims but the face model "
                         f"'{model.name}' has {model.exp_dims}")
    if shading not in ("vertex", "pixel"):
        raise ValueError(f"render: shading must be 'vertex' or 'pixel', got {shading!r}")
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"render: size must be an int >= 8, got {size!r}")
    if not isinstance(supersample, int) or supersample < 1:
        raise ValueError(f"render: supersample must be a positive int, got {supersample!r}")
    dev = torch.device(device) if device is not None else model.device
    if model.device != dev:
        model = model.to(dev)
    F = exp.shape[0]
    if not np.isfinite(exp).all():
        raise ValueError("render: the expression coefficients contain NaN or infinite values")
    exp = torch.as_tensor(exp, dtype=torch.float32, device=dev)
    pose_t = _pose(pose if pose is not None else motion_pose, F, dev)
    if not torch.isfinite(pose_t).all():
        raise ValueError("render: the pose contains NaN or infinite values")
    gamma_t = lighting.as_gamma(gamma, F, dev)
    bg = _background(background, size, dev)
    frames = np.empty((F, size, size, 3), np.uint8)
    tris = model.triangles
    tris32 = tris.to(torch.int32)
    albedo = model.albedo(tex)
    render_size = size * supersample
    which = resolve_backend(backend, dev)
    for start in range(0, F, batch_size):
        sl = slice(start, min(F, start + batch_size))
        verts = model.vertices(exp[sl], id)
        prepare = _prepare_cpu if which == "cpu" else _prepare_torch
        screen, attrs = prepare(verts, tris, tris32, albedo, pose_t[sl], gamma_t[sl],
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


def _pose(pose, frames, dev):
    if pose is None:
        return torch.zeros((frames, 6), device=dev)
    p = torch.as_tensor(np.asarray(pose, np.float32) if not isinstance(pose, torch.Tensor)
                        else pose, dtype=torch.float32, device=dev)
    if p.dim() == 1:
        p = p[None].expand(frames, -1)
    if p.shape != (frames, 6):
        raise ValueError(f"render: pose must be (6,) or ({frames}, 6), got {tuple(p.shape)}")
    return p


def _background(background, size, dev):
    if isinstance(background, (tuple, list)) and len(background) == 3:
        return torch.tensor(background, dtype=torch.float32, device=dev)
    img = np.asarray(background)
    if img.shape != (size, size, 3):
        raise ValueError(f"render: background must be an RGB triple in [0, 1] or a "
                         f"({size}, {size}, 3) uint8 image, got shape {img.shape}")
    return torch.as_tensor(img.astype(np.float32) / 255.0, device=dev)
