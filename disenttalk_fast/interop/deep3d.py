"""Deep3DFaceRecon coefficients: the 257-d vector per frame and the files that carry it.

Layout (Deep3DFaceRecon_pytorch `split_coeff`): id 0:80, exp 80:144, tex 144:224, angle 224:227,
gamma 227:254, trans 254:257. Files read and written:
- `.mat` with `coeff` (L, 257) and optionally `transform_params` (L, 5) = [w0, h0, s, tx, ty]
  (a sequence of its per-image outputs stacked); SadTalker's `full_3dmm` (L, 257) is read too;
- the per-key `.mat` Deep3DFaceRecon writes per image: id, exp, tex, angle, gamma, trans
  (each (L, k)), read and written;
- a `.npy` holding the (L, 257) array.
Only exp / angle / trans are motion; when writing, identity, texture and lighting come from a
`template` (a `Deep3DCoeffs`, e.g. the subject's own reconstruction), else zeros (the mean face,
ambient-only lighting).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from disenttalk_fast.interop.io import atomic_write, load_mat, save_mat

COEFF_DIMS = 257
SLICES = {"id": slice(0, 80), "exp": slice(80, 144), "tex": slice(144, 224),
          "angle": slice(224, 227), "gamma": slice(227, 254), "trans": slice(254, 257)}
KEYS = tuple(SLICES)
EXP_DIMS = 64


@dataclass
class Deep3DCoeffs:
    coeff: np.ndarray                          # (L, 257) float32
    transform_params: np.ndarray | None = None  # (L, 5) float32 or None

    def __post_init__(self):
        self.coeff = np.ascontiguousarray(self.coeff, np.float32)
        if self.coeff.ndim != 2 or self.coeff.shape[1] != COEFF_DIMS:
            raise ValueError(f"Deep3DFaceRecon coefficients must be (frames, {COEFF_DIMS}), "
                             f"got {self.coeff.shape}")
        if self.transform_params is not None:
            tp = np.asarray(self.transform_params, np.float32)
            if tp.ndim == 1:
                tp = np.broadcast_to(tp, (self.coeff.shape[0], tp.shape[0]))
            if tp.shape[0] == 1 and self.coeff.shape[0] > 1:
                tp = np.broadcast_to(tp, (self.coeff.shape[0], tp.shape[1]))
            if tp.shape != (self.coeff.shape[0], 5):
                raise ValueError(f"transform_params must be ({self.coeff.shape[0]}, 5), "
                                 f"got {tp.shape}")
            self.transform_params = np.ascontiguousarray(tp)

    def part(self, key: str) -> np.ndarray:
        return self.coeff[:, SLICES[key]]

    def to_motion(self, fps: float = 25.0):
        from disenttalk_fast.motion import Motion

        pose = np.concatenate([self.part("angle"), self.part("trans")], axis=1)
        return Motion(self.part("exp").copy(), pose, fps,
                      meta={"source_format": "deep3d"})

    @classmethod
    def from_motion(cls, motion, template: "Deep3DCoeffs | None" = None) -> "Deep3DCoeffs":
        if motion.num_dims != EXP_DIMS:
            raise ValueError(f"Deep3DFaceRecon formats hold {EXP_DIMS} expression dims, the motion "
                             f"has {motion.num_dims}")
        n = motion.num_frames
        coeff = np.zeros((n, COEFF_DIMS), np.float32)
        tp = None
        if template is not None:
            coeff[:] = _per_frame(template.coeff, n)
            if template.transform_params is not None:
                tp = _per_frame(template.transform_params, n)
        coeff[:, SLICES["exp"]] = motion.exp
        pose = motion.pose_or_zeros()
        coeff[:, SLICES["angle"]] = pose[:, :3]
        coeff[:, SLICES["trans"]] = pose[:, 3:]
        return cls(coeff, tp)


def _per_frame(a: np.ndarray, n: int) -> np.ndarray:
    """A template's rows for n frames: itself if the length matches, else its first row."""
    return a if a.shape[0] == n else np.broadcast_to(a[:1], (n, a.shape[1]))


def _check_2d(path, key, a, width):
    a = np.asarray(a)
    if a.ndim == 1 and a.size == width:
        a = a[None]
    if a.ndim != 2 or a.shape[1] != width or a.dtype.kind not in "fiu":   # real numbers only
        raise ValueError(f"{path}: '{key}' must be (frames, {width}) numbers, got "
                         f"{a.dtype} {a.shape}")
    return a.astype(np.float32)


def coeffs_from_mat_dict(path, d: dict) -> Deep3DCoeffs:
    """From a loaded .mat: `coeff` / `full_3dmm` (L, 257) or the per-key layout."""
    for key in ("coeff", "full_3dmm", "coeff_3dmm"):
        if key in d and np.asarray(d[key]).shape[-1] == COEFF_DIMS:
            coeff = _check_2d(path, key, d[key], COEFF_DIMS)
            return Deep3DCoeffs(coeff, _transform_params(path, d, coeff.shape[0]))
    if all(k in d for k in KEYS):
        parts = [_check_2d(path, k, d[k], SLICES[k].stop - SLICES[k].start) for k in KEYS]
        lengths = {p.shape[0] for p in parts}
        if len(lengths) != 1:
            raise ValueError(f"{path}: per-key arrays have different frame counts "
                             + ", ".join(f"{k}={p.shape[0]}" for k, p in zip(KEYS, parts)))
        return Deep3DCoeffs(np.concatenate(parts, axis=1),
                            _transform_params(path, d, parts[0].shape[0]))
    missing = [k for k in KEYS if k not in d]
    raise ValueError(f"{path}: not a Deep3DFaceRecon .mat: needs 'coeff' (frames, 257) or the keys "
                     f"{', '.join(KEYS)} (missing {', '.join(missing)}; has "
                     f"{', '.join(sorted(d)) or 'nothing'})")


def _transform_params(path, d: dict, frames: int) -> np.ndarray | None:
    """The optional 'transform_params' as (1 or frames, 5) numbers; a one-line error otherwise."""
    tp = d.get("transform_params")
    if tp is None:
        return None
    try:
        tp = np.asarray(tp, np.float32)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: 'transform_params' must be numbers") from None
    if tp.size % 5 or tp.reshape(-1, 5).shape[0] not in (1, frames) \
            or not np.isfinite(tp).all():
        raise ValueError(f"{path}: 'transform_params' must be finite (frames, 5) or (5,) "
                         f"numbers, got {tp.shape}")
    return tp.reshape(-1, 5)


def read_deep3d(path) -> Deep3DCoeffs:
    path = Path(path)
    if path.suffix.lower() == ".npy":
        from disenttalk_fast.interop.io import load_npy

        return Deep3DCoeffs(_check_2d(path, "array", load_npy(path), COEFF_DIMS))
    return coeffs_from_mat_dict(path, load_mat(path))


def write_deep3d_mat(coeffs: Deep3DCoeffs, path, per_key: bool = False) -> None:
    if per_key:
        d = {k: coeffs.part(k) for k in KEYS}
    else:
        d = {"coeff": coeffs.coeff}
    if coeffs.transform_params is not None:
        d["transform_params"] = coeffs.transform_params
    save_mat(path, d)


def write_deep3d_npy(coeffs: Deep3DCoeffs, path) -> None:
    atomic_write(path, lambda f: np.save(f, coeffs.coeff, allow_pickle=False))
