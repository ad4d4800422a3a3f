"""`FastDenoiser`: the reference denoiser running on the fused kernels — a drop-in.

Same constructor config, same parameters and state_dict keys (it *is* the reference module
class with another backend), so weights load in both directions and `from_reference` /
`to_reference` convert in place of a retrain. The backend is "auto" by default: per call, the
C++ kernels for fp32 CPU tensors and, for CUDA tensors, the Triton kernels where they can run the
model (else the CUDA kernels; see `auto_op_backend`); DISENTTALK_BACKEND overrides. Or an explicit
"cpu" | "cuda" | "triton".
"""

from __future__ import annotations

import functools
import os

import torch.nn.functional as F

from disenttalk_fast import backends, ops
from disenttalk_fast._torch import torch
from disenttalk_fast.config import DisentTalkConfig
from disenttalk_fast.model import cpu_step
from disenttalk_fast.model.audio_cache import AudioCache
from disenttalk_fast.model.blocks import DenoiserBlock
from disenttalk_fast.model.denoiser import DisentTalkDenoiser
from disenttalk_fast.ops.region_attention import HEAD_DIMS
from disenttalk_fast.partition import Partition

FAST_BACKENDS = ("auto", "cpu", "cuda", "triton")


class FastDenoiser(DisentTalkDenoiser):
    def __init__(self, config: DisentTalkConfig, partition: Partition | None = None,
                 backend: str = "auto"):
        if backend not in FAST_BACKENDS:
            raise backends.BackendError(
                f"FastDenoiser: backend must be one of {', '.join(FAST_BACKENDS)}, got "
                f"'{backend}' (DisentTalkDenoiser is the reference)")
        super().__init__(config, partition, backend=backend)

    @classmethod
    def from_reference(cls, model: DisentTalkDenoiser, backend: str = "auto") -> "FastDenoiser":
        """A FastDenoiser with `model`'s config, partition, weights, device, dtype and mode."""
        if not isinstance(model, DisentTalkDenoiser):
            raise TypeError(f"FastDenoiser.from_reference: expected a DisentTalkDenoiser, got "
                            f"{type(model).__name__}")
        fast = cls(model.config, model.partition, backend)
        _copy_into(fast, model)
        return fast

    def to_reference(self) -> DisentTalkDenoiser:
        ref = DisentTalkDenoiser(self.config, self.partition, backend="reference")
        _copy_into(ref, self)
        return ref

    def forward_guided(self, z_t, t, cache):
        """Both guidance branches (`forward(..., guided=True)`; see
        `DisentTalkDenoiser.forward_guided`). The two halves of
        the batch share z_t and t, so up to the first cross-attention they are the same numbers:
        the first block's pre-norm, region attention, W_f and convolutions (about a twelfth of a
        step) run on B rows, not 2B. Any cache that is not [audio rows; null rows] with the null
        rows covering the second half runs the plain batch of 2B."""
        self._check_z(z_t)
        B = z_t.shape[0]
        t = self._check_t(t, B, z_t.device)
        split = cache.null_split() if isinstance(cache, AudioCache) else None
        if (split is None or split > B or cache.batch != 2 * B
                or cache.num_layers != len(self.blocks)):
            return super().forward_guided(z_t, t, cache)
        self._check_cache(cache, 2 * B, z_t.shape[1])
        temb = F.silu(self.time_embed(t))
        h = self.project_input(z_t.to(self.out_proj.weight.dtype))
        return self.run_blocks(h, temb, cache, halves=True)

    def run_blocks(self, h, temb, cache, halves: bool = False):
        """As the reference, but each block's FiLM residual add is fused with the next block's
        pre-norm (and the last one with the output norm): `ops.film_norm` writes the new residual
        stream and its normalised copy in one pass instead of film + a LayerNorm re-read.

        With classifier-free guidance the cache's last rows are the null audio (`null_rows`):
        those rows skip the cross-attention (see `body_with_null_rows`). `halves`: h and temb
        hold B rows that stand for both halves of the cache's batch of 2B (`forward_guided`);
        the first block doubles them after its audio-independent part.

        fp32 CPU inference runs the same computation (equal to rounding) through `cpu_step`,
        which launches the C++ kernels without the per-op Python of this generic path."""
        if cpu_step.applies(self, h, temb, cache, halves):
            return cpu_step.run_blocks(self, h, temb, cache, halves)
        backend = self.op_backend(h.device)
        split = cache.null_split()
        skip_null = split is not None and split < cache.batch
        x = self.blocks[0].norm(h)
        for i, (block, k, v) in enumerate(zip(self.blocks, cache.keys, cache.values)):
            if halves and i == 0:
                final, gamma, beta = body_with_null_rows(block, x, temb, k, v, split, backend,
                                                         halves=True)
                h, temb = h.repeat(2, 1, 1), temb.repeat(2, 1)
            elif skip_null:
                final, gamma, beta = body_with_null_rows(block, x, temb, k, v, split, backend)
            else:
                final, gamma, beta = block.body(x, temb, k, v, backend)
            nxt = self.blocks[i + 1].norm if i + 1 < len(self.blocks) else None
            if nxt is not None:
                weight, bias, eps, groups = nxt.weight, nxt.bias, nxt.eps, nxt.widths
            else:
                norm = self.out_norm
                weight, bias, eps, groups = norm.weight, norm.bias, norm.eps, None
            h, x = ops.film_norm(final, gamma, beta, h.to(final.dtype), weight.to(final.dtype),
                                 bias.to(final.dtype), eps, groups, backend=backend)
        return self.out_proj(x)

    def op_backend(self, device) -> str:
        """The backend this model asks its ops for on `device` (see `auto_op_backend`)."""
        if self.backend != "auto":
            return self.backend
        return auto_op_backend(device, self.config.head_dim)

    def resolved_backend(self) -> str:
        """The backend the ops resolve to for this model's current device and dtype."""
        param = next(self.parameters())
        return backends.resolve(self.op_backend(param.device), param.device, param.dtype)


