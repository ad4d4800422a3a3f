"""Causal cross-attention from motion frames to audio feature rows (the F_attn path of Eq. 6).

Audio features run at 50 Hz and motion at 25 fps, so frame j owns audio rows 2j and 2j + 1.
Frame j may attend to every audio row before the end of its own frame, plus `lookahead` frames
of future audio: rows r < 2 * (j + 1 + lookahead) (clamped to the S rows that exist).
"""

from __future__ import annotations

import torch.nn.functional as F

from disenttalk_fast._torch import torch

ROWS_PER_FRAME = 2


def visible_rows(num_frames: int, num_rows: int, lookahead: int, device=None) -> torch.Tensor:
    """(L,) number of audio rows each frame may see."""
    j = torch.arange(num_frames, device=device)
    return torch.clamp(ROWS_PER_FRAME * (j + 1 + lookahead), max=num_rows)


def causal_mask(num_frames: int, num_rows: int, lookahead: int, device=None) -> torch.Tensor:
    """(L, S) boolean, True where frame j may attend to audio row r."""
    r = torch.arange(num_rows, device=device)
    return r[None, :] < visible_rows(num_frames, num_rows, lookahead, device)[:, None]


def causal_cross_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                           lookahead: int = 0) -> torch.Tensor:
    """q: (B, L, H, D) frame queries; k, v: (B, S, H, D) audio keys/values (S >= 1).

    Returns (B, L, H, D). Softmax scale 1/sqrt(D).
    """
    L, S = q.shape[1], k.shape[1]
    mask = causal_mask(L, S, lookahead, q.device)
    o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                       attn_mask=mask)
    return o.transpose(1, 2)
