"""`SyncExpert`: the parameter-space lip-sync expert of paper Eq. 10.

f_a encodes a window of 10 audio feature rows (5 frames at 50 Hz), f_m the same 5 frames of lip
dims; sync = (cos(f_a/|f_a|, f_m/|f_m|) + 1) / 2 in (0, 1), trained with BCE against y = 1
(aligned) / 0 (shifted or mismatched). Once trained it is frozen and gives L_sync to the
denoiser and the offset-sweep scores in `sync.metrics`.

The expert reads the model's normalised expressions; it records which dims are the lips
(`lip_dims`, the partition's lip region) so it can take full (.., N) sequences.
Saved as safetensors with a JSON header (no pickle).
"""

from __future__ import annotations

import json
import os

from torch import nn
from torch.nn import functional as F

from disenttalk_fast._atomic import atomic_output
from disenttalk_fast._checks import is_int
from disenttalk_fast._torch import torch

AUDIO_ROWS = 10      # feature rows per window (50 Hz)
FRAMES = 5           # motion frames per window (25 fps)
ROWS_PER_FRAME = 2
FORMAT = "disenttalk-sync-expert/1"


def check_lip_dims(lip_dims) -> tuple[int, ...]:
    """lip_dims as a tuple of distinct ints >= 0 (a negative one would index from the end, a
    float be truncated, a string be split into characters)."""
    if isinstance(lip_dims, (str, bytes)) or not hasattr(lip_dims, "__iter__"):
        raise ValueError(f"lip_dims must be a list of dim indices, got {lip_dims!r}")
    dims = list(lip_dims)
    if not dims or any(not is_int(i) or i < 0 for i in dims):
        raise ValueError(f"lip_dims must be a non-empty list of integers >= 0, got {dims}")
    if len(set(dims)) != len(dims):
        raise ValueError(f"lip_dims has duplicates: {dims}")
    return tuple(int(i) for i in dims)


def _mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, d_out))


