"""The fp32 CPU step (`model/cpu_step.py`) is FastDenoiser's generic block loop with the per-op
Python taken out — the whole block stack in one C++ call (PyTorch's BLAS borrowed), or its Python
loop where no BLAS can be borrowed: same results on every path the loop has (guided halves,
null-row shortcut, unflagged caches, the temporal-conv ablation, lookahead, one frame), taken for
inference and refused wherever the generic path must run (autograd, autocast, other dtypes)."""

import copy
import platform
import sys

import pytest
import torch

from disenttalk_fast import _native
from disenttalk_fast.model import AudioCache, cpu_step
from disenttalk_fast.model.fast import FastDenoiser
from model_testing import inputs, scrambled_partition, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


def fast_model(seed=0, **changes):
    config = tiny_config(**{"d_model": 96, "head_dim": 32, "region_heads": (1, 1, 1), **changes})
    torch.manual_seed(seed)
    model = FastDenoiser(config, scrambled_partition(config, seed), backend="cpu").eval()
    with torch.no_grad():  # t-dependent FiLM and a live head, so outputs carry every block
        model.out_proj.weight.normal_(0, 0.3)
        for block in model.blocks:
            block.film.weight.normal_(0, 0.1)
            block.out_fuse.weight.normal_(0, 0.2)
    return model


def cache_for(model, audio, n_audio: int, n_null: int, frames: int, flagged: bool = True):
    parts = [model.encode_audio(None, batch=n_null, num_frames=frames)] if n_null else []
    if n_audio:
        parts.insert(0, model.encode_audio(audio[:n_audio]))
    cache = AudioCache.cat(parts)
    return cache if flagged else AudioCache(cache.keys, cache.values)


def one_call(monkeypatch, call):
    """`call()`, asserting that the block stack ran as the one C++ call."""
    stacked = []
    real = cpu_step.stack_params
    with monkeypatch.context() as patch:
        patch.setattr(cpu_step, "stack_params",
                      lambda *a: stacked.append(real(*a)) or stacked[-1])
        out = call()
    assert stacked and stacked[-1] is not None, "the one-call block stack did not run"
    return out


def python_loop(monkeypatch, call):
    """`call()` with no BLAS to borrow: cpu_step's Python loop, asserted to have run."""
    launched = []
    real = cpu_step._region_attention_cpu
    with monkeypatch.context() as patch:
        patch.setattr(_native, "blas_available", lambda: False)
        patch.setattr(cpu_step, "_region_attention_cpu",
                      lambda *a, **k: launched.append(1) or real(*a, **k))
        out = call()
    assert launched, "the CPU step's Python loop did not run"
    return out


def every_path(monkeypatch, call):
    """(one C++ call, Python loop, generic path) results of `call()`."""
    with monkeypatch.context() as patch:
        patch.setattr(cpu_step, "applies", lambda *a: False)
        generic = call()
    return one_call(monkeypatch, call), python_loop(monkeypatch, call), generic


