"""On-disk feature cache keyed by the audio content and the extractor's configuration.

The key is sha256(digest of the 16 kHz samples, extractor config as canonical JSON, row count):
the same audio in another file or format hits, a different layer / model / version misses.
Entries are .npy files written to a temporary name and renamed into place (atomic on POSIX), so
a crash or a concurrent writer never leaves a truncated entry; an unreadable or wrongly shaped
entry counts as a miss and is rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from disenttalk_fast._atomic import atomic_output


def audio_digest(samples: np.ndarray) -> str:
    """sha256 of 16 kHz float32 samples (content, not file bytes)."""
    return hashlib.sha256(np.ascontiguousarray(samples, np.float32).tobytes()).hexdigest()


def cache_key(digest: str, config: dict, num_rows: int) -> str:
    payload = json.dumps({"audio": digest, "extractor": config, "rows": int(num_rows)},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)


class FeatureCache:
    """A folder of cached feature arrays; counts hits and misses (for tests and reports)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise NotADirectoryError(f"{self.folder}: the feature cache folder is a file")
        self.hits = 0
        self.misses = 0

    def path(self, key: str, name: str = "features") -> Path:
        return self.folder / name / f"{key}.npy"

    def get(self, key: str, name: str, num_rows: int, dim: int) -> np.ndarray | None:
        p = self.path(key, name)
        try:
            arr = np.load(p, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            arr = None
        if arr is None or arr.shape != (num_rows, dim) or arr.dtype != np.float32:
            self.misses += 1
            return None
        self.hits += 1
        return arr

    def put(self, key: str, name: str, array: np.ndarray) -> None:
        atomic_save_npy(self.path(key, name), np.ascontiguousarray(array, np.float32))
