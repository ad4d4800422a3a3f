"""Semantic blendshape weights -> the built-in face's entangled 64-dim expression coefficients.

The built-in morphable model (`facemodel.MorphableModel.builtin()`) mixes every semantic
blendshape into many of its expression dims, like a real 3DMM basis does; this module applies
that mixing and adds per-dim noise (a face tracker is never exact). The noise is drawn
once per clip and shared by the original and the edited versions, so an edit changes only the
edited region's contribution — as an editing model applied to a tracked clip would.
"""

from __future__ import annotations

import functools

import numpy as np

NOISE_STD = 0.03   # per-dim tracking noise, coefficient units (the jaw dim's std is ~2.5,
                   # typical lip dims' 0.05-0.15)


@functools.lru_cache(maxsize=1)
def builtin_model():
    from disenttalk_fast.facemodel.morphable import MorphableModel

    return MorphableModel.builtin()


def weights_to_exp(weights: np.ndarray) -> np.ndarray:
    """(L, len(SEMANTIC_BLENDSHAPES)) weights -> (L, N) expression coefficients, no noise."""
    return np.asarray(builtin_model().weights_to_exp(np.asarray(weights, np.float32)),
                      np.float32)


def exp_to_weights(exp: np.ndarray) -> np.ndarray:
    """(L, N) expression coefficients -> (L, len(SEMANTIC_BLENDSHAPES)) semantic weights."""
    return np.asarray(builtin_model().exp_to_weights(np.asarray(exp, np.float32)), np.float32)


def tracking_noise(num_frames: int, rng: np.random.Generator,
                   std: float = NOISE_STD) -> np.ndarray:
    """(L, N) Gaussian noise of the same std in every dim, in coefficient units: a face
    tracker's fitting error does not shrink with a dim's importance, so the weakly driven dims
    are mostly noise (as in real 3DMM tracks) and only strongly driven dims stand out."""
    dims = builtin_model().exp_dims
    return (rng.standard_normal((num_frames, dims)) * std).astype(np.float32)
