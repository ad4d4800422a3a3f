"""`DisentTalkDenoiser`: the reference noise-prediction network eps_theta(Z_t, t, A) of DisentTalk.

    Z_t (B, L, N) noisy normalised expressions, original dim order
      -> per region r: Linear(K_r -> heads_r * head_dim) on Z_t[..., D_r]; concat -> h (B, L, d)
      -> n_layers x DenoiserBlock (region attention, multi-dilation conv, dual path, FiLM)
      -> LayerNorm -> Linear(d -> N): predicted eps (B, L, N), original dim order.

Audio features (B, 2L, audio_dim) at 50 Hz are encoded once per generation into an `AudioCache`
(every block's cross-attention keys/values); `forward` accepts that cache or raw features.
Classifier-free guidance replaces a sample's audio by a learned null embedding (`null_mask`).
All five fused ops go through `disenttalk_fast.ops` with `backend=self.backend`.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from disenttalk_fast import backends
from disenttalk_fast._torch import torch
from disenttalk_fast.config import DisentTalkConfig
from disenttalk_fast.model.audio_cache import AudioCache
from disenttalk_fast.model.audio_encoder import AudioEncoder
from disenttalk_fast.model.blocks import DenoiserBlock
from disenttalk_fast.model.embeddings import TimestepEmbedding
from disenttalk_fast.partition import REGIONS, Partition
from disenttalk_fast.reference.causal_cross_attention import ROWS_PER_FRAME


def model_regions(config: DisentTalkConfig,
                  partition: Partition) -> dict[str, tuple[tuple[int, ...], int]]:
    """Region name -> (expression dims, channel width), in channel order.

    With `config.disentangle` False (the ablation) there is one region "all" holding every dim
    in the original order and all heads.
    """
    if not config.disentangle:
        return {"all": (tuple(range(config.num_dims)), config.d_model)}
    return {name: (partition.region(name), heads * config.head_dim)
            for name, heads in zip(REGIONS, config.region_heads)}


def check_partition(config: DisentTalkConfig, partition: Partition) -> None:
    if not isinstance(partition, Partition):
        raise TypeError(f"partition must be a Partition, got {type(partition).__name__}")
    want = (config.k_lip, config.k_eye, config.k_global)
    if partition.num_dims != config.num_dims or partition.sizes != want:
        raise ValueError(f"partition has {partition.num_dims} dims split {partition.sizes} "
                         f"(lip, eye, global) but the config wants {config.num_dims} split {want}")


class DisentTalkDenoiser(nn.Module):
    def __init__(self, config: DisentTalkConfig, partition: Partition | None = None,
                 backend: str = "reference"):
        """partition None = `Partition.contiguous` of the config's sizes."""
        super().__init__()
        if not isinstance(config, DisentTalkConfig):
            raise TypeError(f"config must be a DisentTalkConfig, got {type(config).__name__}")
        if partition is None:
            partition = Partition.contiguous(config.num_dims, config.k_lip, config.k_eye)
        check_partition(config, partition)
        backends.check_name(backend, "DisentTalkDenoiser")
        self.config, self.partition, self.backend = config, partition, backend
        d = config.d_model
        regions = model_regions(config, partition)
        self.region_names = tuple(regions)

        # Region input projection; the index buffers are derived from the partition (saved in
        # the checkpoint metadata), so they stay out of the state_dict.
        self.in_proj = nn.ModuleDict({name: nn.Linear(len(dims), width)
                                      for name, (dims, width) in regions.items()})
        for name, (dims, _) in regions.items():
            self.register_buffer(f"_dims_{name}", torch.tensor(dims, dtype=torch.long),
                                 persistent=False)

        self.time_embed = TimestepEmbedding(d)
        self.audio_encoder = AudioEncoder(config.audio_dim, d, config.audio_layers,
                                          config.audio_kernel)
        self.null_audio = nn.Parameter(0.02 * torch.randn(d))   # learned "no audio" row
        widths = {name: width for name, (_, width) in regions.items()}
        self.blocks = nn.ModuleList(
            DenoiserBlock(widths, config.head_dim,
                          config.dilations if config.temporal_conv else None,
                          config.local_kernel, config.lookahead, config.rope_base)
            for _ in range(config.n_layers))
        self.out_norm = nn.LayerNorm(d)
        self.out_proj = nn.Linear(d, config.num_dims)
        # An untrained model predicts eps = 0 (loss 1 on unit noise), not a random large field.
        nn.init.zeros_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)

    # -- audio -----------------------------------------------------------------------------------
    @property
    def audio_receptive_field(self) -> int:
        """Feature rows of left context that reach one encoded audio row (beyond itself)."""
        return self.audio_encoder.receptive_field

    def encode_audio(self, audio: torch.Tensor | None, null_mask: torch.Tensor | None = None, *,
                     num_frames: int | None = None, batch: int | None = None) -> AudioCache:
        """Encode audio features once: projection + temporal layer + every block's keys/values.

        audio: (B, S, audio_dim) feature rows at 50 Hz (S = 2L for L frames), or None for "no
        audio" (then `batch` and `num_frames` give the size and every row is the null embedding).
        null_mask: (B,) bool; True rows use the learned null embedding instead of their audio
        (classifier-free guidance / training-time dropout).
        """
        dtype = self.null_audio.dtype
        if audio is None:
            if batch is None or num_frames is None or batch < 1 or num_frames < 1:
                raise ValueError("encode_audio: audio=None needs batch >= 1 and num_frames >= 1")
            rows = ROWS_PER_FRAME * num_frames
            hidden = self.null_audio.expand(batch, rows, -1)
            null_rows = (True,) * batch
        else:
            self._check_features(audio)
            hidden = self.audio_encoder(audio.to(dtype))
            # With a mask the flags would need the mask on the host (a device sync per training
            # step); training does not use them, so they stay unknown.
            null_rows = (False,) * audio.shape[0] if null_mask is None else None
            if null_mask is not None:
                mask = self._check_null_mask(null_mask, audio.shape[0], audio.device)
                hidden = torch.where(mask[:, None, None], self.null_audio.expand_as(hidden), hidden)
        keys, values = zip(*(block.audio_kv(hidden) for block in self.blocks))
        return AudioCache(keys, values, null_rows)

    def encode_audio_window(self, audio: torch.Tensor, start_frame: int, end_frame: int,
                            null_mask: torch.Tensor | None = None) -> AudioCache:
        """`encode_audio(audio, null_mask).window(start_frame, end_frame)` computed from only the
        rows that window needs (its own plus `audio_receptive_field` rows of left context), so a
        long input or a stream can be encoded window by window in bounded memory. Equal to the
        full encoding (the audio encoder is causal)."""
        self._check_features(audio)
        if not 0 <= start_frame < end_frame:
            raise ValueError(f"encode_audio_window: need 0 <= start_frame < end_frame, got "
                             f"[{start_frame}, {end_frame})")
        lo = ROWS_PER_FRAME * start_frame
        if lo >= audio.shape[1]:
            raise ValueError(f"encode_audio_window: frame {start_frame} starts at row {lo} but "
                             f"the audio has {audio.shape[1]} rows")
        hi = min(ROWS_PER_FRAME * end_frame, audio.shape[1])
        context = min(lo, self.audio_receptive_field)
        cache = self.encode_audio(audio[:, lo - context:hi], null_mask)
        if context == 0:
            return cache
        return AudioCache(tuple(k[:, context:] for k in cache.keys),
                          tuple(v[:, context:] for v in cache.values), cache.null_rows)

    def _null_kv(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Every block's (k, v) of the null row, each (1, 1, H, D)."""
        row = self.null_audio.view(1, 1, -1)
        return [block.audio_kv(row) for block in self.blocks]

    def _apply_null_mask(self, cache: AudioCache, null_mask: torch.Tensor) -> AudioCache:
        mask = self._check_null_mask(null_mask, cache.batch, cache.device)[:, None, None, None]
        keys, values = [], []
        for (nk, nv), k, v in zip(self._null_kv(), cache.keys, cache.values):
            keys.append(torch.where(mask, nk.to(k.dtype), k))
            values.append(torch.where(mask, nv.to(v.dtype), v))
        return AudioCache(keys, values)

    # -- denoising -------------------------------------------------------------------------------
    def project_input(self, z_t: torch.Tensor) -> torch.Tensor:
        """(B, L, N) original dim order -> (B, L, d) hidden, channels grouped by region."""
        return torch.cat([self.in_proj[name](z_t[..., getattr(self, f"_dims_{name}")])
                          for name in self.region_names], dim=-1)

    # Guidance calls model(z, t, cache, guided=True) on models that say they take it; wrappers
    # that forward attribute lookups (torch.compile's) say so too, others get the batch of 2B.
    accepts_guided = True

    def forward(self, z_t: torch.Tensor, t: torch.Tensor,
                audio: AudioCache | torch.Tensor | None,
                null_mask: torch.Tensor | None = None, *, guided: bool = False) -> torch.Tensor:
        """Predict the noise eps (B, L, N) in the original dim order.

        z_t: (B, L, N) noisy normalised expressions; t: (B,) timesteps in [0, T) (a scalar is
        broadcast; the range is not checked here so that no step forces a device sync);
        audio: an `AudioCache` from `encode_audio` (preferred: encode once per generation), raw
        features (B, 2L, audio_dim) (encoded here, e.g. in training), or None (no audio).
        null_mask: (B,) bool rows to run without audio (the learned null embedding).
        guided: both branches of classifier-free guidance in one call (`forward_guided`):
        `audio` is the batch-2B cache [conditional; null] and the result is eps (2B, L, N).
        """
        if guided:
            if null_mask is not None:
                raise ValueError("DisentTalkDenoiser: null_mask does not apply with guided=True "
                                 "(the cache's second half is the null audio)")
            return self.forward_guided(z_t, t, audio)
        self._check_z(z_t)
        B, L, _ = z_t.shape
        t = self._check_t(t, B, z_t.device)
        if isinstance(audio, AudioCache):
            cache = audio
            if null_mask is not None:
                cache = self._apply_null_mask(cache, null_mask)
        else:
            cache = self.encode_audio(audio, null_mask, num_frames=L, batch=B)
        self._check_cache(cache, B, L)
        dtype = self.out_proj.weight.dtype
        temb = F.silu(self.time_embed(t))
        h = self.project_input(z_t.to(dtype))
        return self.run_blocks(h, temb, cache)

    def forward_guided(self, z_t: torch.Tensor, t: torch.Tensor, cache: AudioCache) -> torch.Tensor:
        """What `forward(z_t, t, cache, guided=True)` runs: both branches of classifier-free
        guidance for z_t (B, L, N), `forward(cat([z_t, z_t]), cat([t, t]), cache)` with `cache`
        the batch-2B concatenation [conditional; null] that `GuidedEps` builds. Returns eps
        (2B, L, N). The reference runs exactly that; `FastDenoiser` runs the first block's
        audio-independent part (identical for both halves) once. Call it through the module
        (`model(..., guided=True)`) so hooks and `model.compile()` apply."""
        self._check_z(z_t)
        t = self._check_t(t, z_t.shape[0], z_t.device)
        return self.forward(torch.cat([z_t, z_t]), torch.cat([t, t]), cache)

    def run_blocks(self, h: torch.Tensor, temb: torch.Tensor, cache: AudioCache) -> torch.Tensor:
        """The blocks and the output head: hidden (B, L, d) -> eps (B, L, N)."""
        for block, k, v in zip(self.blocks, cache.keys, cache.values):
            h = block(h, temb, k, v, self.backend)
        return self.out_proj(self.out_norm(h))

    # -- input checks (one-line errors) ----------------------------------------------------------
    def _check_cache(self, cache: AudioCache, batch: int, frames: int) -> None:
        """A cache made by a model of this shape for `batch` rows of `frames` frames: the fused
        kernels read its keys and values as raw memory of exactly these sizes."""
        if not isinstance(cache, AudioCache):
            raise ValueError(f"DisentTalkDenoiser: audio must be an AudioCache, features or None, "
                             f"got {type(cache).__name__}")
        if cache.batch != batch or cache.num_layers != len(self.blocks):
            raise ValueError(f"DisentTalkDenoiser: audio cache holds batch {cache.batch} and "
                             f"{cache.num_layers} blocks, expected {batch} and {len(self.blocks)}")
        heads = tuple(cache.keys[0].shape[2:])
        block = self.blocks[0]
        if heads != (block.n_heads, block.head_dim):
            raise ValueError(f"DisentTalkDenoiser: audio cache holds {heads[0]} heads of "
                             f"{heads[1]} channels, this model {block.n_heads} of "
                             f"{block.head_dim} (a cache from another model's encode_audio?)")
        if cache.num_rows != ROWS_PER_FRAME * frames:   # 50 Hz audio rows, 2 per 25 fps frame
            raise ValueError(f"DisentTalkDenoiser: {frames} frames need "
                             f"{ROWS_PER_FRAME * frames} audio rows, the audio has "
                             f"{cache.num_rows}")

    def _check_z(self, z_t) -> None:
        if not isinstance(z_t, torch.Tensor) or z_t.dim() != 3 \
                or z_t.shape[-1] != self.config.num_dims or z_t.shape[1] < 1:
            got = tuple(z_t.shape) if isinstance(z_t, torch.Tensor) else type(z_t).__name__
            raise ValueError(f"DisentTalkDenoiser: z_t must be (B, L >= 1, "
                             f"{self.config.num_dims}), got {got}")
        if not z_t.is_floating_point():
            raise ValueError(f"DisentTalkDenoiser: z_t must be floating point, got {z_t.dtype}")

    @staticmethod
    def _check_t(t, batch: int, device) -> torch.Tensor:
        if not isinstance(t, torch.Tensor):
            t = torch.as_tensor(t, device=device)
        if t.dim() == 0 or t.shape == (1,):
            t = t.reshape(1).expand(batch)
        if t.shape != (batch,):
            raise ValueError(f"DisentTalkDenoiser: t must be (B,) = ({batch},), "
                             f"got {tuple(t.shape)}")
        return t

    def _check_features(self, audio) -> None:
        want = self.config.audio_dim
        if not isinstance(audio, torch.Tensor) or audio.dim() != 3 or audio.shape[-1] != want \
                or audio.shape[1] < 1:
            got = tuple(audio.shape) if isinstance(audio, torch.Tensor) else type(audio).__name__
            raise ValueError(f"DisentTalkDenoiser: audio features must be (B, S >= 1, {want}) "
                             f"({self.config.feature_type}), got {got}")

    @staticmethod
    def _check_null_mask(mask, batch: int, device) -> torch.Tensor:
        if not isinstance(mask, torch.Tensor) or mask.shape != (batch,):
            got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"DisentTalkDenoiser: null_mask must be a (B,) = ({batch},) bool "
                             f"tensor, got {got}")
        return mask.to(device=device, dtype=torch.bool)
