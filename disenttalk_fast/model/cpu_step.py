"""FastDenoiser's block stack on the C++ kernels, launched in one call.

`FastDenoiser.run_blocks` goes through the public ops (`ops.region_attention(...)`, ...) and the
blocks' modules. Each such call checks its arguments, resolves the backend, asks whether the
dispatcher can be skipped, casts every weight to the activation dtype and looks parameters up
through `nn.Module.__getattr__`: 20-70 µs of Python per call. With ~40 op calls and ~40
`nn.Linear` calls that is ~4.8 ms per guided step on the dev CPU whatever the number of frames,
a tenth of a 250-frame step and about 40% of the 16-frame steps streaming runs.

Here those decisions are taken once per model call (`applies`): fp32 CPU tensors, the C++
kernels built, eager mode with no autograd, shapes the kernels take. Then:
- where PyTorch's BLAS could be borrowed (`_native.borrow_blas`: MKL in the x86-64 Linux
  wheels), the first pre-norm and every block run as one C++ call,
  `denoiser_blocks_forward_cpu` (csrc/denoiser_cpu.cpp): the kernels and the projections (the
  same sgemm F.linear calls) with no Python in between, in buffers kept from one step to the
  next. `stack_params` gathers the parameter addresses on every call.
- elsewhere, `run_blocks_python`: the same loop in Python, each kernel one call of the op's own
  launcher (the function behind `ops.<op>` once its checks pass) and each projection one
  `F.linear` (or an in-place `addmm_`) on the parameters.
Both are the computation of `FastDenoiser.run_blocks`, equal to rounding; the tests compare the
three. Anything `applies` refuses (autograd, torch.compile, autocast, other dtypes or devices, a
forward hook on one of the blocks' modules that the generic loop calls) runs
`FastDenoiser.run_blocks`.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch.nn.modules import module as _torch_module

from disenttalk_fast import _bridge, _native, backends
from disenttalk_fast._torch import torch
from disenttalk_fast.model.audio_cache import AudioCache
from disenttalk_fast.ops import _eager

# The launchers behind the public ops (what each op runs once its checks pass).
from disenttalk_fast.ops.causal_cross_attention import _cca_cpu
from disenttalk_fast.ops.dwconv import MAX_DILATION, MAX_DILATIONS, _local_cpu, _mdd_cpu
from disenttalk_fast.ops.film import MAX_NORM_GROUPS, _film_norm_cpu
from disenttalk_fast.ops.region_attention import HEAD_DIMS, _region_attention_cpu


def applies(model, h: torch.Tensor, temb: torch.Tensor, cache, halves: bool = False) -> bool:
    """Whether `run_blocks` below may run this call (else `FastDenoiser.run_blocks` does, which
    also gives the one-line errors for inputs that do not fit together)."""
    if h.device.type != "cpu" or h.dtype != torch.float32 or torch.is_grad_enabled():
        return False
    if torch.is_autocast_enabled("cpu") or not isinstance(cache, AudioCache):
        return False
    # The C++ loop reads h, temb and the cache as raw fp32 memory of these shapes.
    if temb.device.type != "cpu" or temb.dtype != torch.float32 or h.dim() != 3:
        return False
    rows, L, d = h.shape
    if halves and cache.batch % 2:
        return False
    if rows != (cache.batch // 2 if halves else cache.batch) or tuple(temb.shape) != (rows, d):
        return False
    first = model.blocks[0]
    if (cache.keys[0].dim() != 4 or cache.keys[0].shape[1] != 2 * L
            or tuple(cache.keys[0].shape[2:]) != (first.n_heads, first.head_dim)
            or cache.num_layers != len(model.blocks)):
        return False
    backend = model.op_backend(h.device)
    if backend not in ("auto", "cpu") or not _native.cpu_available():
        return False
    if backends.resolve(backend, h.device, h.dtype) != "cpu":
        return False
    if model.out_proj.weight.dtype != torch.float32 or cache.keys[0].dtype != torch.float32:
        return False
    if first.head_dim not in HEAD_DIMS["cpu"]:
        return False
    dilations = first.tconv.dilations if first.tconv is not None else ()
    if len(dilations) > MAX_DILATIONS or any(d > MAX_DILATION for d in dilations):
        return False
    if len(first.norm.widths) > MAX_NORM_GROUPS:
        return False
    if _hooked(model):
        return False
    # Plain tensors in eager mode: no compile, tracing, dispatch mode or functorch transform.
    return _eager.direct_call_ok(h, temb, cache.keys[0], cache.values[0])


# The blocks' modules the generic loop calls (so their forward hooks run) and these loops do not
# (nor, in the one C++ call, the first block's pre-norm).
_CALLED_MODULES = ("attn_fuse", "tconv", "local_conv", "cross_q", "film")
# PyTorch's registries of hooks on every module (private; an empty stand-in if one goes away).
_GLOBAL_HOOKS = tuple(getattr(_torch_module, name, {}) for name in
                      ("_global_forward_hooks", "_global_forward_pre_hooks"))


def _hooked(model) -> bool:
    """Whether a forward hook (global, or on a module only the generic loop calls) is set: a
    ~10 µs check, where walking `model.modules()` would take ~130 µs per call."""
    if any(_GLOBAL_HOOKS):
        return True
    for block in model.blocks:
        modules = block._modules
        for name in _CALLED_MODULES:
            m = modules.get(name)
            if m is not None and (m._forward_hooks or m._forward_pre_hooks):
                return True
    # The first pre-norm: the Python loop calls it, the one C++ call computes it itself.
    norm = model.blocks[0].norm
    return bool(norm._forward_hooks or norm._forward_pre_hooks)


def run_blocks(model, h: torch.Tensor, temb: torch.Tensor, cache: AudioCache,
               halves: bool = False) -> torch.Tensor:
    """`FastDenoiser.run_blocks(h, temb, cache, halves)` for a call `applies` accepted: the whole
    block stack, the first pre-norm included, in one C++ call where PyTorch's BLAS could be
    borrowed (`stack_params`), else `run_blocks_python`."""
    params = stack_params(model, cache) if _native.blas_available() else None
    if params is None:
        return run_blocks_python(model, h, temb, cache, halves)
    split = cache.null_split()
    batch = cache.batch
    # Rows [0, n_audio) attend to their audio; the rest are null rows (see body_with_null_rows).
    n_audio = batch if split is None else split
    # `tensors` stays referenced until the call returns: the GIL is released during it, and a
    # parameter replaced meanwhile by another thread must not free the memory being read.
    shape, addresses, eps, groups, tensors = params
    _, L, d = h.shape
    h, temb = h.contiguous(), temb.contiguous()
    out = h.new_empty((batch, L, d))
    _native.require_cpu().denoiser_blocks_forward_cpu(
        *shape, addresses, eps, groups, h.data_ptr(), temb.data_ptr(), out.data_ptr(), batch, L,
        cache.keys[0].shape[1], n_audio, halves, _bridge.num_threads())
    del tensors
    return model.out_proj(out)


def run_blocks_python(model, h: torch.Tensor, temb: torch.Tensor, cache: AudioCache,
                      halves: bool = False) -> torch.Tensor:
    """`run_blocks` with the Python loop (each kernel and projection launched from Python): the
    fallback where no BLAS can be borrowed, and what the tests compare the one-call loop with."""
    split = cache.null_split()
    batch = cache.batch
    n_audio = batch if split is None else split
    x = model.blocks[0].norm(h)
    if halves:  # the first block's audio-independent part runs on the B shared rows only
        h = h.repeat(2, 1, 1)
    blocks = model.blocks
    for i, block in enumerate(blocks):
        final = _block_final(block, x, cache.keys[i], cache.values[i], n_audio, batch)
        # FiLM of the distinct timestep rows only (with guidance the halves share t): one row
        # takes MKL's matrix-vector path, 77 against 95 µs a call here with the weight cold.
        film = F.linear(temb, block.film.weight, block.film.bias)
        if halves:
            film = film.repeat(2, 1)
        gamma, beta = film.chunk(2, dim=-1)
        norm = blocks[i + 1].norm if i + 1 < len(blocks) else model.out_norm
        groups = list(norm.widths) if i + 1 < len(blocks) else [final.shape[-1]]
        h, x = _film_norm_cpu(final, gamma, beta, h, norm.weight, norm.bias, float(norm.eps),
                              groups)
    return model.out_proj(x)


def stack_params(model, cache: AudioCache):
    """What `denoiser_blocks_forward_cpu` takes besides the activations: (shape arguments, the
    addresses — the first pre-norm's [weight, bias], then one list per block in the order
    bindings.cpp documents —, every norm's eps and group widths (the first pre-norm's first),
    the tensors behind the addresses, for the caller to hold while they are in use). None when
    one of those tensors is not a contiguous fp32 CPU tensor or not a plain parameter: the
    Python loop runs then (it copies non-contiguous tensors, reads parametrized weights).

    Walked on every call through the modules' own parameter dicts (~0.1 ms for the default
    model), never cached: a parameter replaced or moved between two calls
    (load_state_dict(assign=True), .to()) must not leave a stale address behind, and in-place
    weight updates (an optimizer step, load_state_dict) are read live through the addresses."""
    blocks = model._modules["blocks"]._modules
    n = len(blocks)
    norms = [blocks[str(i)]._modules["norm"] for i in range(n)] + [model._modules["out_norm"]]
    # .get: a parametrized module (torch.nn.utils.parametrize: weight norm, LoRA) has no plain
    # "weight" parameter; None then sends the call to the Python loop, which reads module.weight.
    tensors = [_weight_bias(norms[0])]
    for i in range(n):
        m = blocks[str(i)]._modules
        qkv = [q._parameters for q in m["attn_qkv"]._modules.values()]
        local = m["local_conv"]._parameters
        conv = m.get("tconv")  # absent from _modules when None (the temporal-conv ablation)
        if conv is not None:
            dw = conv._parameters
            conv_params = [dw.get("dw_weight"), dw.get("dw_bias"),
                           *_weight_bias(conv._modules["pw"])]
        else:  # never read without a multi-dilation conv: any valid address
            conv_params = [local.get("bias")] * 4
        row = [q.get("weight") for q in qkv] + [q.get("bias") for q in qkv]
        row += _weight_bias(m["attn_fuse"])
        row += conv_params + [local.get("weight"), local.get("bias")]
        for name in ("cross_q", "out_fuse", "film"):
            row += _weight_bias(m[name])
        row += _weight_bias(norms[i + 1]) + [cache.keys[i], cache.values[i]]
        tensors.append(row)
    addresses = []
    f32 = torch.float32
    for row in tensors:
        ptrs = []
        for t in row:
            # The C++ reads raw fp32 memory: anything else (a block left in another dtype) must
            # never reach it.
            if t is None or t.dtype is not f32 or not t.is_cpu or not t.is_contiguous():
                return None
            ptrs.append(t.data_ptr())
        addresses.append(ptrs)
    eps = [float(nm.eps) for nm in norms]
    first = blocks["0"]
    d = first.dim
    # The out norm is one LayerNorm over all d channels; the blocks' pre-norms are per region.
    groups = [list(nm.widths) for nm in norms[:-1]] + [[d]]
    dilations = list(first.tconv.dilations) if first.tconv is not None else []
    shape = (d, first.head_dim, float(first.rope_base), list(norms[0].widths), dilations,
             first.local_conv.weight.shape[1], int(first.lookahead))
    return shape, addresses, eps, groups, tensors


def _weight_bias(module) -> list:
    p = module._parameters
    return [p.get("weight"), p.get("bias")]


def _block_final(block, x, audio_k, audio_v, n_audio: int, batch: int) -> torch.Tensor:
    """W_o [F_conv ; F_attn] + b_o of one block for the `batch` rows; x holds them all, or
    (first block with guidance) the batch / 2 rows both halves share. `fast.body_with_null_rows`
    without the module and op calls (and with n_audio = batch for a cache whose null rows are
    unknown, where the generic loop runs `block.body`)."""
    qkv = list(block.attn_qkv.values())
    a = _region_attention_cpu(x, [m.weight for m in qkv], [m.bias for m in qkv],
                              block.head_dim, float(block.rope_base))
    s = F.linear(a, block.attn_fuse.weight, block.attn_fuse.bias)
    if block.tconv is not None:
        conv = block.tconv
        s = _mdd_cpu(s, conv.dw_weight, conv.dw_bias, conv.pw.weight, conv.pw.bias,
                     list(conv.dilations))
    f_conv = _local_cpu(s, block.local_conv.weight, block.local_conv.bias)
    d = x.shape[-1]
    weight = block.out_fuse.weight
    w_conv, w_attn = weight[:, :d], weight[:, d:]
    final = F.linear(f_conv, w_conv, block.out_fuse.bias)
    if final.shape[0] != batch:
        final = final.repeat(batch // final.shape[0], 1, 1)
    if n_audio > 0:
        L = x.shape[1]
        q = F.linear(s[:n_audio], block.cross_q.weight, block.cross_q.bias)
        f_attn = _cca_cpu(q.view(n_audio, L, block.n_heads, block.head_dim), audio_k[:n_audio],
                          audio_v[:n_audio], int(block.lookahead))
        final[:n_audio].view(n_audio * L, d).addmm_(f_attn.view(n_audio * L, d), w_attn.t())
    if n_audio < batch:
        # A null row's cross-attention output is its value row, whatever the query.
        final[n_audio:] += F.linear(audio_v[n_audio, 0].reshape(1, d), w_attn)
    return final


__all__ = ["applies", "run_blocks", "run_blocks_python", "stack_params"]
