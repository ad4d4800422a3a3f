"""Random training windows from in-memory clips.

The dataset protocol is deliberately small: any sequence of dicts
    {"exp": float32 (L, N) normalised expressions, "audio": float32 (2L, audio_dim) features}
(`disenttalk_fast.data.ClipDataset` yields exactly these). Every window of `window` frames of
every clip is equally likely (a clip is drawn with weight L - window + 1, then a start uniformly),
and all draws come from the caller's torch.Generator, so a run is reproducible from its state.
"""

from __future__ import annotations

from disenttalk_fast._torch import torch

ROWS_PER_FRAME = 2


def load_clips(clips, num_dims: int | None = None, audio_dim: int | None = None,
               source: str = "dataset") -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Validate and convert clips to (exp (L, N), audio (2L, D)) float32 tensor pairs."""
    out = []
    for i, clip in enumerate(clips):
        name = clip.get("name", f"clip {i}") if isinstance(clip, dict) else f"clip {i}"
        try:
            exp = torch.as_tensor(clip["exp"], dtype=torch.float32)
            audio = torch.as_tensor(clip["audio"], dtype=torch.float32)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{source}: {name}: each clip needs 'exp' and 'audio' arrays "
                             f"({exc})") from None
        if exp.dim() != 2 or exp.shape[0] < 1:
            raise ValueError(f"{source}: {name}: exp must be (frames, dims), got {tuple(exp.shape)}")
        if num_dims is not None and exp.shape[1] != num_dims:
            raise ValueError(f"{source}: {name}: exp has {exp.shape[1]} dims, the model {num_dims}")
        if audio.dim() != 2 or audio.shape[0] < ROWS_PER_FRAME * exp.shape[0]:
            raise ValueError(f"{source}: {name}: audio must be ({ROWS_PER_FRAME} x {exp.shape[0]} "
                             f"rows, dim), got {tuple(audio.shape)}")
        if audio_dim is not None and audio.shape[1] != audio_dim:
            raise ValueError(f"{source}: {name}: audio features have dim {audio.shape[1]}, the "
                             f"model expects {audio_dim}")
        if not (torch.isfinite(exp).all() and torch.isfinite(audio).all()):
            raise ValueError(f"{source}: {name}: holds NaN or inf")
        out.append((exp.contiguous(), audio[: ROWS_PER_FRAME * exp.shape[0]].contiguous()))
    if not out:
        raise ValueError(f"{source}: no clips")
    return out


class RandomWindows:
    def __init__(self, clips, window: int, batch_size: int, *, num_dims=None, audio_dim=None,
                 source: str = "dataset"):
        if window < 1 or batch_size < 1:
            raise ValueError(f"window and batch_size must be >= 1, got {window} and {batch_size}")
        pairs = load_clips(clips, num_dims, audio_dim, source)
        self.clips = [p for p in pairs if p[0].shape[0] >= window]
        if not self.clips:
            longest = max(p[0].shape[0] for p in pairs)
            raise ValueError(f"{source}: no clip has {window} frames for a training window "
                             f"(longest: {longest}); lower the window")
        self.window, self.batch_size = int(window), int(batch_size)
        self.weights = torch.tensor([c[0].shape[0] - window + 1 for c in self.clips],
                                    dtype=torch.float64)
        self.num_dims = self.clips[0][0].shape[1]
        self.audio_dim = self.clips[0][1].shape[1]

    def draw(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """exp (B, window, N) and audio (B, 2 window, D) on the CPU."""
        w = self.window
        idx = torch.multinomial(self.weights, self.batch_size, replacement=True,
                                generator=generator)
        u = torch.rand(self.batch_size, generator=generator, dtype=torch.float64)
        exp, audio = [], []
        for i, ui in zip(idx.tolist(), u.tolist()):
            e, a = self.clips[i]
            s = min(int(ui * (e.shape[0] - w + 1)), e.shape[0] - w)
            exp.append(e[s:s + w])
            audio.append(a[ROWS_PER_FRAME * s: ROWS_PER_FRAME * (s + w)])
        return torch.stack(exp), torch.stack(audio)
