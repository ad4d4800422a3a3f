"""Training the sync expert, before (and independently of) the denoiser.

Each batch is half aligned windows (y = 1: lips of frames [s, s+5) with audio rows
[2s, 2s+10)) and half negatives (y = 0): the audio shifted by 3..15 frames within the same clip,
or, when there is more than one clip, taken from a random place in another clip (one negative in
two). Shifts under 3 frames are not used as negatives: lips barely change in 80 ms, so such pairs
would be label noise. The result is returned frozen.
"""

from __future__ import annotations

import math

from disenttalk_fast._checks import is_int, is_real
from disenttalk_fast._torch import torch
from disenttalk_fast.sync.expert import (AUDIO_ROWS, FRAMES, ROWS_PER_FRAME, SyncExpert,
                                         check_lip_dims)

MAX_SHIFT = 15
MIN_SHIFT = 3


def _check_clips(clips, audio_dim=None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    out = []
    for i, clip in enumerate(clips):
        try:
            exp = torch.as_tensor(clip["exp"], dtype=torch.float32)
            audio = torch.as_tensor(clip["audio"], dtype=torch.float32)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(f"clip {i}: needs 'exp' and 'audio' arrays ({exc})") from None
        if exp.dim() != 2 or audio.dim() != 2 or audio.shape[0] < ROWS_PER_FRAME * exp.shape[0]:
            raise ValueError(f"clip {i}: need exp (L, N) and audio (2L, D), got "
                             f"{tuple(exp.shape)} and {tuple(audio.shape)}")
        dims = (exp.shape[1], audio.shape[1])
        if i == 0:
            first = dims
        elif dims != first:
            raise ValueError(f"clip {i}: exp dims {dims[0]} and audio dim {dims[1]} differ from "
                             f"clip 0's {first[0]} and {first[1]}")
        if not (torch.isfinite(exp).all() and torch.isfinite(audio).all()):
            raise ValueError(f"clip {i}: holds NaN or inf")
        if exp.shape[0] >= FRAMES + MIN_SHIFT:
            out.append((exp, audio))
    if not out:
        raise ValueError(f"no clip has the {FRAMES + MIN_SHIFT} frames the sync expert needs")
    return out


def _draw_batch(clips, lip_dims, batch: int, g: torch.Generator):
    lip_idx = list(lip_dims)
    lengths = torch.tensor([c[0].shape[0] for c in clips], dtype=torch.float64)
    ci = torch.multinomial(lengths, batch, replacement=True, generator=g).tolist()
    y = (torch.rand(batch, generator=g) < 0.5).float()
    cross = torch.rand(batch, generator=g) < 0.5
    lips, audio = [], []
    for b in range(batch):
        exp, aud = clips[ci[b]]
        L = exp.shape[0]
        s = int(torch.randint(0, L - FRAMES + 1, (1,), generator=g))
        a_clip, a_start = aud, s
        if y[b] == 0:
            if cross[b] and len(clips) > 1:
                other = int(torch.randint(0, len(clips) - 1, (1,), generator=g))
                other += other >= ci[b]
                a_clip = clips[other][1]
                a_start = int(torch.randint(0, clips[other][0].shape[0] - FRAMES + 1, (1,),
                                            generator=g))
            else:  # a shift of MIN_SHIFT..MAX_SHIFT frames either way that stays inside the clip
                valid = [d for d in range(-MAX_SHIFT, MAX_SHIFT + 1)
                         if abs(d) >= MIN_SHIFT and 0 <= s + d <= L - FRAMES]
                a_start = s + valid[int(torch.randint(0, len(valid), (1,), generator=g))]
        lips.append(exp[s:s + FRAMES, lip_idx])
        r = ROWS_PER_FRAME * a_start
        audio.append(a_clip[r:r + AUDIO_ROWS])
    return torch.stack(audio), torch.stack(lips), y


def train_sync_expert(clips, lip_dims, *, steps: int = 2000, batch_size: int = 64,
                      lr: float = 1e-3, hidden: int = 128, embed_dim: int = 64, seed: int = 0,
                      device="cpu", progress=None) -> SyncExpert:
    """Train a SyncExpert on clips: a sequence of {"exp": (L, N), "audio": (2L, D)} (the same
    normalised expressions the denoiser trains on). progress(step, loss) after every step."""
    for name, value, low in (("steps", steps, 1), ("batch_size", batch_size, 2),
                             ("hidden", hidden, 1), ("embed_dim", embed_dim, 1)):
        if not is_int(value) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if not is_real(lr) or not 0 < lr < math.inf:
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    lip_dims = check_lip_dims(lip_dims)
    clips = _check_clips(clips)
    num_dims = clips[0][0].shape[1]
    if max(lip_dims) >= num_dims:
        raise ValueError(f"lip_dims go up to {max(lip_dims)}; the clips' exp has {num_dims} dims")
    audio_dim = clips[0][1].shape[1]
    g = torch.Generator().manual_seed(int(seed))
    with torch.random.fork_rng(devices=[]):  # seeded weight init, global RNG left untouched
        torch.manual_seed(int(seed))
        expert = SyncExpert(audio_dim, lip_dims, hidden, embed_dim).to(device)
    opt = torch.optim.Adam(expert.parameters(), lr=lr)
    expert.train()
    for step in range(1, steps + 1):
        a, m, y = _draw_batch(clips, lip_dims, batch_size, g)
        loss = expert.loss(a.to(device), m.to(device), y.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress is not None:
            progress(step, float(loss.detach()))
    return expert.freeze()
