"""One denoiser block (paper Sec. III-B, DESIGN section 5) and its small parameter holders.

Every fused op is called through `disenttalk_fast.ops.<op>(..., backend=backend)`; the modules
here only own parameters (plain nn.Linear / nn.Parameter with stable state_dict names), so a
fast model swaps kernels by passing another backend, never by changing the module.

Block, with h the residual stream (B, L, d) whose channels are grouped by region:
    x      = RegionLayerNorm(h)                                 pre-norm, per region group
    s      = W_f . region_attention(x)                          Eq. 4
    s      = pw . [dwconv_d(s) for d in dilations]              Eq. 5 (skipped when ablated)
    F_conv = local_dwconv(s)  (k = 5)                           Eq. 6, local path
    F_attn = causal_cross_attention(W_q s, K_audio, V_audio)    Eq. 6, audio path
    final  = W_o [F_conv ; F_attn] + b_o                        Eq. 6
    h'     = h + gamma(t) * final + beta(t)                     Eq. 7 fused with the residual
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn.functional as F
from torch import nn

from disenttalk_fast import ops
from disenttalk_fast._torch import torch


def _like(x: torch.Tensor):
    """Cast to x's dtype: the ops take one dtype, and under autocast the activations (bf16 / fp16
    from nn.Linear) and the fp32 parameters differ. A no-op (no copy) when they already match."""
    return lambda t: t.to(x.dtype)


class RegionLayerNorm(nn.Module):
    """LayerNorm applied to each region's channel group separately (one affine over all d).

    Normalising per group (rather than over all d channels) keeps the region attention honest:
    a region's heads see nothing of another region's channels, not even through the statistics.
    """

    def __init__(self, widths: Sequence[int], eps: float = 1e-5):
        super().__init__()
        self.widths = tuple(widths)
        self.eps = eps
        dim = sum(self.widths)
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(self.widths) == 1:
            return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)
        outs, start = [], 0
        for w in self.widths:
            sl = slice(start, start + w)
            outs.append(F.layer_norm(x[..., sl], (w,), self.weight[sl], self.bias[sl], self.eps))
            start += w
        return torch.cat(outs, dim=-1)


class MultiDilationConv(nn.Module):
    """Parameters of Eq. 5: per dilation a depthwise kernel-3 conv, then a pointwise n*d -> d."""

    def __init__(self, dim: int, dilations: Sequence[int]):
        super().__init__()
        self.dilations = tuple(dilations)
        n = len(self.dilations)
        bound = 1.0 / math.sqrt(3)          # nn.Conv1d's default for a depthwise kernel of 3
        self.dw_weight = nn.Parameter(torch.empty(n, dim, 3).uniform_(-bound, bound))
        self.dw_bias = nn.Parameter(torch.empty(n, dim).uniform_(-bound, bound))
        self.pw = nn.Linear(n * dim, dim)

    def forward(self, x: torch.Tensor, backend: str) -> torch.Tensor:
        c = _like(x)
        return ops.multi_dilation_dwconv(x, c(self.dw_weight), c(self.dw_bias), c(self.pw.weight),
                                         c(self.pw.bias), self.dilations, backend=backend)


class LocalConv(nn.Module):
    """Parameters of F_conv (Eq. 6): a depthwise conv with an odd window k."""

    def __init__(self, dim: int, kernel: int):
        super().__init__()
        bound = 1.0 / math.sqrt(kernel)
        self.weight = nn.Parameter(torch.empty(dim, kernel).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor, backend: str) -> torch.Tensor:
        c = _like(x)
        return ops.local_dwconv(x, c(self.weight), c(self.bias), backend=backend)


class DenoiserBlock(nn.Module):
    def __init__(self, regions: dict[str, int], head_dim: int, dilations: Sequence[int] | None,
                 local_kernel: int, lookahead: int, rope_base: float):
        """regions: region name -> channel width (in channel order); dilations None = no
        multi-dilation conv (the temporal_conv ablation)."""
        super().__init__()
        dim = sum(regions.values())
        self.dim, self.head_dim = dim, head_dim
        self.n_heads = dim // head_dim
        self.lookahead, self.rope_base = lookahead, rope_base
        self.norm = RegionLayerNorm(list(regions.values()))
        self.attn_qkv = nn.ModuleDict({name: nn.Linear(w, 3 * w) for name, w in regions.items()})
        self.attn_fuse = nn.Linear(dim, dim)                      # W_f
        self.tconv = MultiDilationConv(dim, dilations) if dilations else None
        self.local_conv = LocalConv(dim, local_kernel)
        self.cross_q = nn.Linear(dim, dim)
        self.cross_kv = nn.Linear(dim, 2 * dim)                   # applied once, in encode_audio
        self.out_fuse = nn.Linear(2 * dim, dim)                   # W_o, b_o
        self.film = nn.Linear(dim, 2 * dim)                       # gamma(t), beta(t)
        # FiLM starts as the identity modulation (gamma = 1, beta = 0) for every t.
        nn.init.zeros_(self.film.weight)
        with torch.no_grad():
            self.film.bias.copy_(torch.cat([torch.ones(dim), torch.zeros(dim)]))

    # -- pieces, exposed so tests (and a fast model) can reach them ---------------------------
    def region_attend(self, h: torch.Tensor, backend: str) -> torch.Tensor:
        """Pre-norm + region-grouped self-attention, before the fusion W_f: (B, L, d) with each
        region's heads in that region's channel group."""
        return self.attend_normed(self.norm(h), backend)

    def attend_normed(self, x: torch.Tensor, backend: str) -> torch.Tensor:
        """Region-grouped self-attention of the already normalised x."""
        c, qkv = _like(x), list(self.attn_qkv.values())
        return ops.region_attention(x, [c(m.weight) for m in qkv], [c(m.bias) for m in qkv],
                                    self.head_dim, self.rope_base, backend=backend)

    def audio_kv(self, audio_hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S, d) encoded audio -> this block's cross-attention keys, values (B, S, H, D)."""
        B, S, _ = audio_hidden.shape
        k, v = self.cross_kv(audio_hidden).view(B, S, 2, self.n_heads, self.head_dim).unbind(2)
        # Contiguous once per generation, so the kernels never copy them again at every step.
        return k.contiguous(), v.contiguous()

    def forward(self, h: torch.Tensor, temb: torch.Tensor, audio_k: torch.Tensor,
                audio_v: torch.Tensor, backend: str) -> torch.Tensor:
        """h: (B, L, d) residual stream; temb: (B, d) activated timestep embedding;
        audio_k, audio_v: (B, S, H, D) from `audio_kv`."""
        final, gamma, beta = self.body(self.norm(h), temb, audio_k, audio_v, backend)
        c = _like(final)
        return ops.film(final, gamma, beta, residual=c(h), backend=backend)

    def spatial_temporal(self, x: torch.Tensor, backend: str):
        """The audio-independent part of the body: s = the fused region attention after the
        multi-dilation conv (Eq. 4-5), and F_conv = local_dwconv(s) (Eq. 6)."""
        s = self.attn_fuse(self.attend_normed(x, backend))
        if self.tconv is not None:
            s = self.tconv(s, backend)
        return s, self.local_conv(s, backend)

    def body(self, x: torch.Tensor, temb: torch.Tensor, audio_k: torch.Tensor,
             audio_v: torch.Tensor, backend: str):
        """Everything between the pre-norm and the FiLM residual add: x is norm(h). Returns
        (final, gamma, beta), so a fast model can fuse the FiLM add with the next block's norm."""
        B, L, d = x.shape
        s, f_conv = self.spatial_temporal(x, backend)
        q = self.cross_q(s).view(B, L, self.n_heads, self.head_dim)
        c = _like(q)
        f_attn = ops.causal_cross_attention(q, c(audio_k), c(audio_v), self.lookahead,
                                            backend=backend).reshape(B, L, d)
        final = self.out_fuse(torch.cat([f_conv, f_attn.to(f_conv.dtype)], dim=-1))
        c = _like(final)
        gamma, beta = self.film(temb).chunk(2, dim=-1)
        return final, c(gamma), c(beta)
