"""causal_cross_attention: every backend against the reference over edge-case shapes, the
causality property, opcheck, gradients through the recompute backward, and one-line errors."""

import re

import numpy as np
import pytest
import torch

from disenttalk_fast import backends, ops, reference
from disenttalk_fast._bridge import OpInputError
from op_testing import (SPLIT_TOL, assert_matches_reference, backend_cases, compile_triton_for_gpu,
                        cross_shapes, strided)

# (B, L, S, H, D, lookahead): L = 1, odd L, L and S not multiples of the tiles, S smaller than the
# horizon (S < 2 (L + lookahead)), the model's default H = 8, D = 32 at S = 2L, a head dim 64 and
# a head dim 16 case, lookahead 0 and 2, batch 1 and 3.
SHAPES = [
    (1, 1, 1, 1, 32, 0),
    (3, 7, 5, 3, 32, 2),
    (1, 65, 130, 2, 32, 0),
    (2, 33, 70, 3, 64, 2),
    (1, 100, 37, 8, 32, 0),
    (2, 250, 500, 8, 32, 0),
    (2, 70, 139, 4, 16, 2),
    (1, 9, 30, 2, 128, 1),
]
TINY = [  # for the Triton interpreter
    (1, 1, 1, 1, 16, 0),
    (3, 7, 5, 3, 32, 2),
    (2, 20, 41, 2, 32, 0),
    (1, 9, 30, 1, 64, 2),
]


def shape_id(shape):
    return "B{}-L{}-S{}-H{}-D{}-la{}".format(*shape)


