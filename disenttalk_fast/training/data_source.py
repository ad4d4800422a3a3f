"""Where training clips come from: a prepared clip dataset folder (`disenttalk_fast.data.
ClipDataset`, `disenttalk prepare`) or a single .npz file.

.npz layout (no pickled objects): for each clip a pair `exp_<name>` (L, N) float and
`audio_<name>` (2L, D) float audio features at 50 Hz, with raw (unnormalised) expressions;
optional `exp_mean` / `exp_std` (N,) give the normalisation, else they are computed over all
clips (std floored at 1e-6 -> 1). Both sources give the same in-memory clips: dicts with
normalised "exp" and "audio" tensors, plus the stats stored in the checkpoint.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from disenttalk_fast._torch import torch


@dataclass
class TrainingData:
    clips: list[dict]
    exp_mean: torch.Tensor
    exp_std: torch.Tensor
    feature_type: str | None     # None: unknown (an .npz says nothing about its features)
    description: str

    @property
    def num_dims(self) -> int:
        return int(self.clips[0]["exp"].shape[1])

    @property
    def audio_dim(self) -> int:
        return int(self.clips[0]["audio"].shape[1])


def load_training_data(path, feature: str = "mel", **extractor_options) -> TrainingData:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such dataset folder or .npz file")
    if p.is_dir():
        return _from_folder(p, feature, extractor_options)
    if p.suffix == ".npz":
        return _from_npz(p)
    raise ValueError(f"{p}: expected a prepared dataset folder or an .npz file of clips")


def _from_folder(p: Path, feature: str, extractor_options: dict) -> TrainingData:
    from disenttalk_fast.data import ClipDataset

    ds = ClipDataset(p, feature=feature, **extractor_options)
    if len(ds) == 0:
        raise ValueError(f"{p}: the dataset has no training clips")
    clips = [{"exp": item["exp"], "audio": item["audio"], "name": item["id"]}
             for item in (ds[i] for i in range(len(ds)))]
    return TrainingData(clips, torch.as_tensor(ds.exp_mean), torch.as_tensor(ds.exp_std),
                        feature, f"{p} ({len(clips)} clips, {feature} features)")


def _from_npz(p: Path) -> TrainingData:
    try:
        z = np.load(p, allow_pickle=False)
        if not hasattr(z, "files"):     # a plain .npy named .npz loads as one array
            raise ValueError("a single array, not an archive")
        arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:  # incl. "Object arrays cannot..."
        raise ValueError(f"{p}: not a readable .npz of clips "
                         f"({(str(exc) or type(exc).__name__).splitlines()[0]})") from None
    # Casting to float32 would silently drop the imaginary part of complex arrays.
    bad = sorted(k for k, a in arrays.items() if a.dtype.kind not in "fiu")
    if bad:
        raise ValueError(f"{p}: {bad[0]} has dtype {arrays[bad[0]].dtype}, expected real numbers")
    names = sorted(k[4:] for k in arrays if k.startswith("exp_") and k not in ("exp_mean", "exp_std"))
    if not names:
        raise ValueError(f"{p}: no clips (expected arrays exp_<name> and audio_<name>)")
    raw = []
    for n in names:
        if f"audio_{n}" not in arrays:
            raise ValueError(f"{p}: clip {n!r} has exp_{n} but no audio_{n}")
        exp = np.asarray(arrays[f"exp_{n}"], np.float32)
        audio = np.asarray(arrays[f"audio_{n}"], np.float32)
        if exp.ndim != 2 or audio.ndim != 2:
            raise ValueError(f"{p}: clip {n!r}: exp must be (L, N) and audio (2L, D), got "
                             f"{exp.shape} and {audio.shape}")
        raw.append((n, exp, audio))
    dims = {e.shape[1] for _, e, _ in raw}
    if len(dims) != 1:
        raise ValueError(f"{p}: clips have different expression dims {sorted(dims)}")
    if ("exp_mean" in arrays) != ("exp_std" in arrays):
        # One alone would be ignored (both get recomputed): refuse rather than drop it.
        raise ValueError(f"{p}: has {'exp_mean' if 'exp_mean' in arrays else 'exp_std'} "
                         "without the other; give both exp_mean and exp_std or neither")
    if "exp_mean" in arrays:
        mean = np.asarray(arrays["exp_mean"], np.float32)
        std = np.asarray(arrays["exp_std"], np.float32)
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std >= 0).all()):
            raise ValueError(f"{p}: exp_mean / exp_std hold non-finite or negative values")
    else:
        allexp = np.concatenate([e for _, e, _ in raw])
        mean, std = allexp.mean(0), allexp.std(0)
    n = dims.pop()
    # No flattening: a (3, 4) array is not a list of 12 per-dim stats.
    if mean.shape != (n,) or std.shape != (n,):
        raise ValueError(f"{p}: exp_mean / exp_std must be 1-D with {n} values (one per "
                         f"expression dim), got {mean.shape} and {std.shape}")
    std = np.where(std < 1e-6, np.float32(1), std).astype(np.float32)
    clips = [{"exp": torch.from_numpy((e - mean) / std), "audio": torch.from_numpy(a), "name": n}
             for n, e, a in raw]
    return TrainingData(clips, torch.from_numpy(mean), torch.from_numpy(std), None,
                        f"{p} ({len(clips)} clips)")
