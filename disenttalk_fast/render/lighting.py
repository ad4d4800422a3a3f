"""Spherical-harmonics lighting like Deep3DFaceRecon: 9 SH coefficients per colour channel (27 in
all, `gamma`), added to an ambient baseline of 0.8 on the constant band, times the albedo.

`gamma` uses Deep3DFaceRecon's layout (3 channels x 9 bands, channel-major) and meaning, so
coefficients estimated by it can be passed straight in. gamma = 0 is its flat ambient light;
DEFAULT_GAMMA adds a soft key light from above the camera so the face has shape.
"""

from __future__ import annotations

import math

from disenttalk_fast._torch import torch

AMBIENT = 0.8   # Deep3DFaceRecon's init_lit on band 0
_A = (math.pi, 2 * math.pi / math.sqrt(3.0), 2 * math.pi / math.sqrt(8.0))
_C = (1 / math.sqrt(4 * math.pi), math.sqrt(3.0) / math.sqrt(4 * math.pi),
      3 * math.sqrt(5.0) / math.sqrt(12 * math.pi))

# Per channel: a little less ambient, light from the front (+z) and slightly above (+y; band 1 is
# -y), a touch of the quadratic band so the sides fall off.
_DEFAULT_BANDS = (-0.08, -0.14, 0.30, 0.0, 0.0, 0.0, -0.06, 0.0, 0.0)
DEFAULT_GAMMA = tuple(_DEFAULT_BANDS) * 3


def sh_basis(normals: torch.Tensor) -> torch.Tensor:
    """(..., 3) unit normals -> (..., 9) SH basis values (Deep3DFaceRecon's ordering and signs)."""
    nx, ny, nz = normals.unbind(-1)
    a, c = _A, _C
    return torch.stack([
        torch.full_like(nx, a[0] * c[0]),
        -a[1] * c[1] * ny,
        a[1] * c[1] * nz,
        -a[1] * c[1] * nx,
        a[2] * c[2] * nx * ny,
        -a[2] * c[2] * ny * nz,
        0.5 * a[2] * c[2] / math.sqrt(3.0) * (3 * nz ** 2 - 1),
        -a[2] * c[2] * nx * nz,
        0.5 * a[2] * c[2] * (nx ** 2 - ny ** 2),
    ], -1)


def as_gamma(gamma, frames: int, device) -> torch.Tensor:
    """None | (27,) | (F, 27) -> (F, 3, 9) with the ambient baseline added."""
    try:
        g = torch.as_tensor(DEFAULT_GAMMA if gamma is None else gamma, dtype=torch.float32,
                            device=device)
    except (TypeError, ValueError):  # not numbers, or ragged
        g = None
    if g is None or g.shape not in ((27,), (frames, 27)):
        got = f"shape {tuple(g.shape)}" if g is not None else type(gamma).__name__
        raise ValueError(f"render: gamma must be (27,) or ({frames}, 27) SH coefficients, "
                         f"got {got}")
    if not torch.isfinite(g).all():  # (NaN / inf light gives garbage colours, no error)
        raise ValueError("render: gamma contains NaN or infinite values")
    g = g.reshape(-1, 3, 9).expand(frames, 3, 9).clone()
    g[:, :, 0] += AMBIENT
    return g


def shade(albedo: torch.Tensor, normals: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """albedo (F, N, 3) or (N, 3), unit normals (F, N, 3), gamma (F, 3, 9) -> colour (F, N, 3)."""
    light = sh_basis(normals) @ gamma.transpose(1, 2)   # (F, N, 3)
    return light * albedo
