"""The fp32 CPU step (`model/cpu_step.py`) is FastDenoiser's generic block loop with the per-op
Python taken out: same results on every path the loop has (guided halves, null-row shortcut,
unflagged caches, the temporal-conv ablation, lookahead, one frame), taken for inference and
refused wherever the generic path must run (autograd, autocast, other dtypes)."""

import pytest
import torch

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


def both_paths(monkeypatch, call):
    """(lean, generic): `call()` through cpu_step, then with it refused; asserts the lean path
    really ran the kernels itself."""
    launched = []
    real = cpu_step._region_attention_cpu
    with monkeypatch.context() as patch:
        patch.setattr(cpu_step, "_region_attention_cpu",
                      lambda *a, **k: launched.append(1) or real(*a, **k))
        lean = call()
    assert launched, "the CPU step did not run"
    with monkeypatch.context() as patch:
        patch.setattr(cpu_step, "applies", lambda *a: False)
        generic = call()
    return lean, generic


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
        lean, generic = both_paths(monkeypatch, lambda: model(z, t, cache))
    torch.testing.assert_close(lean, generic, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch,n_audio", [(1, 1), (2, 1), (2, 2), (1, 0)])
def test_guided_call_equals_the_generic_path(monkeypatch, batch, n_audio):
    model = fast_model()
    z, t, audio = inputs(model, batch, 9)
    with torch.no_grad():
        cache = cache_for(model, audio, n_audio, 2 * batch - n_audio, 9)
        lean, generic = both_paths(monkeypatch, lambda: model(z, t, cache, guided=True))
    torch.testing.assert_close(lean, generic, rtol=1e-5, atol=1e-5)


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
