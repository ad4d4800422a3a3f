"""Loader for Deep3DFaceRecon's `BFM_model_front.mat` (users bring this licensed file).

Keys and layout (V = 35,709 vertices in the real file, but any V is accepted):
    meanshape (1, 3V)   idBase (3V, K_id)   exBase (3V, K_exp)   meantex (1, 3V) in 0..255
    texBase (3V, K_tex) in 0..255 units      tri (T, 3) 1-based
    point_buf (V, k) 1-based (optional)      keypoints (68,) 1-based (optional)

As Deep3DFaceRecon does, the mean shape is re-centred on its centroid and colours are divided by
255. A missing key or a wrong shape is a one-line ValueError naming the file and the key.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from disenttalk_fast._torch import torch

REQUIRED_KEYS = ("meanshape", "idBase", "exBase", "meantex", "texBase", "tri")

# 68-point landmark scheme: inner lip centres 62 / 66; eyes 36-41 (subject's right, image left)
# and 42-47 (subject's left).
_KEYPOINT_LANDMARKS = {
    "lip_upper_inner": (62,), "lip_lower_inner": (66,),
    "eye_left_upper": (43, 44), "eye_left_lower": (47, 46),
    "eye_right_upper": (37, 38), "eye_right_lower": (41, 40),
}


def load_bfm(path):
    from scipy.io import loadmat

    from disenttalk_fast.facemodel.morphable import MorphableModel

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such face model file")
    try:
        mat = loadmat(str(path))
    except Exception as exc:  # scipy raises several types for non-.mat input
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{path}: not a readable MATLAB .mat face model ({reason})") from None
    for key in REQUIRED_KEYS:
        if key not in mat:
            raise ValueError(f"{path}: missing key '{key}' (a BFM_model_front.mat has "
                             f"{', '.join(REQUIRED_KEYS)})")

    def bad(key, want):
        return ValueError(f"{path}: '{key}' has shape {tuple(np.shape(mat[key]))}, expected {want}")

    mean = np.asarray(mat["meanshape"], np.float64)
    if mean.ndim != 2 or 1 not in mean.shape or mean.size % 3 or mean.size == 0:
        raise bad("meanshape", "(1, 3V)")
    n3 = mean.size
    V = n3 // 3

    def basis(key):
        b = np.asarray(mat[key], np.float64)
        if b.ndim != 2 or b.shape[0] != n3 or b.shape[1] < 1:
            raise bad(key, f"({n3}, K)")
        return b

    id_basis, exp_basis, tex_basis = basis("idBase"), basis("exBase"), basis("texBase")
    meantex = np.asarray(mat["meantex"], np.float64)
    if meantex.size != n3 or meantex.ndim != 2 or 1 not in meantex.shape:
        raise bad("meantex", f"(1, {n3})")
    tri = _indices(mat, "tri", path, V, lambda a: a.ndim == 2 and a.shape[1] == 3, "(T, 3)")
    keypoints = None
    if "keypoints" in mat:
        keypoints = _indices(mat, "keypoints", path, V, lambda a: a.size == 68, "(1, 68)").ravel()
    for key, arr in (("meanshape", mean), ("idBase", id_basis), ("exBase", exp_basis),
                     ("meantex", meantex), ("texBase", tex_basis)):
        if not np.isfinite(arr).all():
            raise ValueError(f"{path}: '{key}' contains NaN or infinite values")

    shape = mean.reshape(V, 3)
    shape = shape - shape.mean(axis=0, keepdims=True)
    f32 = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
    landmarks, mouth, eyes = {}, None, None
    if keypoints is not None:
        landmarks = {k: tuple(int(keypoints[i]) for i in v) for k, v in _KEYPOINT_LANDMARKS.items()}
        mouth = _region_around(shape, shape[keypoints[48:68]])
        eyes = np.union1d(_region_around(shape, shape[keypoints[36:42]]),
                          _region_around(shape, shape[keypoints[42:48]]))
    as_idx = lambda a: None if a is None else torch.as_tensor(a, dtype=torch.int64)  # noqa: E731
    return MorphableModel(
        mean_shape=f32(shape), id_basis=f32(id_basis), exp_basis=f32(exp_basis),
        triangles=torch.as_tensor(tri, dtype=torch.int64),
        mean_albedo=f32(meantex.reshape(V, 3) / 255.0), albedo_basis=f32(tex_basis / 255.0),
        landmarks=landmarks, mouth_vertex_indices=as_idx(mouth), eye_vertex_indices=as_idx(eyes),
        keypoints=as_idx(keypoints), name=path.name)


def _indices(mat, key, path, V, shape_ok, want):
    """A 1-based integer array with values in [1, V] -> 0-based int64."""
    a = np.asarray(mat[key])
    if not shape_ok(a):
        raise ValueError(f"{path}: '{key}' has shape {a.shape}, expected {want}")
    if a.size and (not np.all(np.isfinite(a)) or np.any(a != np.round(a))):
        raise ValueError(f"{path}: '{key}' must hold integer vertex indices")
    a = a.astype(np.int64)
    if a.size and (a.min() < 1 or a.max() > V):
        raise ValueError(f"{path}: '{key}' has indices outside 1..{V} (it is 1-based)")
    return a - 1


def _region_around(shape, points, margin=1.25):
    """Vertices inside the ellipse (in x, y) around `points`, grown by `margin`, in front of
    their mean depth minus a little (so the back of the head is never included)."""
    centre = points.mean(axis=0)
    half = np.maximum((points[:, :2] - centre[:2]).__abs__().max(axis=0) * margin, 1e-6)
    d = (((shape[:, :2] - centre[:2]) / half) ** 2).sum(axis=1)
    front = shape[:, 2] > centre[2] - 2 * half.max()
    return np.flatnonzero((d < 1.0) & front)
