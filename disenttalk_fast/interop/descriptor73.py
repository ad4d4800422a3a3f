"""The 73-d per-frame renderer descriptor of PIRenderer / SadTalker / DreamTalk.

Columns: exp 0:64 (Deep3DFaceRecon expression), angle 64:67, trans 67:70, crop 70:73 — the crop is
Deep3DFaceRecon's `transform_params[2:5]` = (scale, tx, ty) of the aligned image. Read and written
as (L, 73): `.npy`, whitespace-separated `.txt` (one frame per line), or `.mat` under the key
`coeff_3dmm` (SadTalker's name). Writing needs a crop: the template's when given (a Deep3DCoeffs
with transform_params, or a descriptor), else DEFAULT_CROP = (1, 112, 112), the identity crop of
Deep3DFaceRecon's 224 px aligned image.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from disenttalk_fast.interop.io import atomic_write, load_mat, load_npy, save_mat

DIMS = 73
EXP, ANGLE, TRANS, CROP = slice(0, 64), slice(64, 67), slice(67, 70), slice(70, 73)
DEFAULT_CROP = (1.0, 112.0, 112.0)
MAT_KEY = "coeff_3dmm"


def to_descriptor(motion, crop=None) -> np.ndarray:
    if motion.num_dims != 64:
        raise ValueError(f"the 73-d descriptor holds 64 expression dims, the motion has "
                         f"{motion.num_dims}")
    n = motion.num_frames
    d = np.zeros((n, DIMS), np.float32)
    d[:, EXP] = motion.exp
    pose = motion.pose_or_zeros()
    d[:, ANGLE] = pose[:, :3]
    d[:, TRANS] = pose[:, 3:]
    crop = np.asarray(DEFAULT_CROP if crop is None else crop, np.float32).reshape(-1, 3)
    d[:, CROP] = crop if crop.shape[0] == n else crop[:1]
    return d


def from_descriptor(d: np.ndarray, fps: float = 25.0):
    from disenttalk_fast.motion import Motion

    pose = np.concatenate([d[:, ANGLE], d[:, TRANS]], axis=1)
    meta = {"source_format": "descriptor73"}
    if len(d):  # a 0-frame descriptor has no crop to average
        meta["crop"] = d[:, CROP].mean(0).tolist()
    return Motion(d[:, EXP].copy(), pose, fps, meta=meta)


def check(path, a) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 1 and a.size == DIMS:
        a = a[None]
    if a.ndim != 2 or a.shape[1] != DIMS or a.dtype.kind not in "fiu":   # real numbers only
        raise ValueError(f"{path}: a 73-d descriptor must be (frames, {DIMS}) numbers, got "
                         f"{a.dtype} {a.shape}")
    return a.astype(np.float32)


def read_descriptor(path) -> np.ndarray:
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".npy":
        return check(path, load_npy(path))
    if ext == ".mat":
        d = load_mat(path)
        if MAT_KEY not in d:
            raise ValueError(f"{path}: no '{MAT_KEY}' key (has {', '.join(sorted(d)) or 'nothing'})")
        return check(path, d[MAT_KEY])
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():  # an empty table is 0 frames, as savetxt writes them
            warnings.filterwarnings("ignore", "loadtxt: input contained no data")
            a = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise ValueError(f"{path}: not a numeric text table ({str(exc).splitlines()[0]})") from None
    return check(path, a.reshape(0, DIMS) if a.size == 0 else a)


def write_descriptor(d: np.ndarray, path) -> None:
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".mat":
        save_mat(path, {MAT_KEY: d})
    elif ext == ".npy":
        atomic_write(path, lambda f: np.save(f, d, allow_pickle=False))
    else:
        atomic_write(path, lambda f: np.savetxt(f, d, fmt="%.7g"))
