"""film: every backend against the reference over edge-case shapes, plus opcheck and errors."""

import pytest
import torch

from disenttalk_fast import backends, ops, reference
from disenttalk_fast._bridge import OpInputError
from op_testing import assert_matches_reference, backend_cases, strided

# (B, L, C): length 1, odd lengths, non-power-of-two channels, batch 1 and 3, a vector-width
# multiple and a large-ish row count.
SHAPES = [(1, 1, 1), (1, 1, 256), (3, 7, 5), (1, 129, 96), (3, 151, 257), (2, 250, 256)]


def make(shape, dtype, device, residual=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    B, L, C = shape
    x = torch.randn(B, L, C, generator=g)
    gamma = 1 + 0.5 * torch.randn(B, C, generator=g)
    beta = torch.randn(B, C, generator=g)
    res = torch.randn(B, L, C, generator=g) if residual else None
    cast = lambda t: None if t is None else t.to(device=device, dtype=dtype)  # noqa: E731
    return cast(x), cast(gamma), cast(beta), cast(res)


@pytest.mark.parametrize("backend,device,dtype", backend_cases())
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("residual", [True, False], ids=["res", "nores"])
def test_matches_reference(backend, device, dtype, shape, residual):
    x, g, b, r = make(shape, dtype, device, residual)
    out = ops.film(x, g, b, r, backend=backend)
    assert out.dtype == dtype and out.device.type == device
    assert_matches_reference(out, reference.film, (x, g, b, r))


@pytest.mark.parametrize("backend,device,dtype", backend_cases())
def test_non_contiguous(backend, device, dtype):
    x, g, b, r = make((3, 9, 33), dtype, device)
    xs, gs, rs = strided(x, dim=1), strided(g, dim=1), strided(r, dim=2)
    out = ops.film(xs, gs, b, rs, backend=backend)
    assert_matches_reference(out, reference.film, (x, g, b, r))


@pytest.mark.parametrize("backend,device,dtype", backend_cases())
def test_gradients_match_reference(backend, device, dtype):
    if dtype != torch.float32:
        pytest.skip("gradients are compared in fp32")
    inputs = [t.requires_grad_() for t in make((2, 5, 6), dtype, device)]
    ops.film(*inputs, backend=backend).square().sum().backward()
    got = [t.grad.clone() for t in inputs]
    ref_inputs = [t.detach().clone().requires_grad_() for t in inputs]
    reference.film(*ref_inputs).square().sum().backward()
    for a, e in zip(got, ref_inputs):
        torch.testing.assert_close(a, e.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op_name", ["film", "film_triton"])
def test_opcheck(op_name):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if op_name == "film_triton" and not backends.triton_available():
        pytest.skip("triton not installed")
    op = getattr(torch.ops.disenttalk_fast, op_name).default
    for residual in (True, False):
        args = make((2, 3, 8), torch.float32, device, residual)
        args = tuple(t.requires_grad_() if t is not None else None for t in args)
        torch.library.opcheck(op, args)


def test_torch_compile_fullgraph():
    x, g, b, r = make((2, 6, 16), torch.float32, "cpu")
    fn = torch.compile(lambda *a: ops.film(*a, backend="cpu"), fullgraph=True, backend="eager")
    torch.testing.assert_close(fn(x, g, b, r), reference.film(x, g, b, r))


def test_env_var_overrides_auto(monkeypatch):
    x, g, b, r = make((1, 2, 3), torch.float32, "cpu")
    monkeypatch.setenv(backends.ENV_VAR, "reference")
    assert backends.resolve("auto", x.device) == "reference"
    monkeypatch.setenv(backends.ENV_VAR, "bogus")
    with pytest.raises(backends.BackendError, match="DISENTTALK_BACKEND: unknown backend 'bogus'"):
        ops.film(x, g, b, r)


def test_bad_inputs_give_one_line_errors():
    x, g, b, r = make((2, 4, 3), torch.float32, "cpu")
    with pytest.raises(OpInputError, match=r"film: gamma has shape \(1, 3\), expected \(2, 3\)"):
        ops.film(x, g[:1], b, r)
    with pytest.raises(OpInputError, match="film: x must have 3 dims"):
        ops.film(x[0], g, b)
    with pytest.raises(OpInputError, match="film: beta has dtype torch.float64"):
        ops.film(x, g, b.double())
    with pytest.raises(OpInputError, match="backend 'cpu' supports float32"):
        ops.film(x.half(), g.half(), b.half(), backend="cpu")
    with pytest.raises(backends.BackendError, match="unknown backend 'gpu'"):
        ops.film(x, g, b, backend="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(backends.BackendError, match="backend 'cuda' needs CUDA tensors"):
            ops.film(x, g, b, backend="cuda")


# --- film_norm: FiLM + residual + the next block's (region-grouped) LayerNorm ---------------

# (shape, groups): plain LayerNorm, the model's 3 regions, and the 8-group maximum.
NORM_CASES = [((1, 1, 1), None), ((1, 1, 256), None), ((3, 7, 5), [2, 3]),
              ((2, 5, 20), [1, 2, 3, 4, 2, 3, 2, 3]), ((1, 129, 96), [40, 24, 32]),
              ((3, 151, 257), None), ((2, 250, 256), [96, 64, 96])]
TRITON_NORM_CASES = NORM_CASES[:5]


def make_norm(shape, dtype, device, residual=True, seed=0):
    g = torch.Generator().manual_seed(seed + 1)
    C = shape[-1]
    nw = (1 + 0.3 * torch.randn(C, generator=g)).to(device=device, dtype=dtype)
    nb = (0.3 * torch.randn(C, generator=g)).to(device=device, dtype=dtype)
    return (*make(shape, dtype, device, residual, seed), nw, nb)


@pytest.mark.parametrize("backend,device,dtype", backend_cases())
@pytest.mark.parametrize("index", range(len(NORM_CASES)))
@pytest.mark.parametrize("residual", [True, False], ids=["res", "nores"])
def test_film_norm_matches_reference(backend, device, dtype, index, residual):
    cases = TRITON_NORM_CASES if backend == "triton" and device == "cpu" else NORM_CASES
    if index >= len(cases):
        pytest.skip("fewer shapes on the Triton interpreter")
    shape, groups = cases[index]
    inputs = make_norm(shape, dtype, device, residual)
    out, normed = ops.film_norm(*inputs, 1e-5, groups, backend=backend)
    assert out.dtype == normed.dtype == dtype and normed.shape == shape
    assert_matches_reference((out, normed),
                             lambda *a: reference.film_norm(*a, 1e-5, groups), inputs)


@pytest.mark.parametrize("backend,device,dtype", backend_cases())
def test_film_norm_non_contiguous(backend, device, dtype):
    x, g, b, r, nw, nb = make_norm((3, 9, 33), dtype, device)
    out = ops.film_norm(strided(x, dim=1), g, b, strided(r, dim=2), strided(nw, dim=0), nb,
                        1e-5, [11, 22], backend=backend)
    assert_matches_reference(out, lambda *a: reference.film_norm(*a, 1e-5, [11, 22]),
                             (x, g, b, r, nw, nb))


@pytest.mark.parametrize("backend,device,dtype", backend_cases())
@pytest.mark.parametrize("groups", [None, [2, 4]], ids=["ln", "groups"])
def test_film_norm_gradients_match_reference(backend, device, dtype, groups):
    if dtype != torch.float32:
        pytest.skip("gradients are compared in fp32")
    inputs = [t.requires_grad_() for t in make_norm((2, 5, 6), dtype, device)]
    out, normed = ops.film_norm(*inputs, 1e-5, groups, backend=backend)
    (out.square().sum() + (normed * torch.arange(6.0, device=device)).square().sum()).backward()
    ref_inputs = [t.detach().clone().requires_grad_() for t in inputs]
    r_out, r_normed = reference.film_norm(*ref_inputs, 1e-5, groups)
    (r_out.square().sum() + (r_normed * torch.arange(6.0, device=device)).square().sum()
     ).backward()
    for a, e in zip(inputs, ref_inputs):
        torch.testing.assert_close(a.grad, e.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("op_name", ["film_norm", "film_norm_triton"])
def test_film_norm_opcheck(op_name):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if op_name == "film_norm_triton" and not backends.triton_available():
        pytest.skip("triton not installed")
    op = getattr(torch.ops.disenttalk_fast, op_name).default
    for residual, groups in ((True, [3, 5]), (False, [8])):
        args = make_norm((2, 3, 8), torch.float32, device, residual)
        args = tuple(t.requires_grad_() if t is not None else None for t in args)
        torch.library.opcheck(op, (*args, 1e-5, groups))


def test_film_norm_bad_groups():
    x, g, b, r, nw, nb = make_norm((2, 4, 6), torch.float32, "cpu")
    with pytest.raises(OpInputError, match=r"film_norm: groups must be positive widths summing "
                                           r"to C=6, got \(2, 3\)"):
        ops.film_norm(x, g, b, r, nw, nb, 1e-5, [2, 3])
    with pytest.raises(OpInputError, match=r"film_norm: norm_weight has shape \(5,\)"):
        ops.film_norm(x, g, b, r, nw[:5], nb)
    with pytest.raises(OpInputError, match="at most 8 groups"):
        ops.film_norm(x.repeat(1, 1, 2), g.repeat(1, 2), b.repeat(1, 2), None, nw.repeat(2),
                      nb.repeat(2), 1e-5, [1] * 12, backend="cpu")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_auto_leaves_half_precision_cpu_tensors_to_the_reference(dtype, monkeypatch):
    """The C++ kernels are fp32-only: "auto" runs half-precision CPU tensors on the reference
    (the same bits), an explicit "cpu" refuses them."""
    monkeypatch.delenv(backends.ENV_VAR, raising=False)
    assert backends.resolve("auto", torch.device("cpu"), dtype) == "reference"
    x, g, b, r = make((2, 5, 12), dtype, "cpu")
    assert torch.equal(ops.film(x, g, b, r, backend="auto"), reference.film(x, g, b, r))
    with pytest.raises(OpInputError, match="backend 'cpu' supports float32"):
        ops.film(x, g, b, r, backend="cpu")