def assert_paths_agree(results):
    stacked, loop, generic = results
    torch.testing.assert_close(stacked, generic, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loop, generic, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("changes", [{}, {"temporal_conv": False}, {"lookahead": 2}],
                         ids=["default", "no-temporal-conv", "lookahead"])
@pytest.mark.parametrize("frames", [1, 7])
@pytest.mark.parametrize("n_audio,n_null,flagged", [(2, 0, True), (1, 1, True), (0, 2, True),
                                                    (1, 1, False)],
                         ids=["audio", "guidance", "all-null", "unflagged"])
def test_plain_call_equals_the_generic_path(monkeypatch, changes, frames, n_audio, n_null,
                                            flagged):
    model = fast_model(**changes)
    z, t, audio = inputs(model, n_audio + n_null, frames)
    with torch.inference_mode():
        cache = cache_for(model, audio, n_audio, n_null, frames, flagged)
        assert_paths_agree(every_path(monkeypatch, lambda: model(z, t, cache)))


@pytest.mark.parametrize("batch,n_audio", [(1, 1), (2, 1), (2, 2), (1, 0)])
def test_guided_call_equals_the_generic_path(monkeypatch, batch, n_audio):
    model = fast_model()
    z, t, audio = inputs(model, batch, 9)
    with torch.no_grad():
        cache = cache_for(model, audio, n_audio, 2 * batch - n_audio, 9)
        assert_paths_agree(every_path(monkeypatch, lambda: model(z, t, cache, guided=True)))


@pytest.mark.skipif(not _native.cpu_available(), reason="C++ kernels not built")
@pytest.mark.skipif(sys.platform != "linux" or platform.machine() != "x86_64",
                    reason="PyTorch's x86-64 Linux wheels carry MKL; elsewhere the BLAS varies")
def test_pytorch_blas_is_borrowed():
    """Else every fp32 CPU step would silently take the slower Python loop."""
    assert _native.blas_available()


@pytest.mark.skipif(not _native.cpu_available(), reason="C++ kernels not built")
@pytest.mark.parametrize("pool", ["torch", "own"])
@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("frames", [23, 70])
def test_one_call_with_several_threads(monkeypatch, threads, frames, pool):
    """Several threads split every kernel, and on PyTorch's OpenMP threads at 32+ rows per
    thread the projections' rows (one single-threaded product per thread; on the kernels' own
    pool the BLAS threads them itself): same result as one thread."""
    model = fast_model()
    z, t, audio = inputs(model, 2, frames)
    with torch.inference_mode():
        cache = cache_for(model, audio, 1, 1, frames)
        single = one_call(monkeypatch, lambda: model(z, t, cache))
        before, before_pool = torch.get_num_threads(), _native.thread_pool()
        torch.set_num_threads(threads)
        _native.set_thread_pool(pool)
        try:
            several = one_call(monkeypatch, lambda: model(z, t, cache, guided=False))
        finally:
            torch.set_num_threads(before)
            _native.set_thread_pool("torch" if before_pool == "openmp" else "own")
    torch.testing.assert_close(several, single, rtol=1e-5, atol=1e-5)


def test_one_call_reads_the_weights_the_model_has_now(monkeypatch):
    """Addresses are gathered on every call: weights updated in place, replaced by new tensors
    (load_state_dict(assign=True)) or made non-contiguous are all what the next call uses."""
    model = fast_model()
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(torch.randn_like(p), alpha=0.05)
    z, t, audio = inputs(model, 1, 6)
    with torch.inference_mode():
        cache = model.encode_audio(audio)
        one_call(monkeypatch, lambda: model(z, t, cache))
    model.load_state_dict(other.state_dict(), assign=True)
    with torch.inference_mode():
        expected = other(z, t, cache)
        torch.testing.assert_close(one_call(monkeypatch, lambda: model(z, t, cache)), expected)
    with torch.no_grad():
        model.blocks[-1].out_fuse.weight.mul_(-1)
        other.blocks[-1].out_fuse.weight.mul_(-1)
    with torch.inference_mode():
        expected = other(z, t, cache)
        torch.testing.assert_close(one_call(monkeypatch, lambda: model(z, t, cache)), expected)
    weight = model.blocks[0].cross_q.weight
    model.blocks[0].cross_q.weight = torch.nn.Parameter(weight.detach().t().contiguous().t())
    with torch.inference_mode():
        assert cpu_step.stack_params(model, cache) is None   # the Python loop copies it
        torch.testing.assert_close(model(z, t, cache), expected)
    model.blocks[0].cross_q.weight = torch.nn.Parameter(weight.detach().double())
    with torch.inference_mode():   # never read as fp32 memory
        assert cpu_step.stack_params(model, cache) is None


def test_refused_where_the_generic_path_must_run():
    model = fast_model()
    audio = inputs(model, 1, 5)[2]
    h = torch.zeros(1, 5, model.config.d_model)
    temb = torch.zeros(1, model.config.d_model)
    with torch.no_grad():
        cache = model.encode_audio(audio)
        assert cpu_step.applies(model, h, temb, cache)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not cpu_step.applies(model, h, temb, cache)
        assert not cpu_step.applies(model, h.double(), temb.double(), cache)
        for backend in ("cuda", "triton"):  # their own errors come from the generic path
            assert not cpu_step.applies(FastDenoiser.from_reference(model, backend), h, temb,
                                        cache)
    assert not cpu_step.applies(model, h, temb, cache)  # autograd: the generic path


def test_forward_hooks_on_inner_modules_still_run():
    """A hook on a module the generic loop calls (here cross_q) sends the call there, so the hook
    sees every block's call; a hook on the model itself runs either way."""
    model = fast_model()
    z, t, audio = inputs(model, 1, 5)
    seen, outer = [], []
    with torch.no_grad():
        cache = model.encode_audio(audio)
        plain = model(z, t, cache)
        handles = [block.cross_q.register_forward_hook(lambda m, i, o: seen.append(o.shape))
                   for block in model.blocks]
        handles.append(model.register_forward_hook(lambda m, i, o: outer.append(o.shape)))
        hooked = model(z, t, cache)
        for handle in handles:
            handle.remove()
        assert cpu_step.applies(model, torch.zeros(1, 5, 96), torch.zeros(1, 96), cache)
    assert len(seen) == model.config.n_layers and len(outer) == 1
    torch.testing.assert_close(hooked, plain, rtol=1e-5, atol=1e-5)
    handle = torch.nn.modules.module.register_module_forward_hook(lambda m, i, o: None)
    try:
        assert not cpu_step.applies(model, torch.zeros(1, 5, 96), torch.zeros(1, 96), cache)
    finally:
        handle.remove()


def test_training_still_differentiates_through_the_generic_path():
    model = fast_model().train()
    z, t, audio = inputs(model, 2, 6)
    out = model(z, t, audio)
    out.square().mean().backward()
    assert model.blocks[0].attn_fuse.weight.grad is not None
    assert model.blocks[-1].cross_q.weight.grad.abs().sum() > 0


def test_inputs_that_do_not_fit_never_reach_the_cpu_loops():
    """h, temb and the cache are read as raw fp32 memory of matching shapes: anything else takes
    the generic path."""
    model = fast_model()
    z, t, audio = inputs(model, 2, 6)
    d = model.config.d_model
    h, temb = torch.zeros(2, 6, d), torch.zeros(2, d)
    with torch.inference_mode():
        cache = cache_for(model, audio, 1, 1, 6)
        assert cpu_step.applies(model, h, temb, cache)
        assert not cpu_step.applies(model, h, temb.bfloat16(), cache)
        assert not cpu_step.applies(model, h[:1], temb[:1], cache)          # batch of 2 cached
        assert cpu_step.applies(model, h[:1], temb[:1], cache, halves=True)
        assert not cpu_step.applies(model, h, temb[:1], cache)
        assert not cpu_step.applies(model, torch.zeros(2, 5, d), temb, cache)  # 12 audio rows
        # The generic loop's result for the rows given (no memory read past h and temb).
        assert model.run_blocks(h[:1], temb[:1], cache).shape == (1, 6, model.config.num_dims)
        # A cache of another head shape or depth (another model's encode_audio).
        other = fast_model(d_model=48, head_dim=16)
        foreign = cache_for(other, torch.randn(2, 12, model.config.audio_dim), 1, 1, 6)
        assert not cpu_step.applies(model, h, temb, foreign)
        shallow = AudioCache(cache.keys[:1], cache.values[:1], cache.null_rows)
        assert not cpu_step.applies(model, h, temb, shallow)


@pytest.mark.parametrize("guided", [False, True])
def test_a_cache_from_another_model_is_a_one_line_error(guided):
    """Both models refuse a cache of other heads or depth, which the fused kernels would read
    past its end."""
    from disenttalk_fast.model import DisentTalkDenoiser

    model = fast_model()
    z, t, audio = inputs(model, 1, 6)
    for wrong in (fast_model(d_model=48, head_dim=16), fast_model(n_layers=1)):
        with torch.inference_mode():
            cache = cache_for(wrong, audio, 1, 1 if guided else 0, 6)
        reference = DisentTalkDenoiser(model.config).eval()
        for m in (model, reference):
            with torch.inference_mode(), pytest.raises(ValueError, match="audio cache holds"):
                m(z, t, cache, guided=guided)


def test_one_call_under_a_default_device_context(monkeypatch):
    """The output buffer is made on the input's device, not torch's default one."""
    model = fast_model()
    z, t, audio = inputs(model, 1, 5)
    with torch.inference_mode():
        cache = model.encode_audio(audio)
        expected = model(z, t, cache)
        with torch.device("meta"):
            got = one_call(monkeypatch, lambda: model(z, t, cache))
    torch.testing.assert_close(got, expected)


def test_parametrized_weights_and_first_norm_hooks_take_a_loop_that_honours_them(monkeypatch):
    """A parametrized projection (weight norm here) has no plain weight parameter: the Python
    loop, which reads module.weight, runs it. A hook on the first pre-norm (which the one C++
    call computes itself) sends the call to the generic loop, where it runs."""
    from torch.nn.utils import parametrizations

    model = fast_model()
    z, t, audio = inputs(model, 1, 5)
    with torch.inference_mode():
        cache = model.encode_audio(audio)
        before = model(z, t, cache)
    parametrizations.weight_norm(model.blocks[0].cross_q)
    with torch.inference_mode():
        assert cpu_step.stack_params(model, cache) is None
        torch.testing.assert_close(model(z, t, cache), before, rtol=1e-5, atol=1e-5)
    calls = []
    handle = model.blocks[0].norm.register_forward_hook(lambda m, i, o: calls.append(1))
    try:
        with torch.inference_mode():
            torch.testing.assert_close(model(z, t, cache), before, rtol=1e-5, atol=1e-5)
    finally:
        handle.remove()
    assert calls == [1]


@pytest.mark.skipif(not _native.cpu_available(), reason="C++ kernels not built")
def test_blas_is_borrowed_only_from_the_library_named_and_only_if_it_multiplies():
    lib = _native.require_cpu()
    try:
        assert not lib.use_blas_library("/nonexistent/libtorch_cpu.so")
        gomp = _native.loaded_openmp_runtime()
        if gomp:   # loaded, but no sgemm_ of its own
            assert not lib.use_blas_library(gomp)
    finally:
        _native.borrow_blas()
    assert _native.blas_available() == bool(_native._loaded_libraries(_native._BLAS_NAME))
