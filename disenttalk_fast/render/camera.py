"""Camera like Deep3DFaceRecon's: rotation from three Euler angles, then a pinhole camera at
z = 10 looking down -z with focal length 1015 px at a 224 px image (scaled to the output size).

Image convention: x to the right, y DOWN (row index); +Y of the model appears up in the image.
The depth handed to the rasteriser is the distance along the camera axis, 10 - Z.
"""

from __future__ import annotations

from disenttalk_fast._torch import torch

CAMERA_DISTANCE = 10.0
FOCAL_AT_224 = 1015.0


def focal_length(size: int) -> float:
    return FOCAL_AT_224 * size / 224.0


def rotation_matrix(angles: torch.Tensor) -> torch.Tensor:
    """(F, 3) angles (x, y, z radians) -> (F, 3, 3) R = Rz @ Ry @ Rx (column vectors: p' = R p),
    the rotation Deep3DFaceRecon's compute_rotation builds."""
    x, y, z = angles.unbind(-1)
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    cx, sx, cy, sy, cz, sz = x.cos(), x.sin(), y.cos(), y.sin(), z.cos(), z.sin()
    rx = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], -1).reshape(-1, 3, 3)
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(-1, 3, 3)
    rz = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], -1).reshape(-1, 3, 3)
    return rz @ ry @ rx


def transform(points: torch.Tensor, pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rigidly move (F, V, 3) points by pose (F, 6) = (angles, translation). Returns the moved
    points and the rotation (F, 3, 3) (normals are rotated by the same matrix)."""
    rot = rotation_matrix(pose[:, :3])
    return points @ rot.transpose(1, 2) + pose[:, None, 3:], rot


def project(points: torch.Tensor, size: int) -> torch.Tensor:
    """(F, V, 3) world points -> (F, V, 3) screen x, y in pixels and view depth."""
    f = focal_length(size)
    depth = CAMERA_DISTANCE - points[..., 2]
    safe = torch.where(depth.abs() > 1e-8, depth, torch.full_like(depth, 1e-8))
    x = f * points[..., 0] / safe + size / 2.0
    y = size / 2.0 - f * points[..., 1] / safe
    return torch.stack([x, y, depth], -1)
