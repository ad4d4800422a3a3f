"""`GaussianDiffusion`: forward noising, the epsilon-prediction loss (paper Eq. 8) and
classifier-free training (audio replaced by the model's learned null embedding with p = 0.1).

All randomness comes from an explicit `torch.Generator` (never the global RNG), so a training
step is reproducible from the generator's state alone — that is what exact resume relies on.
"""

from __future__ import annotations

from dataclasses import dataclass

from disenttalk_fast._torch import torch
from disenttalk_fast.diffusion.schedule import NoiseSchedule


def randn(shape, generator: torch.Generator | None, device, dtype=torch.float32) -> torch.Tensor:
    """Standard normal noise drawn on the generator's device, then moved to `device`: the draw
    depends only on the seed and the generator's device, not on where the result is used."""
    gen_device = generator.device if generator is not None else torch.device("cpu")
    return torch.randn(shape, generator=generator, device=gen_device, dtype=dtype).to(device)


def _expand(coef: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) per-sample coefficient -> broadcastable against (B, ...)."""
    return coef.to(device=like.device, dtype=like.dtype).reshape(-1, *([1] * (like.dim() - 1)))


@dataclass
class TrainingLosses:
    loss: torch.Tensor          # L_noise + lambda * L_sync (what backward() is called on)
    noise_loss: torch.Tensor    # Eq. 8, mean over every element
    sync_loss: torch.Tensor | None
    x0_pred: torch.Tensor       # x0 recovered from the predicted noise (B, L, N)
    t: torch.Tensor
    null_mask: torch.Tensor


class GaussianDiffusion:
    """Epsilon-prediction Gaussian diffusion over (B, L, N) expression sequences."""

    def __init__(self, timesteps: int = 400, schedule: str = "linear", cfg_drop_prob: float = 0.1):
        if not 0.0 <= float(cfg_drop_prob) < 1.0:
            raise ValueError(f"cfg_drop_prob must be in [0, 1), got {cfg_drop_prob}")
        self.schedule = NoiseSchedule.create(schedule, int(timesteps))
        self.cfg_drop_prob = float(cfg_drop_prob)

    @classmethod
    def from_config(cls, config) -> "GaussianDiffusion":
        """Build from a DisentTalkConfig (timesteps, schedule, cfg_drop_prob)."""
        return cls(config.timesteps, config.schedule, getattr(config, "cfg_drop_prob", 0.1))

    @property
    def timesteps(self) -> int:
        return self.schedule.timesteps

    # -- the forward process -----------------------------------------------------------------
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """z_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise; t (B,) int, -1 meaning clean."""
        abar = _expand(self.schedule.alpha_bar(t.to(x0.device)), x0)
        return abar.sqrt() * x0 + (1.0 - abar).sqrt() * noise

    def predict_x0(self, z_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Invert q_sample given the (predicted) noise."""
        abar = _expand(self.schedule.alpha_bar(t.to(z_t.device)), z_t)
        return (z_t - (1.0 - abar).sqrt() * eps) / abar.sqrt()

    # -- training ------------------------------------------------------------------------------
    def draw_timesteps(self, batch: int, generator, device) -> torch.Tensor:
        gen_device = generator.device if generator is not None else torch.device("cpu")
        return torch.randint(0, self.timesteps, (batch,), generator=generator,
                             device=gen_device).to(device)

    def draw_null_mask(self, batch: int, generator, device) -> torch.Tensor:
        """(B,) bool: True where the audio is dropped for classifier-free training."""
        gen_device = generator.device if generator is not None else torch.device("cpu")
        u = torch.rand((batch,), generator=generator, device=gen_device)
        return (u < self.cfg_drop_prob).to(device)

    def training_losses(self, model, x0: torch.Tensor, audio: torch.Tensor | None, *,
                        generator: torch.Generator | None = None, t: torch.Tensor | None = None,
                        noise: torch.Tensor | None = None, null_mask: torch.Tensor | None = None,
                        sync_loss=None, lambda_sync: float = 0.0) -> TrainingLosses:
        """One training objective evaluation.

        x0 (B, L, N) normalised expressions, audio (B, 2L, audio_dim). t, noise and null_mask
        are drawn from `generator` when not given (in that order, so a fixed generator state
        gives a fixed draw). `sync_loss(x0_pred, audio, cond_rows) -> scalar` is the frozen
        expert's L_sync (see disenttalk_fast.sync.SyncLoss), weighted by `lambda_sync`.
        """
        if x0.dim() != 3:
            raise ValueError(f"x0 must be (batch, frames, dims), got shape {tuple(x0.shape)}")
        b = x0.shape[0]
        if t is None:
            t = self.draw_timesteps(b, generator, x0.device)
        if noise is None:
            noise = randn(x0.shape, generator, x0.device, x0.dtype)
        if null_mask is None:
            null_mask = self.draw_null_mask(b, generator, x0.device)
        z_t = self.q_sample(x0, t, noise)
        eps = model(z_t, t, audio, null_mask)
        noise_loss = torch.mean((eps.float() - noise.float()) ** 2)
        x0_pred = self.predict_x0(z_t, t, eps)
        loss, s_loss = noise_loss, None
        if sync_loss is not None and lambda_sync > 0 and audio is not None:
            s_loss = sync_loss(x0_pred, audio, ~null_mask)
            loss = noise_loss + lambda_sync * s_loss
        return TrainingLosses(loss, noise_loss, s_loss, x0_pred, t, null_mask)
