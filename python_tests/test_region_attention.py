"""region_attention: every backend against the reference over edge-case shapes, plus opcheck,
gradients through the recompute backward, and one-line errors."""

import numpy as np
import pytest
import torch

from disenttalk_fast import _native, backends, ops, reference
from disenttalk_fast._bridge import OpInputError
from disenttalk_fast.ops.region_attention import HEAD_DIMS
from op_testing import (SPLIT_TOL, assert_matches_reference, backend_cases, compile_triton_for_gpu,
                        cross_shapes, strided)

# (B, L, region widths, head_dim). L = 1, odd L, L not a multiple of the 32-query / 64-key tiles,
# the model's default regions (3, 2, 3) x 32 heads, a head_dim 64 case, batch 1 and 3.
SHAPES = [
    (1, 1, (32,), 32),
    (3, 7, (96, 64, 96), 32),
    (1, 65, (96, 64, 96), 32),
    (2, 33, (64, 128), 64),
    (1, 130, (64,), 64),
    (2, 250, (96, 64, 96), 32),
    (2, 19, (16, 32), 16),
    (1, 5, (128,), 128),
]
# The Triton interpreter is slow: tiny shapes only (L <= 20, d <= 128).
TINY = [
    (1, 1, (32,), 32),
    (3, 7, (32, 64), 32),
    (2, 20, (64,), 64),
    (1, 17, (32, 32, 32), 32),
]


def shape_id(shape):
    B, L, widths, hd = shape
    return f"B{B}-L{L}-w{'.'.join(map(str, widths))}-hd{hd}"