def make(shape, dtype=torch.float32, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    B, L, S, H, D, _ = shape
    q = torch.randn(B, L, H, D, generator=g)
    k = torch.randn(B, S, H, D, generator=g)
    v = torch.randn(B, S, H, D, generator=g)
    return tuple(t.to(device=device, dtype=dtype) for t in (q, k, v))


@pytest.mark.parametrize("backend,device,dtype,shape",
                         cross_shapes(backend_cases(), SHAPES, TINY, shape_id))
def test_matches_reference(backend, device, dtype, shape):
    q, k, v = make(shape, dtype, device)
    lookahead = shape[-1]
    out = ops.causal_cross_attention(q, k, v, lookahead, backend=backend)
    assert out.dtype == dtype and out.device.type == device and out.shape == q.shape
    assert_matches_reference(out, reference.causal_cross_attention, (q, k, v, lookahead))


@pytest.mark.parametrize("backend,device,dtype", backend_cases())
def test_non_contiguous_inputs(backend, device, dtype):
    q, k, v = make((2, 9, 21, 2, 32, 1), dtype, device)
    # Typical model layout: heads split out of a wider projection, plus a strided time axis.
    qs, ks, vs = strided(q, dim=1), strided(k, dim=2), strided(v, dim=3)
    out = ops.causal_cross_attention(qs, ks, vs, 1, backend=backend)
    assert_matches_reference(out, reference.causal_cross_attention, (q, k, v, 1))


@pytest.mark.parametrize("backend,device,dtype", backend_cases())
def test_a_lookahead_past_every_row_is_full_attention(backend, device, dtype):
    """Any lookahead past the last row gives the same result, however large (2**62 overflowed
    the kernels' row arithmetic into NaN, 2**70 their int arguments)."""
    q, k, v = make((2, 5, 9, 2, 32, 0), dtype, device)
    full = lambda q, k, v, _lookahead: reference.causal_cross_attention(q, k, v, 9)  # noqa: E731
    for lookahead in (9, 10**6, 2**62, 2**70):
        out = ops.causal_cross_attention(q, k, v, lookahead, backend=backend)
        assert_matches_reference(out, full, (q, k, v, lookahead))


@pytest.mark.parametrize("backend,device,dtype", backend_cases(include_reference=True))
@pytest.mark.parametrize("lookahead", [0, 2])
def test_frames_never_see_rows_past_their_horizon(backend, device, dtype, lookahead):
    # Changing audio rows r >= r0 must leave frames with horizon 2 (j + 1 + lookahead) <= r0
    # bit-for-bit unchanged and change the frames that can see row r0.
    B, L, S, H, D = 2, 13, 26, 2, 32
    q, k, v = make((B, L, S, H, D, lookahead), dtype, device)
    out = ops.causal_cross_attention(q, k, v, lookahead, backend=backend)
    r0 = 11
    k2, v2 = k.clone(), v.clone()
    k2[:, r0:] = torch.randn_like(k2[:, r0:])
    v2[:, r0:] += 3.0
    out2 = ops.causal_cross_attention(q, k2, v2, lookahead, backend=backend)
    blind = [j for j in range(L) if 2 * (j + 1 + lookahead) <= r0]
    sees = [j for j in range(L) if 2 * (j + 1 + lookahead) > r0]
    assert blind and sees
    assert torch.equal(out2[:, blind], out[:, blind])
    assert (out2[:, sees] - out[:, sees]).abs().amax(dim=(0, 2, 3)).min() > 1e-3


@pytest.mark.parametrize("backend,device,dtype", backend_cases())
def test_gradients_match_reference(backend, device, dtype):
    if dtype != torch.float32:
        pytest.skip("gradients are compared in fp32")
    leaves = [t.requires_grad_() for t in make((2, 5, 9, 2, 32, 1), dtype, device)]
    ops.causal_cross_attention(*leaves, 1, backend=backend).square().sum().backward()
    got = [t.grad.clone() for t in leaves]
    ref = [t.detach().clone().requires_grad_() for t in leaves]
    reference.causal_cross_attention(*ref, 1).square().sum().backward()
    for a, e in zip(got, ref):
        torch.testing.assert_close(a, e.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op_name", ["causal_cross_attention", "causal_cross_attention_triton"])
def test_opcheck(op_name):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if op_name.endswith("triton") and not backends.triton_available():
        pytest.skip("triton not installed")
    op = getattr(torch.ops.disenttalk_fast, op_name).default
    q, k, v = make((2, 3, 5, 2, 16, 0), torch.float32, device)
    torch.library.opcheck(op, (q.requires_grad_(), k, v.requires_grad_(), 1))


def test_torch_compile_fullgraph():
    q, k, v = make((2, 6, 11, 2, 32, 0))
    fn = torch.compile(lambda *a: ops.causal_cross_attention(*a, 1, backend="cpu"),
                       fullgraph=True, backend="eager")
    torch.testing.assert_close(fn(q, k, v), reference.causal_cross_attention(q, k, v, 1),
                               rtol=3e-4, atol=1e-4)


def test_bad_inputs_give_one_line_errors():
    q, k, v = make((2, 4, 8, 2, 32, 0))
    with pytest.raises(OpInputError, match=r"causal_cross_attention: k has shape \(2, 8, 3, 32\)"):
        ops.causal_cross_attention(q, k.repeat(1, 1, 3, 1)[:, :, :3], v)
    with pytest.raises(OpInputError, match="lookahead must be >= 0, got -1"):
        ops.causal_cross_attention(q, k, v, -1)
    with pytest.raises(OpInputError, match="need at least one audio row"):
        ops.causal_cross_attention(q, k[:, :0], v[:, :0])
    with pytest.raises(OpInputError, match="backend 'cpu' supports head dim 16, 32, 64, 128; "
                                           "got 24"):
        ops.causal_cross_attention(q[..., :24], k[..., :24], v[..., :24], backend="cpu")
    with pytest.raises(OpInputError, match="backend 'cpu' supports float32"):
        ops.causal_cross_attention(q.half(), k.half(), v.half(), backend="cpu")


@pytest.mark.parametrize("backend,device,dtype", backend_cases(include_reference=True))
def test_lookahead_must_be_a_non_negative_int_on_every_backend(backend, device, dtype):
    # The kernels used to truncate a fractional lookahead that the reference's mask used as is.
    q, k, v = make((1, 3, 6, 2, 32, 0), dtype, device)
    for bad in (0.5, 1.0, None, True, "1"):
        with pytest.raises(OpInputError, match=re.escape(f"lookahead must be an int, got {bad!r}")):
            ops.causal_cross_attention(q, k, v, bad, backend=backend)
    with pytest.raises(OpInputError, match="lookahead must be >= 0, got -1"):
        ops.causal_cross_attention(q, k, v, -1, backend=backend)
    with pytest.raises(OpInputError, match="q must be a floating-point tensor, got torch.int64"):
        ops.causal_cross_attention(q.long(), k.long(), v.long(), backend=backend)
    out = ops.causal_cross_attention(q, k, v, np.int64(1), backend=backend)
    assert torch.equal(out, ops.causal_cross_attention(q, k, v, 1, backend=backend))


@pytest.mark.skipif(not backends.triton_available(), reason="triton not installed")
@pytest.mark.parametrize("dtype,arch,precision", [("fp16", 80, None), ("fp32", 90, "ieee"),
                                                  ("fp32", 90, "tf32")])
def test_triton_kernel_compiles_for_gpu(dtype, arch, precision):
    # The interpreter does not enforce the GPU compiler's rules (tl.dot shapes, shared memory);
    # this compiles the real GPU binary without needing a GPU.
    compile_triton_for_gpu(
        "disenttalk_fast._triton.flash_attention", "_flash_fwd",
        types={**{p: "*" + dtype for p in ("q_ptr", "k_ptr", "v_ptr", "o_ptr")},
               "scale_log2": "fp32"},
        constexprs=dict(CAUSAL=True, HD=32, DOT_PRECISION=precision,
                        BLOCK_M=64, BLOCK_N=64), arch=arch)


@pytest.mark.skipif(not backends.triton_available(), reason="triton not installed")
@pytest.mark.parametrize("arch,limit", [(90, 232448), (80, 166912), (86, 101376)])
@pytest.mark.parametrize("head_dim", [64, 128])
@pytest.mark.parametrize("precision", ["ieee", "tf32"])
def test_triton_attention_plan_fits_each_gpu(arch, limit, head_dim, precision):
    """The keys per step the fp32 plan picks for a device's shared-memory limit compile to a
    program that fits it (H100, A100, RTX 30xx / 40xx), within the size the plan's table
    assumes; half precision always fits at 64 keys."""
    from disenttalk_fast._triton import flash_attention

    block_n = flash_attention.flash_block_n(torch.float32, head_dim, limit)
    assert block_n == {232448: 64, 166912: 64 if head_dim == 64 else 32,
                       101376: 32 if head_dim == 64 else 16}[limit]
    meta = compile_triton_for_gpu(
        "disenttalk_fast._triton.flash_attention", "_flash_fwd",
        types={**{p: "*fp32" for p in ("q_ptr", "k_ptr", "v_ptr", "o_ptr")},
               "scale_log2": "fp32"},
        constexprs=dict(CAUSAL=False, HD=head_dim, DOT_PRECISION=precision,
                        BLOCK_M=flash_attention.BLOCK_M, BLOCK_N=block_n), arch=arch)
    assert 0 < meta["shared"] <= min(limit, flash_attention.FP32_BYTES.get((head_dim, block_n),
                                                                           60_000))
    assert flash_attention.flash_block_n(torch.bfloat16, head_dim, limit) == 64


def test_eager_fast_path_matches_dispatched_op(monkeypatch):
    """Plain tensors without autograd call the kernel directly; same result as the registered
    op (which autograd, torch.compile and opcheck still use)."""
    import importlib

    module = importlib.import_module("disenttalk_fast.ops.causal_cross_attention")
    real, direct_calls = module._cca_cpu, []
    monkeypatch.setattr(module, "_cca_cpu", lambda *a: direct_calls.append(1) or real(*a))
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 5, 2, 16, generator=g), torch.randn(2, 10, 2, 16, generator=g),
               torch.randn(2, 10, 2, 16, generator=g))
    direct = ops.causal_cross_attention(q, k, v, 1, backend="cpu")
    assert direct_calls == [1]
    assert torch.equal(direct, torch.ops.disenttalk_fast.causal_cross_attention(q, k, v, 1))
    ops.causal_cross_attention(q.clone().requires_grad_(), k, v, 1, backend="cpu")
    assert direct_calls == [1]


