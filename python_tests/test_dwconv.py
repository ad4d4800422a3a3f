"""multi_dilation_dwconv and local_dwconv: every backend against the reference over edge-case
shapes (shorter than the halo, odd, not a multiple of any tile, non-power-of-two channels,
Cout != C), non-contiguous input, gradients, opcheck and input errors."""

import re

import numpy as np
import pytest
import torch

from disenttalk_fast import backends, ops, reference
from disenttalk_fast._bridge import OpInputError
from op_testing import (assert_matches_reference, backend_cases, compile_triton_for_gpu,
                        strided)

# (B, L, C, Cout). L = 1, 2, 3, 5 are shorter than the dilation-4 halo; 49 and 151 are odd and
# not a multiple of the C++ (48) / CUDA (32) / Triton (16, 32) time tiles; C in {1, 5, 96, 257}.
SHAPES = [(1, 1, 1, 1), (3, 2, 5, 7), (1, 3, 5, 5), (3, 5, 96, 96), (1, 49, 257, 33),
          (3, 151, 96, 40), (2, 250, 256, 256)]
# The Triton interpreter runs tl.dot in numpy one program at a time: keep its shapes tiny.
TRITON_SHAPES = [(1, 1, 1, 1), (3, 2, 5, 7), (1, 5, 5, 5), (3, 19, 20, 17), (1, 37, 33, 40)]
# (B, L, C, k). The CUDA kernel runs k = 3, 5, 7 in runs of 8 frames, 4 channels at a time when C
# allows (96, 256, 12), one otherwise (1, 5, 257); any other k (9) takes its general kernel.
LOCAL_SHAPES = [(1, 1, 1, 5), (3, 2, 5, 5), (1, 3, 96, 5), (3, 5, 257, 3), (2, 151, 96, 7),
                (2, 250, 256, 5), (1, 8, 12, 5), (2, 33, 12, 9)]
TRITON_LOCAL_SHAPES = [(1, 1, 1, 5), (3, 2, 5, 5), (1, 7, 20, 3), (2, 19, 33, 5)]


def on_interpreter(backend, device):
    return backend == "triton" and device == "cpu"


def make_mdd(shape, dtype, device, bias=True, dilations=(1, 2, 4), seed=0):
    g = torch.Generator().manual_seed(seed)
    B, L, C, Cout = shape
    n = len(dilations)
    x = torch.randn(B, L, C, generator=g)
    dw_w = torch.randn(n, C, 3, generator=g) / 3 ** 0.5
    dw_b = 0.1 * torch.randn(n, C, generator=g)
    pw_w = torch.randn(Cout, n * C, generator=g) / (n * C) ** 0.5
    pw_b = 0.1 * torch.randn(Cout, generator=g) if bias else None
    cast = lambda t: None if t is None else t.to(device=device, dtype=dtype)  # noqa: E731
    return tuple(map(cast, (x, dw_w, dw_b, pw_w, pw_b)))