class SyncExpert(nn.Module):
    def __init__(self, audio_dim: int, lip_dims, hidden: int = 128, embed_dim: int = 64):
        super().__init__()
        self.lip_dims = check_lip_dims(lip_dims)
        if audio_dim < 1 or hidden < 1 or embed_dim < 1:
            raise ValueError("SyncExpert: audio_dim, lip_dims, hidden and embed_dim must be non-empty")
        self.audio_dim, self.hidden, self.embed_dim = int(audio_dim), int(hidden), int(embed_dim)
        self.audio_norm = nn.LayerNorm(audio_dim)   # features (log-mel, HuBERT) have any scale
        self.f_a = _mlp(AUDIO_ROWS * audio_dim, hidden, embed_dim)
        self.f_m = _mlp(FRAMES * len(self.lip_dims), hidden, embed_dim)

    @property
    def k_lip(self) -> int:
        return len(self.lip_dims)

    # -- encoders ------------------------------------------------------------------------------
    def embed_audio(self, audio_win: torch.Tensor) -> torch.Tensor:
        """(B, 10, audio_dim) -> unit vectors (B, E)."""
        return F.normalize(self.f_a(self.audio_norm(audio_win).flatten(1)), dim=-1)

    def embed_lips(self, lip_win: torch.Tensor) -> torch.Tensor:
        """(B, 5, K_lip) -> unit vectors (B, E)."""
        return F.normalize(self.f_m(lip_win.flatten(1)), dim=-1)

    def forward(self, audio_win: torch.Tensor, lip_win: torch.Tensor) -> torch.Tensor:
        """Sync probability (B,) in (0, 1)."""
        cos = (self.embed_audio(audio_win) * self.embed_lips(lip_win)).sum(-1)
        return ((cos + 1) / 2).clamp(1e-6, 1 - 1e-6)

    def loss(self, audio_win, lip_win, y: torch.Tensor) -> torch.Tensor:
        """Eq. 10: BCE of the sync probability against y (B,) in {0, 1}."""
        return F.binary_cross_entropy(self(audio_win, lip_win), y.to(audio_win.dtype))

    def lips(self, exp: torch.Tensor) -> torch.Tensor:
        """Lip dims of (..., N) expressions; (..., K_lip) input is taken as lips already."""
        if exp.shape[-1] == self.k_lip:
            return exp
        if exp.shape[-1] <= max(self.lip_dims):
            raise ValueError(f"SyncExpert: expressions have {exp.shape[-1]} dims; the expert's lip "
                             f"dims go up to {max(self.lip_dims)}")
        return exp[..., list(self.lip_dims)]

    def freeze(self) -> "SyncExpert":
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
            p.grad = None
        return self

    # -- files ---------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        from safetensors.torch import save_file

        meta = {"format": FORMAT, "config": json.dumps(
            {"audio_dim": self.audio_dim, "lip_dims": list(self.lip_dims), "hidden": self.hidden,
             "embed_dim": self.embed_dim})}
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        _check_finite(path, tensors)   # load() refuses such a file
        with atomic_output(path) as tmp:   # checks the folder; never leaves a partial file
            save_file(tensors, tmp, metadata=meta)

    @classmethod
    def load(cls, path: str | os.PathLike, map_location="cpu") -> "SyncExpert":
        from safetensors import safe_open

        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such sync expert file")
        try:
            with safe_open(str(path), framework="pt", device=str(map_location)) as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as exc:  # safetensors raises several types for a bad header
            raise ValueError(f"{path}: not a readable safetensors file "
                             f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: not a DisentTalk sync expert (format "
                             f"{meta.get('format')!r}, expected {FORMAT!r})")
        try:
            cfg = json.loads(meta["config"])
            expert = cls(cfg["audio_dim"], cfg["lip_dims"], cfg["hidden"], cfg["embed_dim"])
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:
            raise ValueError(f"{path}: invalid sync expert config "
                             f"({str(exc).splitlines()[0]})") from None
        try:
            expert.load_state_dict(tensors)
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:
            raise ValueError(f"{path}: sync expert weights do not match its config "
                             f"({str(exc).splitlines()[0]})") from None
        _check_finite(path, tensors)
        return expert.freeze()


def _check_finite(path, tensors: dict) -> None:
    for k, v in tensors.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise ValueError(f"{path}: sync expert tensor {k!r} holds NaN or inf (a diverged "
                             f"training run?)")


# -- windows -----------------------------------------------------------------------------------
def all_windows(lips: torch.Tensor, audio: torch.Tensor):
    """Every aligned 5-frame window of a batch: lips (B, L, K), audio (B, >= 2L, D) ->
    (B, L-4, 5, K), (B, L-4, 10, D). Needs L >= 5."""
    L = lips.shape[1]
    if L < FRAMES:
        raise ValueError(f"sync windows need >= {FRAMES} frames, got {L}")
    lw = lips.unfold(1, FRAMES, 1).transpose(-1, -2)                       # (B, L-4, 5, K)
    aw = audio[:, : ROWS_PER_FRAME * L].unfold(1, AUDIO_ROWS, ROWS_PER_FRAME).transpose(-1, -2)
    return lw, aw                                                           # (B, L-4, 10, D)


class SyncLoss:
    """L_sync for the denoiser: BCE(sync(audio, lips of x0_hat), 1) over every 5-frame window of
    the rows that saw their audio (rows trained without audio are skipped: the unconditional
    model cannot be in sync). The expert is frozen; gradients flow into x0_hat only."""

    def __init__(self, expert: SyncExpert):
        self.expert = expert.freeze()

    def __call__(self, x0_pred: torch.Tensor, audio: torch.Tensor,
                 cond_rows: torch.Tensor | None = None) -> torch.Tensor:
        if cond_rows is not None:
            x0_pred, audio = x0_pred[cond_rows], audio[cond_rows]
        if x0_pred.shape[0] == 0:
            return x0_pred.sum() * 0.0
        lw, aw = all_windows(self.expert.lips(x0_pred), audio.to(x0_pred.dtype))
        prob = self.expert(aw.flatten(0, 1), lw.flatten(0, 1))
        return F.binary_cross_entropy(prob, torch.ones_like(prob))
