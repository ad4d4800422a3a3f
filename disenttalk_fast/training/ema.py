"""Exponential moving average of model weights (the weights a checkpoint is sampled with)."""

from __future__ import annotations

import copy

from disenttalk_fast._torch import torch


class EMA:
    """ema = d * ema + (1 - d) * w after every optimiser step, d = min(decay, (1+n)/(10+n)):
    the warm-up keeps the first checkpoints from being dominated by the random init."""

    def __init__(self, model, decay: float):
        self.decay = float(decay)
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model, num_updates: int) -> None:
        d = min(self.decay, (1 + num_updates) / (10 + num_updates))
        for e, p in zip(self.model.parameters(), model.parameters()):
            e.lerp_(p.detach(), 1.0 - d)
        for e, b in zip(self.model.buffers(), model.buffers()):
            e.copy_(b)
