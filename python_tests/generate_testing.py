"""A tiny randomly initialised denoiser for generate / stream tests (fast on one CPU thread)."""

import torch

from disenttalk_fast.config import DisentTalkConfig
from disenttalk_fast.model import DisentTalkDenoiser

TINY = dict(d_model=48, head_dim=16, region_heads=(1, 1, 1), n_layers=1, timesteps=20,
            window=16)


def tiny_model(seed=0, backend="reference", **overrides):
    torch.manual_seed(seed)
    m = DisentTalkDenoiser(DisentTalkConfig(**{**TINY, **overrides}), backend=backend)
    with torch.no_grad():
        for p in m.parameters():   # a random but non-trivial eps field (out_proj starts at 0)
            p.normal_(0, 0.05)
    return m.eval()
