"""The C++ kernels' parallel loops run on PyTorch's OpenMP threads when its runtime is loaded
(csrc/parallel.h) and on their own pool otherwise: both must give the same results."""

import pytest
import torch

from disenttalk_fast import _native, ops

pytestmark = pytest.mark.skipif(not _native.cpu_available(), reason="C++ kernels not built")


@pytest.fixture
def two_threads():
    before, pool = torch.get_num_threads(), _native.thread_pool()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)
    _native.set_thread_pool("torch" if pool == "openmp" else "own")


def run_ops():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 37, 96, generator=g)
    ws = [torch.randn(3 * w, w, generator=g) * 0.1 for w in (32, 64)]
    bs = [torch.randn(3 * w, generator=g) * 0.1 for w in (32, 64)]
    q, k, v = (torch.randn(2, n, 3, 32, generator=g) for n in (37, 74, 74))
    return (ops.region_attention(x, ws, bs, 32, 10000.0, backend="cpu"),
            ops.causal_cross_attention(q, k, v, 2, backend="cpu"),
            ops.film(x, x[:, 0], x[:, 1], residual=x, backend="cpu"))


def test_openmp_and_own_pool_give_identical_results(two_threads):
    assert _native.set_thread_pool("own") == "own"
    own = run_ops()
    pool = _native.set_thread_pool("torch")
    # PyTorch's Linux wheels load libgomp; elsewhere the kernels may stay on their own pool.
    if _native.loaded_openmp_runtime() is not None:
        assert pool == "openmp"
    for a, b in zip(own, run_ops()):
        assert torch.equal(a, b)


def test_pools_switch_back_and_forth(two_threads):
    results = []
    for kind in ("own", "torch", "own", "torch"):
        _native.set_thread_pool(kind)
        results.append(run_ops())
    for later in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(results[0], later))
    with pytest.raises(ValueError, match="thread pool must be"):
        _native.set_thread_pool("mine")


def test_unloaded_runtime_is_refused():
    lib = _native.require_cpu()
    assert lib.use_openmp_runtime("/nonexistent/libgomp.so.1") is False
