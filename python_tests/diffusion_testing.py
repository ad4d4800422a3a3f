"""Shared helpers of the diffusion / sampling / sync / training tests: a tiny real denoiser,
synthetic clips whose lips follow the audio, and an exact (analytic) denoiser for a smooth
Gaussian-process motion prior, which lets the samplers be tested without training a model."""

from __future__ import annotations

import torch
from torch import nn

from disenttalk_fast.config import DisentTalkConfig
from disenttalk_fast.model import AudioCache, DisentTalkDenoiser
from disenttalk_fast.partition import Partition


def tiny_config(**changes) -> DisentTalkConfig:
    base = dict(num_dims=12, k_lip=3, k_eye=2, d_model=24, head_dim=4, region_heads=(2, 2, 2),
                n_layers=2, audio_dim=6, timesteps=50, window=16, batch_size=8, lr=3e-3,
                ema_decay=0.9)
    base.update(changes)
    return DisentTalkConfig(**base)


def tiny_model(seed: int = 0, **changes) -> DisentTalkDenoiser:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DisentTalkDenoiser(tiny_config(**changes))


def synthetic_clips(num_clips: int, frames: int, num_dims: int = 12, audio_dim: int = 6,
                    lip_dims=(0, 1, 2), seed: int = 0) -> list[dict]:
    """Clips whose lip dims are a fixed nonlinear function of the same frame's two audio rows
    (the same function for every seed); the other dims move slowly, independently of the audio."""
    w = torch.randn(audio_dim, len(lip_dims), generator=torch.Generator().manual_seed(1234))
    w = w / audio_dim ** 0.5
    g = torch.Generator().manual_seed(seed)
    clips = []
    for _ in range(num_clips):
        audio = torch.randn(2 * frames, audio_dim, generator=g)
        per_frame = audio.view(frames, 2, audio_dim).mean(1)
        exp = torch.zeros(frames, num_dims)
        t = torch.arange(frames, dtype=torch.float32)[:, None]
        freq = 0.05 + 0.1 * torch.rand(1, num_dims, generator=g)
        phase = 6.28 * torch.rand(1, num_dims, generator=g)
        exp[:] = torch.sin(freq * t + phase)
        exp[:, list(lip_dims)] = 2.0 * torch.tanh(2.0 * per_frame @ w)
        clips.append({"exp": exp, "audio": audio})
    return clips


class GaussianProcessDenoiser(nn.Module):
    """The exact eps-predictor for motion x0 ~ GP(0, k) per dim, k(i, j) = exp(-(i-j)^2 / 2l^2).

    E[x0 | z_t] = sqrt(a) K (a K + (1-a) I)^-1 z_t, eps = (z_t - sqrt(a) E[x0|z_t]) / sqrt(1-a).
    It ignores the audio, exposes the denoiser's call signature (encode_audio, forward,
    config, partition) and records the largest window it was ever called with.
    """

    def __init__(self, config: DisentTalkConfig, length_scale: float = 6.0):
        super().__init__()
        self.config = config
        self.partition = Partition.contiguous(config.num_dims, config.k_lip, config.k_eye)
        self.length_scale = length_scale
        self.dummy = nn.Parameter(torch.zeros(1))
        from disenttalk_fast.diffusion import NoiseSchedule
        self.abar = NoiseSchedule.create(config.schedule, config.timesteps).alphas_cumprod.double()
        self.max_frames_seen = 0
        self.max_batch_seen = 0

    def encode_audio(self, audio, null_mask=None, *, num_frames=None, batch=None) -> AudioCache:
        if audio is None:
            shape = (batch, 2 * num_frames, 1, 2)
            return AudioCache((torch.zeros(shape),), (torch.zeros(shape),))
        b, rows, _ = audio.shape
        return AudioCache((torch.ones(b, rows, 1, 2),), (torch.ones(b, rows, 1, 2),))

    def forward(self, z_t, t, audio, null_mask=None):
        b, L, _ = z_t.shape
        self.max_frames_seen = max(self.max_frames_seen, L)
        self.max_batch_seen = max(self.max_batch_seen, b)
        i = torch.arange(L, dtype=torch.float64)
        K = torch.exp(-(i[:, None] - i[None]) ** 2 / (2 * self.length_scale ** 2))
        out = torch.empty_like(z_t)
        for row in range(b):
            a = self.abar[int(t[row])]
            M = a.sqrt() * K @ torch.linalg.inv(a * K + (1 - a) * torch.eye(L, dtype=torch.float64))
            x0 = (M @ z_t[row].double())
            out[row] = ((z_t[row].double() - a.sqrt() * x0) / (1 - a).sqrt()).float()
        return out
