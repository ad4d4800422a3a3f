"""`Motion`: a generated (or loaded) sequence of 3DMM expression + pose at 25 fps.

`exp` (L, N) float32 is in the ORIGINAL, unnormalised coefficient space (what Deep3DFaceRecon
and the renderers consume; generation de-normalises with the checkpoint's statistics). `pose`
is (L, 6) float32 — 3 rotation angles (radians, Deep3DFaceRecon's `angle`) then 3 translations
(`trans`) — or None when no pose was produced or read.

Our own file format is an uncompressed .npz with arrays `exp`, optionally `pose`, `fps` (0-d
float), `format_version` (0-d int) and optionally `partition` (0-d unicode string holding the
partition JSON). It loads with `allow_pickle=False`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from disenttalk_fast.partition import Partition

FORMAT_VERSION = 1
POSE_DIMS = 6


@dataclass
class Motion:
    exp: np.ndarray
    pose: np.ndarray | None = None
    fps: float = 25.0
    partition: Partition | None = None
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        self.exp = np.ascontiguousarray(_as_numpy(self.exp), np.float32)
        if self.exp.ndim != 2:
            raise ValueError(f"Motion.exp must be (frames, dims), got shape {self.exp.shape}")
        if self.pose is not None:
            self.pose = np.ascontiguousarray(_as_numpy(self.pose), np.float32)
            if self.pose.shape != (self.exp.shape[0], POSE_DIMS):
                raise ValueError(f"Motion.pose must be ({self.exp.shape[0]}, {POSE_DIMS}) to match "
                                 f"exp, got {self.pose.shape}")
        try:
            fps = float(self.fps)
        except (TypeError, ValueError):
            raise ValueError(f"Motion.fps must be a number, got {self.fps!r}") from None
        if not (math.isfinite(fps) and fps > 0):  # inf / NaN fps make every duration meaningless
            raise ValueError(f"Motion.fps must be finite and > 0, got {self.fps}")
        self.fps = fps
        if self.partition is not None and self.partition.num_dims != self.exp.shape[1]:
            raise ValueError(f"Motion partition covers {self.partition.num_dims} dims but exp has "
                             f"{self.exp.shape[1]}")

    # -- shape -------------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return self.exp.shape[0]

    def __len__(self) -> int:
        return self.num_frames

    @property
    def num_dims(self) -> int:
        return self.exp.shape[1]

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    def pose_or_zeros(self) -> np.ndarray:
        return self.pose if self.pose is not None else np.zeros((self.num_frames, POSE_DIMS),
                                                                np.float32)

    def slice(self, start: int, stop: int) -> "Motion":
        return Motion(self.exp[start:stop], None if self.pose is None else self.pose[start:stop],
                      self.fps, self.partition, dict(self.meta))

    # -- our .npz format ---------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the .npz format described in the module docstring, atomically."""
        arrays = {"exp": self.exp, "fps": np.array(self.fps, np.float64),
                  "format_version": np.array(FORMAT_VERSION, np.int64)}
        if self.pose is not None:
            arrays["pose"] = self.pose
        if self.partition is not None:
            arrays["partition"] = np.array(self.partition.to_json())
        if self.meta:
            arrays["meta"] = np.array(json.dumps(self.meta, default=str))
        from disenttalk_fast.interop.io import atomic_write

        atomic_write(path, lambda f: np.savez(f, **arrays))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Motion":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such motion file")
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except Exception as exc:
            raise ValueError(f"{path}: not a readable .npz motion file ({exc})") from None
        if "exp" not in data:
            raise ValueError(f"{path}: missing array 'exp' (has: {', '.join(data) or 'nothing'})")
        try:
            version = _scalar(data, "format_version", FORMAT_VERSION, int)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        if version > FORMAT_VERSION:
            raise ValueError(f"{path}: motion format version {version} is newer than this "
                             f"library reads ({FORMAT_VERSION})")
        try:
            partition = None
            if "partition" in data:
                partition = Partition.from_dict(json.loads(str(data["partition"])), str(path))
            meta = json.loads(str(data["meta"])) if "meta" in data else {}
            exp = data["exp"]
            if exp.ndim != 2 or not np.issubdtype(exp.dtype, np.floating):
                raise ValueError(f"'exp' must be a 2-d float array, got {exp.dtype} {exp.shape}")
            return cls(exp, data.get("pose"), _scalar(data, "fps", 25.0, float), partition, meta)
        except ValueError as exc:
            msg = str(exc)
            raise ValueError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None


def _as_numpy(x):
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _scalar(data: dict, key: str, default, kind):
    """A one-number field of an .npz motion as `kind`; a one-line ValueError naming the key."""
    if key not in data:
        return default
    value = data[key]
    try:
        if value.ndim != 0:
            raise TypeError
        return kind(value.item())
    except (TypeError, ValueError):
        raise ValueError(f"'{key}' must be one number, got {value.dtype} {value.shape}") from None
