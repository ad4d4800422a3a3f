"""`AudioCache`: the audio side of a generation, computed once and reused by every diffusion step.

It holds, for each denoiser block, the keys and values that block's causal cross-attention reads
(B, S, H, D), S = audio feature rows at 50 Hz (2 per motion frame). It is an explicit value, not
state hidden in the module: samplers create it with `DisentTalkDenoiser.encode_audio`, slice it
per window, and concatenate the conditional and unconditional rows of classifier-free guidance.

`null_rows` records, per batch row, whether every audio row of it is the learned null embedding
(the unconditional branch of guidance). Such a row's keys and values are the same at every
position, so its cross-attention output is that one value whatever the query: a fast model
skips the attention for it. None means "not known" (e.g. a training batch with a random null
mask), never "no null rows".
"""

from __future__ import annotations

from dataclasses import dataclass

from disenttalk_fast._torch import torch
from disenttalk_fast.reference.causal_cross_attention import ROWS_PER_FRAME


@dataclass(frozen=True)
class AudioCache:
    keys: tuple[torch.Tensor, ...]     # per block: (B, S, H, D)
    values: tuple[torch.Tensor, ...]   # per block: (B, S, H, D)
    null_rows: tuple[bool, ...] | None = None   # per batch row: all-null audio (see above)

    def __post_init__(self):
        object.__setattr__(self, "keys", tuple(self.keys))
        object.__setattr__(self, "values", tuple(self.values))
        if self.null_rows is not None:
            object.__setattr__(self, "null_rows", tuple(bool(n) for n in self.null_rows))
        if not self.keys or len(self.keys) != len(self.values):
            raise ValueError(f"AudioCache: need one key and one value tensor per block, got "
                             f"{len(self.keys)} keys and {len(self.values)} values")
        shape = tuple(self.keys[0].shape)
        if len(shape) != 4 or shape[1] < 1:
            raise ValueError(f"AudioCache: keys must be (B, S >= 1, H, D), got {shape}")
        for i, (k, v) in enumerate(zip(self.keys, self.values)):
            if tuple(k.shape) != shape or tuple(v.shape) != shape:
                raise ValueError(f"AudioCache: block {i} keys {tuple(k.shape)} / values "
                                 f"{tuple(v.shape)} differ from block 0's {shape}")
        if self.null_rows is not None and len(self.null_rows) != shape[0]:
            raise ValueError(f"AudioCache: null_rows names {len(self.null_rows)} rows, the cache "
                             f"holds {shape[0]}")

    # -- shape ---------------------------------------------------------------------------------
    @property
    def batch(self) -> int:
        return self.keys[0].shape[0]

    @property
    def num_rows(self) -> int:
        return self.keys[0].shape[1]

    @property
    def num_layers(self) -> int:
        return len(self.keys)

    @property
    def dtype(self) -> torch.dtype:
        return self.keys[0].dtype

    @property
    def device(self) -> torch.device:
        return self.keys[0].device

    # -- slicing and batching ------------------------------------------------------------------
    def window(self, start_frame: int, end_frame: int) -> "AudioCache":
        """The audio rows of motion frames [start_frame, end_frame): rows [2*start, 2*end),
        clamped to the rows that exist. Views, no copy."""
        if not 0 <= start_frame < end_frame:
            raise ValueError(f"AudioCache.window: need 0 <= start_frame < end_frame, got "
                             f"[{start_frame}, {end_frame})")
        lo = ROWS_PER_FRAME * start_frame
        hi = min(ROWS_PER_FRAME * end_frame, self.num_rows)
        if lo >= self.num_rows:
            raise ValueError(f"AudioCache.window: frame {start_frame} starts at row {lo} but the "
                             f"cache holds {self.num_rows} rows")
        return self._with(tuple(k[:, lo:hi] for k in self.keys),
                          tuple(v[:, lo:hi] for v in self.values))

    def rows(self, index) -> "AudioCache":
        """Select batch rows (a slice, a list or tensor of indices, or a bool mask over B)."""
        keys = tuple(k[index] for k in self.keys)
        null = None
        if self.null_rows is not None:
            if isinstance(index, torch.Tensor):
                index = index.cpu()
            null = torch.tensor(self.null_rows)[index].reshape(-1).tolist()
        return AudioCache(keys, tuple(v[index] for v in self.values), null)

    def null_split(self) -> int | None:
        """n when rows [0, n) carry audio and rows [n, B) are all-null (n = B: no null row,
        n = 0: all null); None when that is unknown or the null rows are not a suffix."""
        if self.null_rows is None:
            return None
        n = self.null_rows.count(False)
        return n if not any(self.null_rows[:n]) else None

    @staticmethod
    def cat(caches: list["AudioCache"]) -> "AudioCache":
        """Concatenate along the batch (e.g. conditional and unconditional rows for guidance).
        All caches need the same number of blocks and rows."""
        caches = list(caches)
        if not caches:
            raise ValueError("AudioCache.cat: need at least one cache")
        first = caches[0]
        for c in caches[1:]:
            if c.num_layers != first.num_layers or c.keys[0].shape[1:] != first.keys[0].shape[1:]:
                raise ValueError(f"AudioCache.cat: caches differ ({c.num_layers} blocks of "
                                 f"{tuple(c.keys[0].shape[1:])} vs {first.num_layers} blocks of "
                                 f"{tuple(first.keys[0].shape[1:])})")
        null = None
        if all(c.null_rows is not None for c in caches):
            null = sum((c.null_rows for c in caches), ())
        return AudioCache(
            tuple(torch.cat([c.keys[i] for c in caches]) for i in range(first.num_layers)),
            tuple(torch.cat([c.values[i] for c in caches]) for i in range(first.num_layers)),
            null)

    def repeat(self, n: int) -> "AudioCache":
        """Tile the batch n times (rows 0..B-1, then again): cat([self] * n)."""
        if n < 1:
            raise ValueError(f"AudioCache.repeat: n must be >= 1, got {n}")
        return AudioCache.cat([self] * n)

    def contiguous(self) -> "AudioCache":
        """Dense copies of windowed views (once per window), so kernels need not copy them at
        every diffusion step."""
        return self._with(tuple(k.contiguous() for k in self.keys),
                          tuple(v.contiguous() for v in self.values))

    def to(self, *args, **kwargs) -> "AudioCache":
        return self._with(tuple(k.to(*args, **kwargs) for k in self.keys),
                          tuple(v.to(*args, **kwargs) for v in self.values))

    def _with(self, keys, values) -> "AudioCache":
        """Other tensors for the same batch rows (the null_rows flags carry over)."""
        return AudioCache(keys, values, self.null_rows)