@pytest.mark.skipif(not backends.triton_available(), reason="triton not installed")
@pytest.mark.parametrize("head_dim,block_n", [(64, 32), (128, 16)])
def test_triton_attention_narrow_plans_match_reference(head_dim, block_n, monkeypatch):
    """The fewer keys per step a 99 KB GPU gets (RTX 30xx / 40xx) compute the same attention:
    run here with the device limit replaced, so those plans run under the interpreter too."""
    from disenttalk_fast._triton import flash_attention, shared_memory

    real, used = flash_attention._flash_fwd, []

    class Recording:
        def __getitem__(self, grid):
            def launch(*args, BLOCK_N, **kw):
                used.append(BLOCK_N)
                return real[grid](*args, BLOCK_N=BLOCK_N, **kw)
            return launch

    monkeypatch.setattr(flash_attention, "_flash_fwd", Recording())
    monkeypatch.setattr(flash_attention, "device_limit", lambda device: 101_376)
    monkeypatch.setattr(shared_memory, "_FITTING", {})
    device = "cuda" if torch.cuda.is_available() else "cpu"
    g = torch.Generator().manual_seed(5)
    # 20 frames see up to 42 of the 45 audio rows: several key steps, the last one partial.
    inputs = [torch.randn(1, 20, 1, head_dim, generator=g).to(device),
              torch.randn(1, 45, 1, head_dim, generator=g).to(device),
              torch.randn(1, 45, 1, head_dim, generator=g).to(device), 1]
    out = ops.causal_cross_attention(*inputs, backend="triton")
    assert used == [block_n]
    assert_matches_reference(out, reference.causal_cross_attention, inputs)


