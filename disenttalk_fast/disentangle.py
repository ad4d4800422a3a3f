"""Disentanglement of the expression dims into lip / eye / global regions (paper Eq. 1-2).

Input: the expression sequences of the same clips in their original state and edited to closed
lips and to closed eyes (the editing model is the user's; this takes the coefficient arrays).
For region r in {lip, eye} and dim i:

    score_r[i] = max_t |Delta_r[t, i]| / sigma_i,   Delta_r = edited_r - original,

sigma_i the std of dim i over all frames of the original data. D_lip = the top K_lip dims by
score_lip, D_eye = the top K_eye by score_eye; a dim claimed by both goes to the region where its
score is larger (lip on an exact tie) and the other region takes its next best dim (repeated until
no dim is claimed twice); D_global = the rest. The scores are kept in `Partition.scores`.
"""

from __future__ import annotations

import numpy as np

from disenttalk_fast.partition import Partition


def disentangle(original, closed_lips, closed_eyes, k_lip: int = 13, k_eye: int = 8) -> Partition:
    """Choose the lip and eye dims from original / closed-lips / closed-eyes expressions.

    Each argument is one (L, N) array, a (C, L, N) stack of clips, or a list of per-clip (L_c, N)
    arrays (the three must have matching clip lengths). Returns a `Partition` over N dims whose
    `scores` hold {"lip": score_lip, "eye": score_eye} (N floats each, in the original order).
    """
    orig = _clips(original, "original")
    lips = _clips(closed_lips, "closed_lips")
    eyes = _clips(closed_eyes, "closed_eyes")
    num_dims = orig[0].shape[1]
    for name, clips in (("closed_lips", lips), ("closed_eyes", eyes)):
        if len(clips) != len(orig):
            raise ValueError(f"{name} has {len(clips)} clips but original has {len(orig)}")
        for c, (a, b) in enumerate(zip(orig, clips)):
            if a.shape != b.shape:
                raise ValueError(f"{name} clip {c} has shape {b.shape} but original clip {c} "
                                 f"has {a.shape}")
    _check_k(k_lip, "k_lip")
    _check_k(k_eye, "k_eye")
    if k_lip + k_eye >= num_dims:
        raise ValueError(f"k_lip + k_eye = {k_lip + k_eye} leaves no global dims of {num_dims}")

    # The scores are ratios of movements to sigma, the same at any common scale: working at
    # max |value| = 1 keeps values of 1e300 (or 1e-300) from over- or underflowing them.
    scale = max(float(np.abs(c).max()) for c in orig + lips + eyes) or 1.0
    orig, lips, eyes = ([c / scale for c in clips] for clips in (orig, lips, eyes))
    sigma = np.concatenate(orig).std(axis=0)
    # A dim that never moves in the original data has no scale; keep it finite (it is then
    # chosen only if the edit moves it, which is what its sensitivity says).
    sigma = np.maximum(sigma, 1e-8 * max(float(sigma.max()), 1e-30))
    score_lip = _score(orig, lips, sigma)
    score_eye = _score(orig, eyes, sigma)
    for name, score in (("closed_lips", score_lip), ("closed_eyes", score_eye)):
        if not score.any():   # every dim would tie at 0: the choice would be arbitrary
            raise ValueError(f"{name} equals the original in every dim: the edit moved nothing "
                             f"to choose the region's dims by")
    lip, eye = select_regions(score_lip, score_eye, k_lip, k_eye)
    rest = sorted(set(range(num_dims)) - set(lip) - set(eye))
    return Partition(sorted(lip), sorted(eye), rest, num_dims,
                     {"lip": tuple(map(float, score_lip)), "eye": tuple(map(float, score_eye))})


def select_regions(score_lip: np.ndarray, score_eye: np.ndarray, k_lip: int,
                   k_eye: int) -> tuple[list[int], list[int]]:
    """Top-k per region with the conflict rule of DESIGN section 4 (see the module docstring).

    Ranking ties break toward the lower dim index, so the result is deterministic.
    """
    ranks = {"lip": list(np.argsort(-score_lip, kind="stable")),
             "eye": list(np.argsort(-score_eye, kind="stable"))}
    k = {"lip": k_lip, "eye": k_eye}
    score = {"lip": score_lip, "eye": score_eye}
    chosen = {r: list(ranks[r][:k[r]]) for r in ranks}
    lost = {"lip": set(), "eye": set()}        # dims a region gave up in a conflict
    while True:
        conflicts = sorted(set(chosen["lip"]) & set(chosen["eye"]))
        if not conflicts:
            break
        for i in conflicts:
            loser = "eye" if score["lip"][i] >= score["eye"][i] else "lip"
            chosen[loser].remove(i)
            lost[loser].add(i)
        for r in ("lip", "eye"):                # refill with the next best not yet lost
            for i in ranks[r]:
                if len(chosen[r]) == k[r]:
                    break
                if i not in lost[r] and i not in chosen[r]:
                    chosen[r].append(i)
    return [int(i) for i in chosen["lip"]], [int(i) for i in chosen["eye"]]


def _score(orig: list[np.ndarray], edited: list[np.ndarray], sigma: np.ndarray) -> np.ndarray:
    peak = np.max([np.abs(e - o).max(axis=0) for o, e in zip(orig, edited)], axis=0)
    return peak / sigma


def _clips(value, name: str) -> list[np.ndarray]:
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"{name} holds no clips")
        clips = []
        for c, clip in enumerate(value):
            try:
                arr = np.asarray(clip, dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"{name} clip {c} is not a numeric array") from None
            if arr.ndim != 2:
                raise ValueError(f"{name} clip {c} must be (frames, dims), got shape {arr.shape}")
            clips.append(arr)
    else:
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be an array or a list of arrays, "
                             f"got {type(value).__name__}") from None
        if arr.ndim not in (2, 3):
            raise ValueError(f"{name} must be (frames, dims), (clips, frames, dims) or a list of "
                             f"(frames, dims) arrays, got shape {arr.shape}")
        clips = [arr] if arr.ndim == 2 else list(arr)
        if not clips:
            raise ValueError(f"{name} holds no clips")
    dims = clips[0].shape[1]
    for c, arr in enumerate(clips):
        if arr.shape[0] < 1 or arr.shape[1] < 1:
            raise ValueError(f"{name} clip {c} is empty (shape {arr.shape})")
        if arr.shape[1] != dims:
            raise ValueError(f"{name} clip {c} has {arr.shape[1]} dims, clip 0 has {dims}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} clip {c} contains NaN or infinite values")
    return clips


def _check_k(k, name: str) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {k!r}")
