"""Offset-sweep sync scores in parameter space, in the manner of SyncNet's LSE-C / LSE-D.

For every audio offset o in [-15, 15] frames, the lip window at frames [s, s+5) is compared with
the audio window of frames [s+o, s+o+5) for every s where both exist; dist(o) is the mean
Euclidean distance between the two unit embeddings (in [0, 2]). Then, as in SyncNet:
- distance   (LSE-D-like) = min_o dist(o)                 lower is better
- confidence (LSE-C-like) = median_o dist(o) - min_o dist(o)   higher is better
- offset = argmin_o dist(o): 0 when lips and audio are in sync; positive o means the lips
  match audio that comes o frames later (the lips lead).
The numbers are in the expert's embedding space, so they compare models under the same expert,
not with SyncNet's pixel-space LSE values.
"""

from __future__ import annotations

from dataclasses import dataclass

from disenttalk_fast._torch import torch
from disenttalk_fast.sync.expert import FRAMES, ROWS_PER_FRAME, SyncExpert, all_windows


@dataclass
class SyncScores:
    offsets: list[int]
    distances: list[float]      # mean embedding distance per offset
    distance: float             # LSE-D-like
    confidence: float           # LSE-C-like
    offset: int                 # best offset in frames

    def as_dict(self) -> dict:
        return {"lse_d": self.distance, "lse_c": self.confidence, "offset": self.offset}


@torch.no_grad()
def sync_scores(expert: SyncExpert, exp: torch.Tensor, audio: torch.Tensor,
                max_offset: int = 15) -> SyncScores:
    """exp (L, N) or (L, K_lip) normalised expressions, audio (2L, D) features of one clip."""
    exp = torch.as_tensor(exp, dtype=torch.float32)
    audio = torch.as_tensor(audio, dtype=torch.float32)
    if exp.dim() != 2 or audio.dim() != 2:
        raise ValueError(f"sync_scores: need exp (L, dims) and audio (2L, D), got "
                         f"{tuple(exp.shape)} and {tuple(audio.shape)}")
    L = min(exp.shape[0], audio.shape[0] // ROWS_PER_FRAME)
    if L < FRAMES + 2 * max_offset + 1:
        raise ValueError(f"sync_scores: {L} frames is too short for a +-{max_offset} frame sweep "
                         f"(need {FRAMES + 2 * max_offset + 1})")
    device = next(expert.parameters()).device
    lips = expert.lips(exp[:L]).to(device)
    lw, aw = all_windows(lips[None], audio[None, : ROWS_PER_FRAME * L].to(device))
    em = expert.embed_lips(lw[0])          # (W, E), W = L - 4 windows
    ea = expert.embed_audio(aw[0])
    W = em.shape[0]
    offsets = list(range(-max_offset, max_offset + 1))
    dists = []
    for o in offsets:
        lo, hi = max(0, -o), min(W, W - o)  # lip window s pairs with audio window s + o
        dists.append(float((em[lo:hi] - ea[lo + o:hi + o]).norm(dim=-1).mean()))
    d = torch.tensor(dists)
    best = int(d.argmin())
    return SyncScores(offsets, dists, float(d.min()), float(d.median() - d.min()), offsets[best])