@pytest.mark.skipif(not backends.triton_available(), reason="triton not installed")
def test_triton_attention_that_does_not_fit_gives_a_one_line_error(monkeypatch):
    from triton.runtime.errors import OutOfResources

    from disenttalk_fast._triton import flash_attention, shared_memory

    tried = []

    class NoSharedMemory:
        def __getitem__(self, grid):
            def launch(*args, BLOCK_N, **kw):
                tried.append(BLOCK_N)
                raise OutOfResources(106_752, 101_376, "shared memory")
            return launch

    monkeypatch.setattr(flash_attention, "_flash_fwd", NoSharedMemory())
    monkeypatch.setattr(shared_memory, "_FITTING", {})
    device = "cuda" if torch.cuda.is_available() else "cpu"
    q, k, v = (torch.randn(1, 3, 2, 16, device=device), torch.randn(1, 6, 2, 16, device=device),
               torch.randn(1, 6, 2, 16, device=device))
    refusal = "attention: the Triton kernel does not fit this GPU"
    with pytest.raises(RuntimeError, match=refusal) as info:
        ops.causal_cross_attention(q, k, v, backend="triton")
    assert "use backend='cuda'" in str(info.value) and "\n" not in str(info.value)
    assert tried == [64, 32, 16]  # halved down to tl.dot's 16 keys before giving up


CUDA_ONLY = [c for c in backend_cases() if c.values[0] == "cuda"]


@pytest.mark.parametrize("backend,device,dtype", CUDA_ONLY)
@pytest.mark.parametrize("shape", [(2, 250, 500, 8, 32, 0), (1, 70, 150, 2, 128, 2),
                                   (2, 40, 300, 2, 16, 1)], ids=shape_id)
@pytest.mark.parametrize("splits", [1, 3, 16])
def test_cuda_key_split_matches_unsplit(backend, device, dtype, shape, splits, monkeypatch):
    """The CUDA kernel with its keys split over `splits` blocks (attention_cuda.cuh) against the
    reference and against the unsplit kernel; the device's own plan may not split these shapes
    at all. S > 2 (L + lookahead) in the last shape leaves whole ranges without a visible key."""
    from disenttalk_fast import _bridge

    q, k, v = make(shape, dtype, device)
    lookahead = shape[-1]
    monkeypatch.setattr(_bridge, "ATTENTION_SPLITS", 1)
    whole = ops.causal_cross_attention(q, k, v, lookahead, backend=backend)
    monkeypatch.setattr(_bridge, "ATTENTION_SPLITS", splits)
    out = ops.causal_cross_attention(q, k, v, lookahead, backend=backend)
    assert_matches_reference(out, reference.causal_cross_attention, (q, k, v, lookahead))
    torch.testing.assert_close(out.float(), whole.float(), **SPLIT_TOL[dtype])
