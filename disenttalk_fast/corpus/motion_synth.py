"""Semantic-blendshape motion at 25 fps for a synthetic utterance.

- Lips follow the phoneme timings: each phoneme's visemes are laid on a 200 Hz grid, shifted
  earlier by the anticipation (visible articulation leads the sound by ~1-2 frames), smoothed
  with a Gaussian (coarticulation), and bilabial closures / lip tucks are made dominant so that a
  short /p/ still closes the lips. Pauses are the closed, neutral mouth.
- Eyes blink independently of the audio: a renewal process at 0.28-0.45 blinks per second (rate
  drawn per clip), each blink 100-300 ms, both eyes together in most blinks.
- Global expression (brows, smile, ...) drifts slowly; head pose drifts a few degrees.

Frame f covers audio time [f/25, (f+1)/25) (= feature rows 2f and 2f+1 at 50 Hz); every track
is the average of its fine-grid values over that window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from disenttalk_fast.corpus.espeak import Phoneme
from disenttalk_fast.corpus.visemes import VISEMES, is_marker, phoneme_visemes, viseme_vector
from disenttalk_fast.facemodel.blendshapes import (EYE_BLENDSHAPES, GLOBAL_BLENDSHAPES,
                                                  LIP_BLENDSHAPES, SEMANTIC_BLENDSHAPES, index)

FPS = 25
GRID_HZ = 200                       # fine grid for coarticulation
_SUB = GRID_HZ // FPS               # grid samples per frame
BLINK_RATE_RANGE = (0.28, 0.45)     # blinks per second (physiological range)
BLINK_DURATION_RANGE = (0.10, 0.30)  # seconds
_DOMINANT = {"PP": 1.0, "FF": 0.8}  # visemes that override their neighbours when active

_LIP_SLICE = slice(0, len(LIP_BLENDSHAPES))
_EYE_SLICE = slice(len(LIP_BLENDSHAPES), len(LIP_BLENDSHAPES) + len(EYE_BLENDSHAPES))
_GLOBAL_SLICE = slice(_EYE_SLICE.stop, len(SEMANTIC_BLENDSHAPES))


@dataclass(frozen=True)
class MotionStyle:
    """Per-clip articulation settings (drawn by `random_style`)."""

    anticipation: float = 0.06   # seconds the lips lead the audio
    smoothing: float = 0.025     # Gaussian sigma of coarticulation, seconds
    lip_gain: float = 1.0        # overall articulation strength
    jaw_gain: float = 1.0        # extra scale on jaw_open
    blink_rate: float = 0.36     # blinks per second


def random_style(rng: np.random.Generator) -> MotionStyle:
    return MotionStyle(anticipation=float(rng.uniform(0.04, 0.08)),
                       smoothing=float(rng.uniform(0.018, 0.032)),
                       lip_gain=float(rng.uniform(0.75, 1.2)),
                       jaw_gain=float(rng.uniform(0.8, 1.2)),
                       blink_rate=float(rng.uniform(*BLINK_RATE_RANGE)))


def _gaussian_smooth(x: np.ndarray, sigma_samples: float) -> np.ndarray:
    """Gaussian filter along axis 0 with edge padding (x: (T, C))."""
    if sigma_samples <= 0:
        return x
    radius = max(1, int(round(3 * sigma_samples)))
    t = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (t / sigma_samples) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(x, ((radius, radius), (0, 0)), mode="edge")
    out = np.empty_like(x)
    for c in range(x.shape[1]):
        out[:, c] = np.convolve(padded[:, c], kernel, mode="valid")
    return out


def _to_frames(fine: np.ndarray, num_frames: int) -> np.ndarray:
    need = num_frames * _SUB
    if fine.shape[0] < need:
        fine = np.pad(fine, ((0, need - fine.shape[0]), (0, 0)), mode="edge")
    return fine[:need].reshape(num_frames, _SUB, -1).mean(axis=1)


def viseme_segments(phonemes: list[Phoneme], duration: float,
                    language: str) -> list[tuple[float, float, str]]:
    """(start, end, viseme) segments: each sounding phoneme's span split evenly over its
    visemes; zero-length events and markers are dropped, pauses become 'sil'."""
    events = [p for p in phonemes if not is_marker(p.name)]
    segments = []
    for i, ph in enumerate(events):
        end = events[i + 1].start if i + 1 < len(events) else duration
        if end - ph.start <= 1e-4:
            continue
        seq = phoneme_visemes(ph.name, language)
        step = (end - ph.start) / len(seq)
        for k, vis in enumerate(seq):
            segments.append((ph.start + k * step, ph.start + (k + 1) * step, vis))
    return segments


def lip_track(phonemes: list[Phoneme], duration: float, language: str, num_frames: int,
              style: MotionStyle, rng: np.random.Generator) -> np.ndarray:
    """(num_frames, len(LIP_BLENDSHAPES)) lip weights in [0, 1]."""
    n = num_frames * _SUB
    target = np.zeros((n, len(LIP_BLENDSHAPES)))
    dominance = np.zeros((n, 1))
    dominant_shape = np.zeros((n, len(LIP_BLENDSHAPES)))
    for start, end, vis in viseme_segments(phonemes, duration, language):
        a = int(round((start - style.anticipation) * GRID_HZ))
        b = int(round((end - style.anticipation) * GRID_HZ))
        a, b = max(a, 0), min(b, n)
        if b <= a:
            continue
        vec = np.asarray(viseme_vector(vis)) * rng.uniform(0.85, 1.15)  # per-token variation
        target[a:b] = vec
        if vis in _DOMINANT:
            dominance[a:b] = _DOMINANT[vis]
            dominant_shape[a:b] = vec
    smooth = _gaussian_smooth(target, style.smoothing * GRID_HZ)
    # Dominant closures: blend towards the closure shape with a sharper weight, so neighbouring
    # open vowels cannot smear a /p b m/ away.
    d = _gaussian_smooth(dominance, 0.4 * style.smoothing * GRID_HZ)
    closure = _gaussian_smooth(dominant_shape, 0.4 * style.smoothing * GRID_HZ)
    closure = np.where(dominance > 0, dominant_shape, closure)
    lips = (1 - d) * smooth + d * closure
    lips *= style.lip_gain
    lips[:, LIP_BLENDSHAPES.index("jaw_open")] *= style.jaw_gain
    return np.clip(_to_frames(lips, num_frames), 0.0, 1.0)


def blink_times(duration: float, rate: float, rng: np.random.Generator) -> list[float]:
    """Blink onsets: a stationary renewal process with gamma intervals (mean 1/rate), so the
    expected count over any span is rate * span; blinks never overlap."""
    times = []
    mean = 1.0 / rate
    # Stationary start: the first onset is a uniform point inside a length-biased interval
    # (gamma shape 4 -> shape 5), so short clips are not biased towards more or fewer blinks.
    t = rng.uniform() * rng.gamma(5.0, mean / 4.0)
    while t < duration:
        times.append(t)
        t += max(0.45, rng.gamma(4.0, mean / 4.0))
    return times


def _blink_profile(t: np.ndarray, onset: float, length: float) -> np.ndarray:
    """Eyelid closure 0..1: a fast close (30%), a short hold (20%), a slower reopening (50%)."""
    u = (t - onset) / length
    close = np.clip(u / 0.3, 0, 1)
    reopen = np.clip((1.0 - u) / 0.5, 0, 1)
    return np.where((u < 0) | (u > 1), 0.0, np.minimum(np.sin(0.5 * np.pi * close) ** 2,
                                                       np.sin(0.5 * np.pi * reopen) ** 2))


def slow_drift(num_frames: int, rng: np.random.Generator, timescale: float,
               amplitude: float) -> np.ndarray:
    """Low-passed noise with unit-ish std scaled by `amplitude`, correlation time ~timescale."""
    pad = int(3 * timescale * FPS) + 1
    noise = rng.standard_normal((num_frames + 2 * pad, 1))
    smooth = _gaussian_smooth(noise, timescale * FPS)[pad:pad + num_frames, 0]
    # a Gaussian-filtered unit white noise has std 1/sqrt(2 sqrt(pi) sigma); undo it
    return smooth * np.sqrt(2 * np.sqrt(np.pi) * timescale * FPS) * amplitude


def eye_track(num_frames: int, style: MotionStyle, rng: np.random.Generator) -> np.ndarray:
    """(num_frames, len(EYE_BLENDSHAPES)): blinks on both lids (mostly together) and a small
    slow squint / widening drift."""
    duration = num_frames / FPS
    t = (np.arange(num_frames * _SUB) + 0.5) / GRID_HZ
    left = np.zeros_like(t)
    right = np.zeros_like(t)
    for onset in blink_times(duration, style.blink_rate, rng):
        length = rng.uniform(*BLINK_DURATION_RANGE)
        if rng.random() < 0.85:          # both eyes together
            lag, weak = 0.0, 1.0
        else:                            # a slightly asymmetric blink
            lag, weak = rng.uniform(0.0, 0.03), rng.uniform(0.75, 0.95)
        lead_left = rng.random() < 0.5
        left = np.maximum(left, _blink_profile(t, onset + (0 if lead_left else lag), length)
                          * (1.0 if lead_left else weak))
        right = np.maximum(right, _blink_profile(t, onset + (lag if lead_left else 0), length)
                           * (weak if lead_left else 1.0))
    blinks = _to_frames(np.stack([left, right], axis=1), num_frames)
    squint = np.clip(0.05 + slow_drift(num_frames, rng, 1.5, 0.05), 0, 1)
    wide = np.clip(0.03 + slow_drift(num_frames, rng, 1.5, 0.04), 0, 1)
    return np.concatenate([blinks, squint[:, None], wide[:, None]], axis=1)


_GLOBAL_DRIFT = {  # blendshape -> (offset, amplitude) of its slow drift
    "brow_raise": (0.15, 0.15), "brow_furrow": (0.05, 0.06), "cheek_puff": (0.0, 0.03),
    "smile": (0.15, 0.15), "nose_wrinkle": (0.0, 0.03),
}


def global_track(num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """(num_frames, len(GLOBAL_BLENDSHAPES)) slow drift of brows, smile, cheeks, nose."""
    base = rng.uniform(0.5, 1.5)  # per-clip expressiveness
    cols = []
    for name in GLOBAL_BLENDSHAPES:
        offset, amplitude = _GLOBAL_DRIFT.get(name, (0.0, 0.03))
        drift = offset * base + slow_drift(num_frames, rng, rng.uniform(0.8, 2.0), amplitude)
        cols.append(np.clip(drift, 0, 1))
    return np.stack(cols, axis=1)


def head_pose(num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """(num_frames, 6): rotation (radians, a few degrees of slow nodding / turning) and a
    near-static translation."""
    rot = np.stack([slow_drift(num_frames, rng, 1.2, a) for a in (0.04, 0.05, 0.02)], axis=1)
    trans = np.stack([slow_drift(num_frames, rng, 2.0, 0.01) for _ in range(3)], axis=1)
    return np.concatenate([rot, trans], axis=1)


def synthesize_weights(phonemes: list[Phoneme], duration: float, language: str,
                       num_frames: int, style: MotionStyle,
                       rng: np.random.Generator) -> np.ndarray:
    """(num_frames, len(SEMANTIC_BLENDSHAPES)) float32 weights for one utterance."""
    out = np.zeros((num_frames, len(SEMANTIC_BLENDSHAPES)))
    out[:, _LIP_SLICE] = lip_track(phonemes, duration, language, num_frames, style, rng)
    out[:, _EYE_SLICE] = eye_track(num_frames, style, rng)
    out[:, _GLOBAL_SLICE] = global_track(num_frames, rng)
    return out.astype(np.float32)


def closed_lips(weights: np.ndarray) -> np.ndarray:
    """The same motion with the lips closed: every lip weight zeroed, lips lightly pressed."""
    out = weights.copy()
    out[:, _LIP_SLICE] = 0.0
    out[:, index("lip_press")] = 0.3
    return out


def closed_eyes(weights: np.ndarray) -> np.ndarray:
    """The same motion with both eyes closed throughout."""
    out = weights.copy()
    out[:, index("eye_blink_left")] = 1.0
    out[:, index("eye_blink_right")] = 1.0
    return out


def detect_blinks(closure: np.ndarray, threshold: float = 0.5) -> int:
    """Number of blinks in a (L,) eyelid-closure track: upward crossings of `threshold`."""
    above = np.asarray(closure) >= threshold
    return int(np.count_nonzero(above[1:] & ~above[:-1]) + int(above[:1].sum()))


assert set(_DOMINANT) <= set(VISEMES)