def make(shape, dtype=torch.float32, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    B, L, widths, hd = shape
    x = torch.randn(B, L, sum(widths), generator=g)
    weights = [torch.randn(3 * w, w, generator=g) / w ** 0.5 for w in widths]
    biases = [0.1 * torch.randn(3 * w, generator=g) for w in widths]
    cast = lambda t: t.to(device=device, dtype=dtype)  # noqa: E731
    return cast(x), [cast(w) for w in weights], [cast(b) for b in biases], hd


def reference_fn(rope_base=10000.0):
    def fn(x, *flat):
        n = len(flat) // 2
        return reference.region_attention(x, list(flat[:n]), list(flat[n:2 * n]), flat[-1],
                                          rope_base)
    return fn


@pytest.mark.parametrize("backend,device,dtype,shape",
                         cross_shapes(backend_cases(), SHAPES, TINY, shape_id))
def test_matches_reference(backend, device, dtype, shape):
    x, w, b, hd = make(shape, dtype, device)
    if hd not in HEAD_DIMS[backend]:  # Triton's kernels start at head_dim 32: a one-line refusal
        refusal = f"backend '{backend}' supports head_dim .*; got {hd}"
        with pytest.raises(OpInputError, match=refusal):
            ops.region_attention(x, w, b, hd, backend=backend)
        return
    out = ops.region_attention(x, w, b, hd, backend=backend)
    assert out.dtype == dtype and out.device.type == device and out.shape == x.shape
    assert_matches_reference(out, reference_fn(), (x, *w, *b, hd))


@pytest.mark.parametrize("backend,device,dtype", backend_cases())
def test_non_contiguous_inputs_and_rope_base(backend, device, dtype):
    x, w, b, hd = make((2, 9, (32, 64), 32), dtype, device)
    xs = strided(x, dim=1)
    ws = [t.t().contiguous().t() for t in w]  # same values, column-major
    bs = [strided(t, dim=0) for t in b]
    out = ops.region_attention(xs, ws, bs, hd, rope_base=500.0, backend=backend)
    assert_matches_reference(out, reference_fn(500.0), (x, *w, *b, hd))


@pytest.mark.parametrize("backend,device,dtype", backend_cases())
def test_gradients_match_reference(backend, device, dtype):
    if dtype != torch.float32:
        pytest.skip("gradients are compared in fp32")
    x, w, b, hd = make((2, 5, (32, 64), 32), dtype, device)
    leaves = [t.requires_grad_() for t in (x, *w, *b)]
    ops.region_attention(x, w, b, hd, backend=backend).square().sum().backward()
    got = [t.grad.clone() for t in leaves]
    ref = [t.detach().clone().requires_grad_() for t in leaves]
    reference.region_attention(ref[0], ref[1:3], ref[3:5], hd).square().sum().backward()
    for a, e in zip(got, ref):
        torch.testing.assert_close(a, e.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op_name", ["region_attention", "region_attention_triton"])
def test_opcheck(op_name):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if op_name.endswith("triton") and not backends.triton_available():
        pytest.skip("triton not installed")
    op = getattr(torch.ops.disenttalk_fast, op_name).default
    x, w, b, hd = make((2, 3, (32, 32), 32), torch.float32, device)
    torch.library.opcheck(op, (x.requires_grad_(), w, b, hd, 10000.0))


def test_torch_compile_fullgraph():
    x, w, b, hd = make((2, 6, (32, 64), 32))
    fn = torch.compile(lambda x, w, b: ops.region_attention(x, w, b, hd, backend="cpu"),
                       fullgraph=True, backend="eager")
    torch.testing.assert_close(fn(x, w, b), reference.region_attention(x, w, b, hd),
                               rtol=3e-4, atol=1e-4)


@pytest.mark.parametrize("backend,device,dtype", backend_cases())
def test_regions_are_independent(backend, device, dtype):
    # Block-diagonal projection: changing one region's input channels leaves the other regions'
    # output channels bit-for-bit unchanged, and changes its own.
    x, w, b, hd = make((2, 9, (32, 64), 32), dtype, device)
    out = ops.region_attention(x, w, b, hd, backend=backend)
    x2 = x.clone()
    x2[..., :32] += 1.0
    out2 = ops.region_attention(x2, w, b, hd, backend=backend)
    assert torch.equal(out2[..., 32:], out[..., 32:])
    assert not torch.allclose(out2[..., :32], out[..., :32])


def test_bad_inputs_give_one_line_errors():
    x, w, b, hd = make((2, 4, (32, 64), 32))
    with pytest.raises(OpInputError, match="region_attention: regions cover 96 channels but x "
                                           "has 95"):
        ops.region_attention(x[..., :95], w, b, hd)
    with pytest.raises(OpInputError, match="region 0 width 32 is not a multiple of head_dim 48"):
        ops.region_attention(x, w, b, 48)
    with pytest.raises(OpInputError, match="backend 'cpu' supports head_dim 16, 32, 64, 128; "
                                           "got 8"):
        ops.region_attention(x, w, b, 8, backend="cpu")
    with pytest.raises(OpInputError, match="backend 'cpu' supports float32"):
        ops.region_attention(x.half(), [t.half() for t in w], [t.half() for t in b], hd,
                             backend="cpu")
    with pytest.raises(OpInputError, match=r"biases\[0\] has shape"):
        ops.region_attention(x, w, [b[0][:-1], b[1]], hd)
    with pytest.raises(OpInputError, match="one bias per weight"):
        ops.region_attention(x, w, b[:1], hd)


@pytest.mark.parametrize("backend,device,dtype", backend_cases(include_reference=True))
def test_bad_arguments_are_refused_alike_on_every_backend(backend, device, dtype):
    # Checked before a kernel is chosen, so the reference (the specification) and the fused
    # backends refuse the same calls with the same one-line error: no NaN output, no deep error.
    x, w, b, hd = make((2, 4, (32, 64), 32), dtype, device)
    cases = [((x, torch.stack([w[0], w[0]]), b, hd),
              "weights must be a list of tensors, one per region, got Tensor"),
             ((x, w, b, 32.0), r"head_dim must be an int, got 32\.0"),
             ((x, w, b, True), "head_dim must be an int, got True"),
             ((x.long(), [t.long() for t in w], [t.long() for t in b], hd),
              "x must be a floating-point tensor, got torch.int64")]
    cases += [((x, w, b, hd, base), "rope_base must be a finite number > 0")
              for base in (0.0, -1.0, float("nan"), float("inf"))]
    for args, match in cases:
        with pytest.raises(OpInputError, match=f"region_attention: {match}") as info:
            ops.region_attention(*args, backend=backend)
        assert "\n" not in str(info.value)
    # numpy's ints and floats are ints and numbers; tuples are lists of tensors.
    out = ops.region_attention(x, tuple(w), tuple(b), np.int64(hd), np.float64(500.0),
                               backend=backend)
    assert torch.equal(out, ops.region_attention(x, w, b, hd, 500.0, backend=backend))


@pytest.mark.skipif(not backends.triton_available(), reason="triton not installed")
@pytest.mark.parametrize("dtype,arch,precision", [("bf16", 80, None), ("fp32", 90, "ieee"),
                                                  ("fp32", 90, "tf32"), ("fp32", 86, "ieee"),
                                                  ("bf16", 86, None)])
def test_triton_projection_compiles_for_gpu(dtype, arch, precision):
    # sm_86: the RTX 30xx / 40xx cards "auto" now sends to Triton; 99 KB of shared memory.
    meta = compile_triton_for_gpu(
        "disenttalk_fast._triton.region_attention", "_project_rotary",
        types={**{p: "*" + dtype for p in ("x_ptr", "w_ptr", "b_ptr", "ws_ptr")},
               "inv_freq_ptr": "*fp32"},
        constexprs=dict(HD=64, DOT_PRECISION=precision,
                        BLOCK_ROWS=32, BLOCK_K=32), arch=arch)
    assert 0 < meta["shared"] <= 101_376


@pytest.mark.skipif(not backends.triton_available(), reason="triton not installed")
def test_triton_fp32_follows_pytorchs_tf32_switch():
    """fp32 dot products are exact unless PyTorch's fp32 matmul precision allows TF32; then the
    Triton kernels use TF32 too (as cuBLAS does for the reference) and stay within TF32's error."""
    from disenttalk_fast._triton.flash_attention import dot_precision

    device = "cuda" if torch.cuda.is_available() else "cpu"
    x, w, b, hd = make((2, 17, (32, 64), 32), torch.float32, device)
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("highest")
        assert dot_precision(torch.float32) == "ieee"
        torch.set_float32_matmul_precision("high")
        assert dot_precision(torch.float32) == "tf32"
        assert dot_precision(torch.bfloat16) is None
        out = ops.region_attention(x, w, b, hd, backend="triton")
        expected = reference.region_attention(x.double(), [t.double() for t in w],
                                              [t.double() for t in b], hd)
        # TF32 keeps 10 mantissa bits: ~1e-3 relative per product, summed over 32-96 terms.
        torch.testing.assert_close(out.double(), expected, rtol=1e-2, atol=1e-2)
    finally:
        torch.set_float32_matmul_precision(before)


@pytest.mark.skipif(not _native.cpu_available(), reason="C++ kernels not built")
@pytest.mark.parametrize("threads", [1, 2, 16])
@pytest.mark.parametrize("shape", [(2, 250, (96, 64, 96), 32), (1, 67, (64, 32), 32),
                                   (3, 5, (64,), 64), (1, 1, (32,), 32)], ids=shape_id)
def test_cpu_fused_and_two_phase_paths(threads, shape):
    """The C++ kernel projects and attends one (sample, head) per task when there are at least
    two such tasks per thread, else in two phases split by query tile: both against the
    reference whichever the thread count picks (1 thread: fused wherever B x H >= 2; 16: two
    phases for all of these)."""
    x, w, b, hd = make(shape)
    expected = reference.region_attention(x.double(), [t.double() for t in w],
                                          [t.double() for t in b], hd)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        out = ops.region_attention(x, w, b, hd, backend="cpu")
    finally:
        torch.set_num_threads(before)
    torch.testing.assert_close(out.double(), expected, rtol=1e-4, atol=1e-4)


def test_eager_fast_path_matches_dispatched_op(monkeypatch):
    """Plain tensors without autograd call the kernel directly (no torch.library dispatcher, whose
    first call also imports torch._dynamo: ~3 s here); same result as the registered op, which
    autograd still goes through."""
    import importlib

    module = importlib.import_module("disenttalk_fast.ops.region_attention")
    real, direct_calls = module._region_attention_cpu, []
    monkeypatch.setattr(module, "_region_attention_cpu",
                        lambda *a: direct_calls.append(1) or real(*a))
    x, w, b, hd = make((2, 9, (32, 64), 32))
    direct = ops.region_attention(x, w, b, hd, backend="cpu")
    assert direct_calls == [1]
    dispatched = torch.ops.disenttalk_fast.region_attention(x, w, b, hd, 10000.0)
    assert torch.equal(direct, dispatched)
    ops.region_attention(x.clone().requires_grad_(), w, b, hd, backend="cpu")
    assert direct_calls == [1]


def test_tf32_switch_is_read_under_pytorchs_new_api(tmp_path):
    """`torch.backends.cuda.matmul.fp32_precision = "tf32"` (PyTorch's newer switch) is read
    too; the legacy `allow_tf32` raises once both APIs are in play, so it must not be read then.
    In a subprocess: the setting is process-wide and cannot be undone to the pristine state."""
    import subprocess
    import sys

    script = (
        "import torch\n"
        "from disenttalk_fast.backends import tf32_allowed\n"
        "m = torch.backends.cuda.matmul\n"
        "if not hasattr(m, 'fp32_precision'):\n"
        "    print('old torch'); raise SystemExit\n"
        "seen = [tf32_allowed()]\n"
        "torch.set_float32_matmul_precision('high'); seen.append(tf32_allowed())\n"
        "m.fp32_precision = 'ieee'; seen.append(tf32_allowed())\n"
        "m.fp32_precision = 'tf32'; seen.append(tf32_allowed())\n"
        "print(seen)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    if out.stdout.strip() != "old torch":
        assert out.stdout.strip() == "[False, True, False, True]"


@pytest.mark.skipif(not backends.triton_available(), reason="triton not installed")
def test_triton_projection_that_does_not_fit_gives_a_one_line_error(monkeypatch):
    from triton.runtime.errors import OutOfResources

    from disenttalk_fast._triton import region_attention

    class NoSharedMemory:
        def __getitem__(self, grid):
            def launch(*args, **kw):
                raise OutOfResources(200_000, 101_376, "shared memory")
            return launch

    monkeypatch.setattr(region_attention, "_project_rotary", NoSharedMemory())
    device = "cuda" if torch.cuda.is_available() else "cpu"
    x = torch.randn(1, 3, 64, device=device)
    weights = [torch.randn(96, 32, device=device), torch.randn(96, 32, device=device)]
    biases = [torch.randn(96, device=device), torch.randn(96, device=device)]
    with pytest.raises(RuntimeError, match="region_attention: the Triton kernel does not fit "
                                           "this GPU's shared memory") as info:
        ops.region_attention(x, weights, biases, 32, 10000.0, backend="triton")
    assert "use backend='cuda'" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("backend,device,dtype",
                         [c for c in backend_cases() if c.values[0] == "cuda"])
@pytest.mark.parametrize("shape", [(2, 250, (96, 64, 96), 32), (1, 130, (128,), 128),
                                   (2, 97, (48, 16), 16)])
@pytest.mark.parametrize("splits", [1, 3, 16])
def test_cuda_key_split_matches_unsplit(backend, device, dtype, shape, splits, monkeypatch):
    """The CUDA attention with its keys split over `splits` blocks against the reference and
    the unsplit kernel (the device's own plan may not split these shapes)."""
    from disenttalk_fast import _bridge

    x, w, b, hd = make(shape, dtype, device)
    monkeypatch.setattr(_bridge, "ATTENTION_SPLITS", 1)
    whole = ops.region_attention(x, w, b, hd, backend=backend)
    monkeypatch.setattr(_bridge, "ATTENTION_SPLITS", splits)
    out = ops.region_attention(x, w, b, hd, backend=backend)
    assert_matches_reference(out, reference_fn(), (x, *w, *b, hd))
    torch.testing.assert_close(out.float(), whole.float(), **SPLIT_TOL[dtype])
