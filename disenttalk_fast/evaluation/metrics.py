"""Motion-quality metrics on plain arrays (no model, no face): each takes per-frame tracks and
returns a float, so they are easy to test and to apply to ground truth and generated motion
alike. The face-dependent inputs (mouth opening, eyelid closure, mouth vertices) are computed by
`evaluation.face_measures`.
"""

from __future__ import annotations

import itertools

import numpy as np

from disenttalk_fast.corpus.motion_synth import FPS, detect_blinks


def jitter(x: np.ndarray) -> float:
    """Temporal jitter: mean |x[t+1] - 2 x[t] + x[t-1]| over frames and dims (x: (L, D))."""
    x = np.asarray(x, np.float64)
    if x.shape[0] < 3:
        raise ValueError(f"jitter needs at least 3 frames, got {x.shape[0]}")
    return float(np.abs(x[2:] - 2 * x[1:-1] + x[:-2]).mean())


def blink_rate(closure: np.ndarray, fps: int = FPS, threshold: float = 0.5) -> float:
    """Blinks per second in an eyelid-closure track (1 = closed)."""
    closure = np.asarray(closure)
    return detect_blinks(closure, threshold) / (len(closure) / fps)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equal-length series (0 when either is constant)."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    n = min(len(a), len(b))
    a, b = a[:n] - a[:n].mean(), b[:n] - b[:n].mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def landmark_distance(verts_a: np.ndarray, verts_b: np.ndarray) -> float:
    """LMD-style: mean Euclidean distance between corresponding vertices, (L, V, 3) each."""
    a, b = np.asarray(verts_a, np.float64), np.asarray(verts_b, np.float64)
    n = min(len(a), len(b))
    return float(np.linalg.norm(a[:n] - b[:n], axis=-1).mean())


def diversity(samples: list[np.ndarray]) -> float:
    """Mean pairwise per-frame distance between motions generated for the same audio with
    different seeds (each (L, D)); 0 for a deterministic generator."""
    if len(samples) < 2:
        raise ValueError("diversity needs at least two samples")
    dists = [float(np.linalg.norm(np.asarray(a) - np.asarray(b), axis=-1).mean())
             for a, b in itertools.combinations(samples, 2)]
    return float(np.mean(dists))


def audio_energy(audio: np.ndarray, num_frames: int, samples_per_frame: int = 640) -> np.ndarray:
    """Per-frame RMS energy in dB of 16 kHz audio (frame j = samples [640 j, 640 (j+1)))."""
    audio = np.asarray(audio, np.float64)
    need = num_frames * samples_per_frame
    if len(audio) < need:
        audio = np.pad(audio, (0, need - len(audio)))
    frames = audio[:need].reshape(num_frames, samples_per_frame)
    return 10 * np.log10((frames ** 2).mean(axis=1) + 1e-10)
