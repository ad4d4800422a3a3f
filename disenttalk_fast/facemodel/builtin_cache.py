"""The built-in face, kept on disk after its first build.

Building the built-in face takes about 2 s (half of it importing scipy.interpolate, the rest
smoothing its random fields) and gives the same arrays every time, so the first build is saved as
safetensors and later processes load it in tens of milliseconds: `disenttalk demo` and `render`
start drawing that much sooner. The file name carries a hash of the generating source files and
the numpy version, so a changed generator never reads a stale face.

Where: $DISENTTALK_CACHE_DIR, else $XDG_CACHE_HOME/disenttalk_fast, else ~/.cache/disenttalk_fast
(about 20 MB). DISENTTALK_CACHE_DIR=off builds every time. A folder that cannot be written only
means building every time, and a cache file that does not load is rebuilt and replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from disenttalk_fast._atomic import atomic_output
from disenttalk_fast._torch import torch

CACHE_ENV = "DISENTTALK_CACHE_DIR"
# What the built-in face is generated from; a change to any of them changes the file name.
SOURCES = ("builtin.py", "blendshapes.py", "builtin_cache.py")
_TENSORS = ("mean_shape", "id_basis", "exp_basis", "triangles", "mean_albedo", "albedo_basis",
            "mouth_vertex_indices", "eye_vertex_indices")


def cache_path() -> Path | None:
    """Where the built-in face is kept, or None when caching is off."""
    env = os.environ.get(CACHE_ENV)
    if env == "off":
        return None
    if env:
        folder = Path(env)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        folder = Path(base) / "disenttalk_fast"
    return folder / f"builtin_face-{_fingerprint()}.safetensors"


def load_or_build(build: Callable[[], object]):
    """The cached built-in face if a good one exists, else build() (saved for next time)."""
    path = cache_path()
    if path is not None and path.is_file():
        try:
            return _load(path)
        except Exception:  # noqa: BLE001 -- any unreadable cache file is rebuilt and replaced
            pass
    model = build()
    if path is not None:
        try:
            _save(model, path)
        except OSError:  # a read-only or missing home: build each time
            pass
    return model


def _fingerprint() -> str:
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for name in SOURCES:
        digest.update((here / name).read_bytes())
    digest.update(np.__version__.encode())
    return digest.hexdigest()[:16]


def _save(model, path: Path) -> None:
    from safetensors.torch import save_file

    tensors = {name: getattr(model, name).contiguous() for name in _TENSORS}
    tensors["rig_shapes"] = model.blendshapes.shapes.contiguous()
    tensors["rig_mixing"] = model.blendshapes.mixing.contiguous()
    meta = {"landmarks": json.dumps(model.landmarks), "name": model.name}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        save_file(tensors, tmp, metadata=meta)


def _load(path: Path):
    from safetensors import safe_open

    from disenttalk_fast.facemodel.builtin import SemanticRig
    from disenttalk_fast.facemodel.morphable import MorphableModel

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {name: f.get_tensor(name) for name in (*_TENSORS, "rig_shapes", "rig_mixing")}
    landmarks = {k: tuple(int(i) for i in v) for k, v in json.loads(meta["landmarks"]).items()}
    rig = SemanticRig(tensors.pop("rig_shapes").numpy(), tensors.pop("rig_mixing").numpy())
    return MorphableModel(**tensors, landmarks=landmarks, blendshapes=rig, name=meta["name"])


__all__ = ["CACHE_ENV", "cache_path", "load_or_build"]
