"""`DisentTalkConfig`: every hyper-parameter of a DisentTalk model and its training, in one
JSON-serialisable dataclass that validates itself on construction.

Defaults are the paper's (N = 64, K_lip = 13, K_eye = 8, T = 400, local conv k = 5, dilations
1/2/4, CFG drop p = 0.1, lambda_sync = 0.01, Adam lr 1e-4, batch 32) and the model sizes of
DESIGN section 5 (d_model 256 = 8 heads of 32 channels: lip 3, eye 2, global 3; 6 blocks).
Where the paper is silent the choice is documented beside the field and in docs/model.md.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

FEATURE_TYPES = ("mel", "hubert")
SCHEDULES = ("linear", "cosine")
# The largest classifier-free guidance scale s (Eq. 9) accepted. The paper samples with s of 1-5;
# eps* = eps_uncond + s (eps_cond - eps_uncond) magnifies the branches' difference s-fold, and
# far past this the motion is that difference blown up (1e20 gives values of 1e21), not motion.
MAX_GUIDANCE = 100.0


# Ceilings far above any real model, so that a config read from a file (a checkpoint's metadata)
# cannot make the library build an absurd model: n_layers = 10**12 would hang, allocating.
SIZE_LIMITS = {"num_dims": 4096, "d_model": 16384, "head_dim": 1024, "n_layers": 1024,
               "local_kernel": 1023, "lookahead": 100_000, "audio_dim": 16384,
               "audio_layers": 1024, "audio_kernel": 1023, "timesteps": 100_000,
               "batch_size": 1_000_000, "window": 1_000_000}


@dataclass(frozen=True)
class DisentTalkConfig:
    # -- motion representation (DESIGN section 3) --------------------------------------------
    num_dims: int = 64             # N expression dims (BFM / Deep3DFaceRecon basis)
    k_lip: int = 13                # K_lip dims in the lip region
    k_eye: int = 8                 # K_eye dims in the eye region; global holds the rest

    # -- denoiser (DESIGN section 5) -----------------------------------------------------------
    d_model: int = 256             # hidden width = sum(region_heads) * head_dim
    head_dim: int = 32             # channels per attention head (even: rotary)
    region_heads: tuple[int, int, int] = (3, 2, 3)   # heads of the lip, eye, global regions
    n_layers: int = 6              # denoiser blocks
    dilations: tuple[int, ...] = (1, 2, 4)           # multi-dilation depthwise conv (Eq. 5)
    local_kernel: int = 5          # F_conv window k (Eq. 6)
    lookahead: int = 0             # frames of future audio each frame may attend to
    rope_base: float = 10000.0     # rotary position base of the region self-attention

    # -- audio encoder (DESIGN section 9) ------------------------------------------------------
    audio_dim: int = 80            # feature width: 80 log-mel bands, or 768 / 1024 for HuBERT
    feature_type: str = "mel"      # "mel" | "hubert": which front end produced the features
    audio_layers: int = 1          # light causal temporal layers after the audio projection
    audio_kernel: int = 3          # causal depthwise kernel (in 50 Hz rows) of those layers

    # -- diffusion and guidance (DESIGN section 6) ---------------------------------------------
    timesteps: int = 400           # T
    schedule: str = "linear"       # "linear" | "cosine"
    cfg_drop_prob: float = 0.1     # p of replacing audio by the learned null embedding
    guidance_scale: float = 2.0    # default s of Eq. 9 at sampling (1 = plain conditional)

    # -- training (DESIGN sections 7-8) --------------------------------------------------------
    lambda_sync: float = 0.01      # weight of L_sync in L_noise + lambda * L_sync
    lr: float = 1e-4               # Adam learning rate
    batch_size: int = 32
    window: int = 100              # frames per random training window (4 s at 25 fps)
    ema_decay: float = 0.999       # EMA of weights; 0 disables
    grad_clip: float = 1.0         # max global grad norm; 0 disables

    # -- ablation switches (used by evaluation) ------------------------------------------------
    disentangle: bool = True       # False: one region holding every dim and all heads
    temporal_conv: bool = True     # False: skip the multi-dilation conv (F_temp = F_spatial)

    def __post_init__(self):
        # JSON gives lists; keep tuples so the config stays hashable and compares equal.
        for name in ("region_heads", "dilations"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                object.__setattr__(self, name, tuple(value))
        self._validate()

    # -- validation ----------------------------------------------------------------------------
    def _validate(self) -> None:
        ints = ("num_dims", "k_lip", "k_eye", "d_model", "head_dim", "n_layers", "local_kernel",
                "lookahead", "audio_dim", "audio_layers", "audio_kernel", "timesteps",
                "batch_size", "window")
        for name in ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                _fail(f"{name} must be an integer, got {value!r}")
        for name in ("num_dims", "k_lip", "k_eye", "d_model", "head_dim", "n_layers",
                     "local_kernel", "audio_dim", "audio_kernel", "timesteps", "batch_size",
                     "window"):
            if getattr(self, name) < 1:
                _fail(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lookahead", "audio_layers"):
            if getattr(self, name) < 0:
                _fail(f"{name} must be >= 0, got {getattr(self, name)}")
        for name, limit in SIZE_LIMITS.items():
            if getattr(self, name) > limit:
                _fail(f"{name} = {getattr(self, name)} is beyond the supported {limit}")
        if self.k_lip + self.k_eye >= self.num_dims:
            _fail(f"k_lip + k_eye = {self.k_lip + self.k_eye} leaves no global dims of "
                  f"num_dims = {self.num_dims}")
        if self.head_dim % 2:
            _fail(f"head_dim must be even (rotary position), got {self.head_dim}")
        heads = self.region_heads
        if (not isinstance(heads, tuple) or len(heads) != 3
                or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in heads)):
            _fail(f"region_heads must be three integers >= 1 (lip, eye, global), got {heads!r}")
        if sum(heads) * self.head_dim != self.d_model:
            _fail(f"d_model = {self.d_model} must equal sum(region_heads) * head_dim = "
                  f"{sum(heads)} * {self.head_dim} = {sum(heads) * self.head_dim}")
        dil = self.dilations
        if (not isinstance(dil, tuple) or not dil
                or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dil)):
            _fail(f"dilations must be a non-empty list of integers >= 1, got {dil!r}")
        if max(dil) > 4096 or len(dil) > 64:
            _fail(f"dilations {dil!r} are beyond the supported 64 values of at most 4096")
        if self.local_kernel % 2 == 0:
            _fail(f"local_kernel must be odd ('same' padding), got {self.local_kernel}")
        if self.feature_type not in FEATURE_TYPES:
            _fail(f"feature_type must be one of {', '.join(FEATURE_TYPES)}, "
                  f"got {self.feature_type!r}")
        if self.schedule not in SCHEDULES:
            _fail(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        floats = ("rope_base", "cfg_drop_prob", "guidance_scale", "lambda_sync", "lr",
                  "ema_decay", "grad_clip")
        for name in floats:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                _fail(f"{name} must be a finite number, got {value!r}")
        if self.rope_base <= 0:
            _fail(f"rope_base must be > 0, got {self.rope_base}")
        if not 0.0 <= self.cfg_drop_prob < 1.0:
            _fail(f"cfg_drop_prob must be in [0, 1), got {self.cfg_drop_prob}")
        if not 0 <= self.guidance_scale <= MAX_GUIDANCE:
            _fail(f"guidance_scale must be in [0, {MAX_GUIDANCE:g}], got {self.guidance_scale}")
        if self.lambda_sync < 0:
            _fail(f"lambda_sync must be >= 0, got {self.lambda_sync}")
        if self.lr <= 0:
            _fail(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.ema_decay < 1.0:
            _fail(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.grad_clip < 0:
            _fail(f"grad_clip must be >= 0 (0 disables clipping), got {self.grad_clip}")
        for name in ("disentangle", "temporal_conv"):
            if not isinstance(getattr(self, name), bool):
                _fail(f"{name} must be true or false, got {getattr(self, name)!r}")

    # -- derived -------------------------------------------------------------------------------
    @property
    def k_global(self) -> int:
        return self.num_dims - self.k_lip - self.k_eye

    @property
    def n_heads(self) -> int:
        """Total attention heads (also the heads of the audio cross-attention)."""
        return sum(self.region_heads)

    def replace(self, **changes) -> "DisentTalkConfig":
        """A copy with some fields changed (validated like any new config)."""
        return dataclasses.replace(self, **changes)

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["region_heads"] = list(self.region_heads)
        d["dilations"] = list(self.dilations)
        return d

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> "DisentTalkConfig":
        """Build from a dict (e.g. parsed JSON). Unknown keys are an error (a typo would
        otherwise silently fall back to a default); missing keys take the default."""
        if not isinstance(d, dict):
            raise ValueError(f"{source}: expected a JSON object, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{source}: unknown config key(s) {', '.join(map(repr, unknown))}")
        try:
            return cls(**d)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str, source: str = "config") -> "DisentTalkConfig":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        return cls.from_dict(d, source)


def _fail(message: str):
    raise ValueError(f"DisentTalkConfig: {message}")
