"""Tiny DisentTalk configs and inputs shared by the model, checkpoint and training tests."""

from __future__ import annotations

import torch

from disenttalk_fast.config import DisentTalkConfig
from disenttalk_fast.model import DisentTalkDenoiser
from disenttalk_fast.partition import Partition

# 16 dims (lip 4, eye 3, global 9), d_model 32 = (1 + 1 + 2) heads of 8, 2 blocks, 12-d audio.
TINY = dict(num_dims=16, k_lip=4, k_eye=3, d_model=32, head_dim=8, region_heads=(1, 1, 2),
            n_layers=2, audio_dim=12, timesteps=50)


def tiny_config(**changes) -> DisentTalkConfig:
    return DisentTalkConfig(**{**TINY, **changes})


def scrambled_partition(config: DisentTalkConfig, seed: int = 0) -> Partition:
    """A partition whose regions are scattered over the dims (not contiguous), so tests catch
    any confusion between original and region order."""
    perm = torch.randperm(config.num_dims, generator=torch.Generator().manual_seed(seed)).tolist()
    a, b = config.k_lip, config.k_lip + config.k_eye
    return Partition(sorted(perm[:a]), sorted(perm[a:b]), sorted(perm[b:]), config.num_dims)


def tiny_model(seed: int = 0, randomize_head: bool = True, **changes) -> DisentTalkDenoiser:
    """A tiny model with a non-zero output head (the real init is zero, which would make most
    output comparisons vacuous)."""
    config = tiny_config(**changes)
    torch.manual_seed(seed)
    model = DisentTalkDenoiser(config, scrambled_partition(config, seed)).eval()
    if randomize_head:
        with torch.no_grad():
            model.out_proj.weight.normal_(0, 0.3)
            model.out_proj.bias.normal_(0, 0.1)
            for block in model.blocks:          # make FiLM depend on t, as after training
                block.film.weight.normal_(0, 0.1)
    return model


def inputs(model: DisentTalkDenoiser, batch: int, frames: int, seed: int = 1, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    cfg = model.config
    z = torch.randn(batch, frames, cfg.num_dims, generator=g, dtype=dtype)
    t = torch.randint(0, cfg.timesteps, (batch,), generator=g)
    audio = torch.randn(batch, 2 * frames, cfg.audio_dim, generator=g, dtype=dtype)
    return z, t, audio