def make_local(shape, dtype, device, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    B, L, C, k = shape
    x = torch.randn(B, L, C, generator=g)
    w = torch.randn(C, k, generator=g) / k ** 0.5
    b = 0.1 * torch.randn(C, generator=g) if bias else None
    cast = lambda t: None if t is None else t.to(device=device, dtype=dtype)  # noqa: E731
    return tuple(map(cast, (x, w, b)))


# --- multi_dilation_dwconv ------------------------------------------------------------------

@pytest.mark.parametrize("backend,device,dtype", backend_cases())
@pytest.mark.parametrize("index", range(len(SHAPES)))
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_mdd_matches_reference(backend, device, dtype, index, bias):
    shapes = TRITON_SHAPES if on_interpreter(backend, device) else SHAPES
    if index >= len(shapes):
        pytest.skip("fewer shapes on the Triton interpreter")
    inputs = make_mdd(shapes[index], dtype, device, bias)
    out = ops.multi_dilation_dwconv(*inputs, backend=backend)
    assert out.dtype == dtype and out.device.type == device
    assert out.shape == (*inputs[0].shape[:2], shapes[index][3])
    assert_matches_reference(out, reference.multi_dilation_dwconv, inputs)


@pytest.mark.parametrize("backend,device,dtype", backend_cases())
@pytest.mark.parametrize("dilations", [(1,), (3, 1), (1, 2, 4, 8)], ids=str)
def test_mdd_other_dilations(backend, device, dtype, dilations):
    inputs = make_mdd((2, 11, 17, 16), dtype, device, dilations=dilations)
    out = ops.multi_dilation_dwconv(*inputs, dilations, backend=backend)
    assert_matches_reference(out, lambda *a: reference.multi_dilation_dwconv(*a, dilations),
                             inputs)


@pytest.mark.parametrize("backend,device,dtype", backend_cases())
def test_mdd_non_contiguous(backend, device, dtype):
    x, dw_w, dw_b, pw_w, pw_b = make_mdd((3, 9, 24, 20), dtype, device)
    out = ops.multi_dilation_dwconv(strided(x, dim=1), dw_w, dw_b, strided(pw_w, dim=1), pw_b,
                                    backend=backend)
    assert_matches_reference(out, reference.multi_dilation_dwconv, (x, dw_w, dw_b, pw_w, pw_b))


@pytest.mark.parametrize("backend,device,dtype", backend_cases())
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_mdd_gradients_match_reference(backend, device, dtype, bias):
    if dtype != torch.float32:
        pytest.skip("gradients are compared in fp32")
    inputs = [t if t is None else t.requires_grad_()
              for t in make_mdd((2, 7, 6, 5), dtype, device, bias)]
    ops.multi_dilation_dwconv(*inputs, backend=backend).square().sum().backward()
    ref_inputs = [t if t is None else t.detach().clone().requires_grad_() for t in inputs]
    reference.multi_dilation_dwconv(*ref_inputs).square().sum().backward()
    for a, e in zip(inputs, ref_inputs):
        if a is not None:
            torch.testing.assert_close(a.grad, e.grad, rtol=1e-4, atol=1e-5)


# --- local_dwconv ---------------------------------------------------------------------------

@pytest.mark.parametrize("backend,device,dtype", backend_cases())
@pytest.mark.parametrize("index", range(len(LOCAL_SHAPES)))
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_local_matches_reference(backend, device, dtype, index, bias):
    shapes = TRITON_LOCAL_SHAPES if on_interpreter(backend, device) else LOCAL_SHAPES
    if index >= len(shapes):
        pytest.skip("fewer shapes on the Triton interpreter")
    inputs = make_local(shapes[index], dtype, device, bias)
    out = ops.local_dwconv(*inputs, backend=backend)
    assert out.dtype == dtype and out.shape == inputs[0].shape
    assert_matches_reference(out, reference.local_dwconv, inputs)


@pytest.mark.parametrize("backend,device,dtype", backend_cases())
def test_local_non_contiguous(backend, device, dtype):
    x, w, b = make_local((3, 9, 24, 5), dtype, device)
    out = ops.local_dwconv(strided(x, dim=2), strided(w, dim=1), b, backend=backend)
    assert_matches_reference(out, reference.local_dwconv, (x, w, b))


@pytest.mark.parametrize("backend,device,dtype", backend_cases())
def test_local_gradients_match_reference(backend, device, dtype):
    if dtype != torch.float32:
        pytest.skip("gradients are compared in fp32")
    inputs = [t.requires_grad_() for t in make_local((2, 7, 6, 5), dtype, device)]
    ops.local_dwconv(*inputs, backend=backend).square().sum().backward()
    ref_inputs = [t.detach().clone().requires_grad_() for t in inputs]
    reference.local_dwconv(*ref_inputs).square().sum().backward()
    for a, e in zip(inputs, ref_inputs):
        torch.testing.assert_close(a.grad, e.grad, rtol=1e-4, atol=1e-5)


# --- registration, compile, errors ----------------------------------------------------------

@pytest.mark.parametrize("op_name", ["multi_dilation_dwconv", "multi_dilation_dwconv_triton",
                                     "local_dwconv", "local_dwconv_triton"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_opcheck(op_name, bias):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if op_name.endswith("triton") and not backends.triton_available():
        pytest.skip("triton not installed")
    op = getattr(torch.ops.disenttalk_fast, op_name).default
    if op_name.startswith("multi"):
        args = make_mdd((2, 5, 4, 16), torch.float32, device, bias)
        args = tuple(t if t is None else t.requires_grad_() for t in args) + ([1, 2, 4],)
    else:
        args = make_local((2, 5, 4, 5), torch.float32, device, bias)
        args = tuple(t if t is None else t.requires_grad_() for t in args)
    torch.library.opcheck(op, args)


def test_torch_compile_fullgraph():
    inputs = make_mdd((2, 6, 16, 8), torch.float32, "cpu")
    fn = torch.compile(lambda *a: ops.multi_dilation_dwconv(*a, backend="cpu"), fullgraph=True,
                       backend="eager")
    torch.testing.assert_close(fn(*inputs), reference.multi_dilation_dwconv(*inputs),
                               rtol=3e-4, atol=1e-4)


def test_bad_inputs_give_one_line_errors():
    x, dw_w, dw_b, pw_w, pw_b = make_mdd((2, 4, 3, 5), torch.float32, "cpu")
    with pytest.raises(OpInputError,
                       match=r"dw_weight has shape \(2, 3, 3\), expected \(3, 3, 3\)"):
        ops.multi_dilation_dwconv(x, dw_w[:2], dw_b, pw_w, pw_b)
    with pytest.raises(OpInputError, match="backend 'cpu' supports float32"):
        ops.multi_dilation_dwconv(*(t.half() for t in (x, dw_w, dw_b, pw_w, pw_b)),
                                  backend="cpu")
    many = make_mdd((1, 4, 3, 5), torch.float32, "cpu", dilations=(1, 2, 3, 4, 5))
    with pytest.raises(OpInputError, match="takes 1 to 4 dilations"):
        ops.multi_dilation_dwconv(*many, (1, 2, 3, 4, 5), backend="cpu")
    xl, w, b = make_local((2, 4, 3, 4), torch.float32, "cpu")
    with pytest.raises(OpInputError, match="local_dwconv: kernel size must be odd, got 4"):
        ops.local_dwconv(xl, w, b, backend="cpu")
    if not torch.cuda.is_available():
        with pytest.raises(backends.BackendError, match="backend 'cuda' needs CUDA tensors"):
            ops.local_dwconv(x, torch.zeros(3, 5), None, backend="cuda")


@pytest.mark.parametrize("backend,device,dtype", backend_cases(include_reference=True))
def test_dilations_must_be_positive_ints_on_every_backend(backend, device, dtype):
    # The reference used to fail inside conv1d or torch.cat, the fused backends to truncate.
    inputs = make_mdd((2, 4, 3, 5), dtype, device)
    for bad in ((1, 2.5, 4), (1, 2.0, 4), (1, 0, 4), (1, True, 4), (), None, 2):
        msg = f"multi_dilation_dwconv: dilations must be one or more positive ints, got {bad!r}"
        with pytest.raises(OpInputError, match=re.escape(msg)):
            ops.multi_dilation_dwconv(*inputs, bad, backend=backend)
    out = ops.multi_dilation_dwconv(*inputs, [np.int64(d) for d in (1, 2, 4)], backend=backend)
    assert torch.equal(out, ops.multi_dilation_dwconv(*inputs, backend=backend))


@pytest.mark.parametrize("backend,device,dtype", backend_cases(include_reference=True))
def test_empty_time_axis_gives_an_empty_result(backend, device, dtype):
    # L = 0: conv1d refuses it, so the reference returns the fused kernels' empty result.
    out = ops.multi_dilation_dwconv(*make_mdd((2, 0, 5, 7), dtype, device), backend=backend)
    assert out.shape == (2, 0, 7) and out.dtype == dtype
    out = ops.local_dwconv(*make_local((2, 0, 5, 5), dtype, device), backend=backend)
    assert out.shape == (2, 0, 5) and out.dtype == dtype
    if dtype == torch.float32:  # and every input still gets a (zero) gradient
        leaves = [t.requires_grad_() for t in make_mdd((2, 0, 5, 7), dtype, device)]
        ops.multi_dilation_dwconv(*leaves, backend=backend).sum().backward()
        assert all(torch.equal(t.grad, torch.zeros_like(t)) for t in leaves)


def test_eager_fast_path_matches_dispatched_op():
    """ops.* skips the torch.library dispatcher for plain tensors without autograd (the same
    kernel, ~35 µs less per call); it must give the registered op's result exactly, and step
    aside when autograd or compilation needs the dispatcher."""
    from disenttalk_fast.ops import _eager

    inputs = make_mdd((2, 9, 8, 6), torch.float32, "cpu")
    assert _eager.direct_call_ok(*inputs)
    direct = ops.multi_dilation_dwconv(*inputs, backend="cpu")
    dispatched = torch.ops.disenttalk_fast.multi_dilation_dwconv(*inputs, [1, 2, 4])
    assert torch.equal(direct, dispatched)
    x = inputs[0].clone().requires_grad_()
    assert not _eager.direct_call_ok(x)
    with torch.no_grad():
        assert _eager.direct_call_ok(x)
    weight = torch.nn.Parameter(inputs[3].clone())
    assert not _eager.direct_call_ok(weight)
    with torch.inference_mode():  # how models run: parameters count as plain tensors there
        assert _eager.direct_call_ok(weight)
    with torch._subclasses.FakeTensorMode():
        assert not _eager.direct_call_ok(torch.empty(2))


@pytest.mark.skipif(not backends.triton_available(), reason="triton not installed")
def test_triton_mdd_narrows_its_block_when_shared_memory_runs_out(monkeypatch):
    """A GPU with less shared memory than the block plan assumes (an H200 refused 255 KB) makes
    the launch raise OutOfResources: the op halves its output-channel block, gives the right
    result, and later calls start from the block that fitted."""
    from triton.runtime.errors import OutOfResources

    from disenttalk_fast._triton import dwconv, shared_memory

    device = "cuda" if torch.cuda.is_available() else "cpu"
    real, launched = dwconv._mdd_fwd, []

    class SmallSharedMemory:
        def __getitem__(self, grid):
            def launch(*args, BLOCK_N, **kw):
                launched.append(BLOCK_N)
                if BLOCK_N > 16:
                    raise OutOfResources(BLOCK_N * 1024, 16 * 1024, "shared memory")
                return real[grid](*args, BLOCK_N=BLOCK_N, **kw)
            return launch

    monkeypatch.setattr(dwconv, "_mdd_fwd", SmallSharedMemory())
    monkeypatch.setattr(shared_memory, "_FITTING", {})
    inputs = make_mdd((1, 5, 16, 40), torch.float32, device)
    out = ops.multi_dilation_dwconv(*inputs, backend="triton")
    assert_matches_reference(out, reference.multi_dilation_dwconv, inputs)
    assert launched[-1] == 16 and launched[0] > 16
    launched.clear()
    ops.multi_dilation_dwconv(*inputs, backend="triton")
    assert launched == [16]


@pytest.mark.skipif(not backends.triton_available(), reason="triton not installed")
@pytest.mark.parametrize("dtype,precision,arch,limit,n_dil,block", [
    ("fp32", "ieee", 90, 232448, 3, 128),    # H100 / H200: 227 KB per block
    ("fp32", "tf32", 90, 232448, 3, 128),
    ("fp32", "ieee", 80, 166912, 3, 128),    # A100: 163 KB
    ("fp32", "ieee", 86, 101376, 3, 32),     # RTX 30xx / 40xx, L40S: 99 KB
    ("fp32", "tf32", 86, 101376, 3, 32),
    ("fp32", "ieee", 80, 166912, 4, 64),     # four dilations: wider per-channel weights
    ("fp32", "ieee", 86, 101376, 4, 16),
    ("bf16", None, 90, 232448, 3, 256),
    ("bf16", None, 86, 101376, 3, 256),
])
def test_triton_mdd_widest_block_fits_shared_memory(dtype, precision, arch, limit, n_dil, block):
    """The widest block the GPU plan picks for a device's shared-memory limit (long sequence,
    256 output channels) compiles to a program that fits it (checked at launch on a GPU, so
    compiled here), within the size the plan assumes. The first fp32 plan asked for 255 KB,
    which an H200 refused."""
    from disenttalk_fast._triton import dwconv

    size = 4 if dtype == "fp32" else 2
    block_l, block_k, block_n = dwconv.mdd_blocks(8, 16384, 256, size, sms=132, limit=limit,
                                                  n_dil=n_dil)
    assert block_n == block
    meta = compile_triton_for_gpu(
        "disenttalk_fast._triton.dwconv", "_mdd_fwd",
        types={p: "*" + dtype for p in ("x_ptr", "dww_ptr", "dwb_ptr", "pww_ptr", "pwb_ptr",
                                        "o_ptr")},
        constexprs=dict(N_DIL=n_dil, HAS_BIAS=True, DOT_FP32=dtype == "fp32",
                        DOT_PRECISION=precision, BLOCK_L=block_l, BLOCK_K=block_k,
                        BLOCK_N=block_n),
        arch=arch, options=dict(num_warps=dwconv.mdd_num_warps(block_n)))
    assert 0 < meta["shared"] <= limit
    if dtype == "fp32":
        assert meta["shared"] <= dwconv.mdd_fp32_bytes(block_n, n_dil)


@pytest.mark.skipif(not backends.triton_available(), reason="triton not installed")
def test_triton_mdd_that_never_fits_gives_a_one_line_error(monkeypatch):
    from triton.runtime.errors import OutOfResources

    from disenttalk_fast._triton import dwconv, shared_memory

    class NoSharedMemory:
        def __getitem__(self, grid):
            def launch(*args, BLOCK_N, **kw):
                raise OutOfResources(BLOCK_N * 1024, 1024, "shared memory")
            return launch

    monkeypatch.setattr(dwconv, "_mdd_fwd", NoSharedMemory())
    monkeypatch.setattr(shared_memory, "_FITTING", {})
    device = "cuda" if torch.cuda.is_available() else "cpu"
    inputs = make_mdd((1, 5, 16, 40), torch.float32, device)
    with pytest.raises(RuntimeError, match="does not fit this GPU's shared memory") as info:
        ops.multi_dilation_dwconv(*inputs, backend="triton")
    assert "\n" not in str(info.value)
