"""Audio features behind one interface: 2 rows per 25 fps frame (50 Hz), exactly.

An extractor has `name`, `dim`, `config() -> dict` (everything that changes its output; the cache
key) and `__call__(samples_16k, num_rows) -> (num_rows, dim) float32`. The frame count follows
`disenttalk_fast.audio.frames`: ceil(samples / 640) frames unless imposed, 2 rows per frame.

    >>> from disenttalk_fast.audio import extract_features
    >>> rows = extract_features("speech.wav")                        # (2 * frames, 80) log-mel
    >>> rows = extract_features("speech.wav", "hubert", hubert_dir="hubert-base", layer=9)
"""

from __future__ import annotations

import os

import numpy as np

from disenttalk_fast.audio import frames as fr
from disenttalk_fast.audio.cache import FeatureCache, audio_digest, cache_key
from disenttalk_fast.audio.load import load_audio

FEATURES = ("mel", "hubert")


def get_extractor(feature="mel", *, hubert_dir=None, layer=None, device=None, dtype="auto"):
    """An extractor by name ('mel' or 'hubert'); an extractor object is returned as is."""
    if not isinstance(feature, str):
        return feature
    if feature == "mel":
        from disenttalk_fast.audio.mel import MelExtractor

        return MelExtractor(device=str(device) if device else "cpu")
    if feature == "hubert":
        if hubert_dir is None:
            raise ValueError("feature 'hubert' needs the local model directory (hubert_dir= / "
                             "--hubert DIR); nothing is downloaded")
        from disenttalk_fast.audio.hubert import HubertExtractor

        return HubertExtractor(hubert_dir, layer=layer, device=device, dtype=dtype)
    raise ValueError(f"unknown audio feature '{feature}' (choose from {', '.join(FEATURES)})")


def extract_features(audio, feature="mel", *, num_frames: int | None = None, sr: int | None = None,
                     cache_dir: str | os.PathLike | None = None, cache: FeatureCache | None = None,
                     **extractor_options) -> np.ndarray:
    """(2 * num_frames, dim) float32 feature rows for `audio` (a path, or an array at `sr`).

    `num_frames` defaults to ceil(duration * 25) (the last partial frame padded with silence);
    when given, longer audio is trimmed and shorter audio padded with silence. With `cache_dir`
    (or a `FeatureCache`) results are read from / written to the on-disk cache.
    """
    extractor = get_extractor(feature, **extractor_options)
    samples = load_audio(audio, sr=sr)
    frames = fr.num_frames(samples.size) if num_frames is None else int(num_frames)
    if frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    rows = fr.num_rows(frames)
    if cache is None and cache_dir is not None:
        cache = FeatureCache(cache_dir)
    key = None
    if cache is not None:
        key = cache_key(audio_digest(samples), extractor.config(), rows)
        hit = cache.get(key, extractor.name, rows, extractor.dim)
        if hit is not None:
            return hit
    out = np.ascontiguousarray(extractor(samples, rows), np.float32)
    if out.shape != (rows, extractor.dim):   # a custom extractor broke the contract
        raise RuntimeError(f"feature extractor '{extractor.name}' returned {out.shape}, "
                           f"expected ({rows}, {extractor.dim})")
    if cache is not None:
        cache.put(key, extractor.name, out)
    return out
