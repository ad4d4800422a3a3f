"""`ClipDataset`: the clips of a prepared dataset folder as training items.

    ds = ClipDataset("data/my_set", feature="mel")
    item = ds[0]   # {"exp": (L, N) float32 tensor, normalised; "audio": (2L, D_a) float32 tensor;
                   #  "pose": (L, 6) float32 tensor or None; "id": str}
    ds.exp_mean, ds.exp_std   # (N,) float32 numpy, over the train split; x = (exp - mean) / std

Statistics come from dataset.json (computed over the train split by `disenttalk prepare`); dims
whose std is below 1e-6 (constant in the data) use std 1 so they stay finite. Audio features are
read from the dataset's feature cache and computed (then cached) on first use.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from disenttalk_fast.audio import frames as fr
from disenttalk_fast.audio.cache import FeatureCache, audio_digest, cache_key
from disenttalk_fast.audio.features import get_extractor
from disenttalk_fast.audio.load import load_audio
from disenttalk_fast.data import manifest as mf
from disenttalk_fast.motion import Motion

STD_FLOOR = 1e-6


def safe_std(std: np.ndarray, source: str = "exp_std") -> np.ndarray:
    std = np.asarray(std, np.float32)
    # A negative or NaN std is corrupt stats, not a constant dim: replacing it would hide that.
    if not (np.isfinite(std) & (std >= 0)).all():
        raise ValueError(f"{source}: exp_std holds negative or non-finite values")
    # A dim constant in the data has std ~0; 1 keeps its normalised value finite (and 0).
    return np.where(std < STD_FLOOR, np.float32(1), std)


def _stat(meta: dict, key: str, n: int, source) -> np.ndarray:
    """meta[key] as (n,) float32, or a one-line error naming the file."""
    value = meta.get(key)
    if (not isinstance(value, list) or len(value) != n
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise ValueError(f"{source}: {key} must be a list of {n} numbers")
    out = np.asarray(value, np.float32)
    if not np.isfinite(out).all():
        raise ValueError(f"{source}: {key} holds non-finite values")
    return out


class ClipDataset:
    """Items of one split ("train", "val" or "all") of a prepared clip dataset folder."""

    def __init__(self, folder: str | os.PathLike, feature="mel", normalise: bool = True,
                 split: str = "train", **extractor_options):
        self.folder = Path(folder)
        if split not in mf.SPLITS:
            raise ValueError(f"split must be one of {', '.join(mf.SPLITS)}, not '{split}'")
        self.meta, rows = mf.read_dataset(self.folder)
        self.rows = [r for r in rows if split == "all" or r.get("split", "train") == split]
        self.split = split
        self.normalise = normalise
        source = self.folder / mf.DATASET_FILE
        fps = self.meta.get("fps", fr.FPS)
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps < math.inf:
            raise ValueError(f"{source}: fps must be a finite number > 0, got {fps!r}")
        self.fps = float(fps)
        exp_dim = self.meta.get("exp_dim")
        if isinstance(exp_dim, bool) or not isinstance(exp_dim, int) or exp_dim < 1:
            raise ValueError(f"{source}: exp_dim must be an integer >= 1, got {exp_dim!r}")
        self.exp_dim = exp_dim
        self.exp_mean = _stat(self.meta, "exp_mean", exp_dim, source)
        self.exp_std = safe_std(_stat(self.meta, "exp_std", exp_dim, source), str(source))
        self._feature = feature
        self._extractor_options = extractor_options
        self._extractor = None
        self.cache = FeatureCache(self.folder / mf.FEATURES_DIR)

    # -- the feature extractor is built lazily (HuBERT is heavy; workers build their own) ------
    @property
    def extractor(self):
        if self._extractor is None:
            self._extractor = get_extractor(self._feature, **self._extractor_options)
        return self._extractor

    @property
    def feature_dim(self) -> int:
        return int(self.extractor.dim)

    @property
    def ids(self) -> list[str]:
        return [r["id"] for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def motion(self, index: int) -> Motion:
        row = self.rows[index]
        m = Motion.load(self.folder / row["motion"])
        if m.num_frames != int(row["frames"]) or m.num_dims != self.exp_dim:
            raise ValueError(f"{self.folder / row['motion']}: has {m.num_frames} x {m.num_dims}, "
                             f"the manifest says {row['frames']} x {self.exp_dim}")
        return m

    def features(self, index: int) -> np.ndarray:
        """(2L, D_a) audio feature rows for clip `index`, from the cache or computed now."""
        row = self.rows[index]
        rows = fr.num_rows(int(row["frames"]))
        ex = self.extractor
        digest = row.get("audio_sha256")
        if digest:
            hit = self.cache.get(cache_key(digest, ex.config(), rows), ex.name, rows, ex.dim)
            if hit is not None:
                return hit
        samples = load_audio(row["audio"])
        key = cache_key(audio_digest(samples), ex.config(), rows)
        out = np.ascontiguousarray(ex(samples, rows), np.float32)
        self.cache.put(key, ex.name, out)
        return out

    def precompute_features(self, progress: bool = False) -> None:
        it = range(len(self))
        if progress:
            from tqdm import tqdm

            it = tqdm(it, desc=f"{self.extractor.name} features", unit="clip")
        for i in it:
            self.features(i)

    def __getitem__(self, index: int) -> dict:
        import torch

        if not -len(self) <= index < len(self):
            raise IndexError(f"clip index {index} out of range for {len(self)} clips")
        m = self.motion(index)
        exp = (m.exp - self.exp_mean) / self.exp_std if self.normalise else m.exp
        return {"exp": torch.from_numpy(np.ascontiguousarray(exp, np.float32)),
                "audio": torch.from_numpy(self.features(index)),
                "pose": None if m.pose is None else torch.from_numpy(m.pose),
                "id": self.rows[index]["id"]}