def auto_op_backend(device, head_dim: int) -> str:
    """What a FastDenoiser with backend "auto" asks its ops for on `device`.

    On a CUDA device, Triton when it can run the model: triton installed, a head_dim the Triton
    attention takes, compute capability 8.0 or newer and the 99 KiB of shared memory per block
    its smallest block plans are sized for (RTX 30xx / 40xx / 50xx, L4 / L40S, A100, H100; the
    plans narrow to the device, see kernels/shared_memory.py). On an H200 the Triton kernels
    sampled whole clips 1.3-1.4x (fp32) and 3-5.5x (bf16) faster than the CUDA ones
    (benchmarks/results/2026-11-26-h200.md), whose attention runs one thread per query without
    tensor cores. A head_dim the compiled attention kernels are not built for (on the CPU or a
    CUDA device): "reference", so the model runs on the reference ops instead of stopping at its
    first attention. Otherwise, and whenever DISENTTALK_BACKEND is set, "auto": the ops' own
    rule."""
    if os.environ.get(backends.ENV_VAR):
        return "auto"
    if device.type == "cuda" and head_dim in HEAD_DIMS["triton"] and _triton_runs_here(device):
        return "triton"
    if device.type in ("cpu", "cuda") and head_dim not in HEAD_DIMS[device.type]:
        return "reference"
    return "auto"




def _triton_runs_here(device) -> bool:
    index = device.index if device.index is not None else torch.cuda.current_device()
    return _triton_runs_on(index)


@functools.lru_cache(maxsize=None)
def _triton_runs_on(index: int) -> bool:
    if not backends.triton_available():
        return False
    props = torch.cuda.get_device_properties(index)
    return ((props.major, props.minor) >= (8, 0)
            and getattr(props, "shared_memory_per_block_optin", 0) >= _smallest_triton_limit())


def _smallest_triton_limit() -> int:
    """Shared memory per block (bytes) of an sm_86 / sm_89 card, the smallest the Triton block
    plans are sized for (A100: 166,912; H100 / H200: 232,448)."""
    from disenttalk_fast._triton.shared_memory import SMALLEST_LIMIT

    return SMALLEST_LIMIT


def body_with_null_rows(block: DenoiserBlock, x, temb, audio_k, audio_v, n_audio: int,
                        backend: str, halves: bool = False):
    """`block.body` for a batch whose rows [n_audio, B) attend to the null audio only.

    A null row's keys and values are the same at every audio position, so its softmax weights
    sum to 1 over one repeated value: the cross-attention output is that value v_null for every
    frame, whatever the query. Those rows therefore skip W_q and the attention, and their share
    of W_o [F_conv ; F_attn] is the constant W_o[:, d:] v_null. Splitting W_o into its F_conv and
    F_attn halves also drops the concatenation. Same result as `block.body` up to rounding.

    halves: x and temb hold B/2 rows standing for both halves of the batch (guidance's [z; z],
    n_audio <= B/2): the audio-independent part runs on them once and is then doubled.

    `cpu_step._block_final` and csrc/denoiser_cpu.cpp are the same computation for fp32 CPU
    inference, without the module and op calls; a change here belongs there too (test_cpu_step
    compares the three loops).
    """
    s, f_conv = block.spatial_temporal(x, backend)
    dtype = f_conv.dtype
    weight = block.out_fuse.weight.to(dtype)
    d = x.shape[-1]
    w_conv, w_attn = weight[:, :d], weight[:, d:]
    final = F.linear(f_conv, w_conv, block.out_fuse.bias.to(dtype))
    gamma, beta = block.film(temb).chunk(2, dim=-1)
    if halves:
        final, gamma, beta = final.repeat(2, 1, 1), gamma.repeat(2, 1), beta.repeat(2, 1)
    if n_audio > 0:
        L = s.shape[1]
        q = block.cross_q(s[:n_audio]).view(n_audio, L, block.n_heads, block.head_dim)
        f_attn = ops.causal_cross_attention(q, audio_k[:n_audio].to(q.dtype),
                                            audio_v[:n_audio].to(q.dtype), block.lookahead,
                                            backend=backend).reshape(n_audio, L, d)
        final[:n_audio] += F.linear(f_attn.to(dtype), w_attn)
    v_null = audio_v[n_audio, 0].reshape(1, d).to(dtype)
    final[n_audio:] += F.linear(v_null, w_attn)
    return final, gamma.to(dtype), beta.to(dtype)


def _copy_into(dst: DisentTalkDenoiser, src: DisentTalkDenoiser) -> None:
    param = next(src.parameters())
    dst.to(device=param.device, dtype=param.dtype)
    dst.load_state_dict(src.state_dict(), strict=True)
    dst.train(src.training)


def as_fast(model: DisentTalkDenoiser, backend: str = "auto") -> DisentTalkDenoiser:
    """The model itself when it already runs `backend`, else a FastDenoiser copy of it;
    backend "reference" returns a reference model."""
    if backend == "reference":
        return model.to_reference() if isinstance(model, FastDenoiser) else model
    if isinstance(model, FastDenoiser) and model.backend == backend:
        return model
    return FastDenoiser.from_reference(model, backend)


__all__ = ["FastDenoiser", "FAST_BACKENDS", "as_fast", "auto_op_backend"]
