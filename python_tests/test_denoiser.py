"""The reference denoiser: shapes, causality, region grouping, audio cache, null audio, ops."""

import pytest
import torch

from disenttalk_fast import ops
from disenttalk_fast.model import AudioCache, DisentTalkDenoiser
from disenttalk_fast.model.fast import FastDenoiser
from disenttalk_fast.partition import Partition
from model_testing import inputs, tiny_config, tiny_model


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("frames", [1, 7, 33])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_shapes_and_dtypes(frames, batch, dtype):
    model = tiny_model().to(dtype)
    z, t, audio = inputs(model, batch, frames, dtype=dtype)
    with torch.no_grad():
        eps = model(z, t, audio)
    assert eps.shape == (batch, frames, model.config.num_dims) and eps.dtype == dtype
    assert torch.isfinite(eps).all() and eps.abs().sum() > 0


def test_untrained_model_predicts_zero_and_trains():
    model = DisentTalkDenoiser(tiny_config())
    z, t, audio = inputs(model, 2, 9)
    eps = model(z, t, audio)
    assert torch.equal(eps, torch.zeros_like(eps))      # zero-initialised output head
    (eps - torch.randn_like(eps)).square().mean().backward()
    assert model.out_proj.weight.grad.abs().sum() > 0


def test_every_parameter_gets_gradient():
    model = tiny_model().train()
    z, t, audio = inputs(model, 2, 9)
    model(z, t, audio, null_mask=torch.tensor([True, False])).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing


@pytest.mark.parametrize("lookahead", [0, 2])
def test_single_block_model_is_causal_in_audio(lookahead):
    """With one block every path from audio to a frame goes through the causal cross-attention
    (and the causal audio encoder), so the whole model is causal: changing audio rows at or
    beyond frame j's horizon 2 (j + 1 + lookahead) leaves frames <= j unchanged."""
    model = tiny_model(n_layers=1, lookahead=lookahead)
    z, t, audio = inputs(model, 2, 11)
    with torch.no_grad():
        base = model(z, t, audio)
        for j in (0, 4, 9):
            horizon = 2 * (j + 1 + lookahead)
            changed = audio.clone()
            changed[:, horizon:] = torch.randn_like(changed[:, horizon:])
            out = model(z, t, changed)
            torch.testing.assert_close(out[:, :j + 1], base[:, :j + 1], rtol=0, atol=1e-6)
            if horizon < audio.shape[1]:   # the test can fail: later frames do see that audio
                assert not torch.allclose(out[:, j + 1:], base[:, j + 1:], atol=1e-4)


def test_cross_attention_is_causal_in_every_block():
    """Per block, F_attn of frame j reads only audio rows < 2 (j + 1 + lookahead). (With two or
    more blocks the model is not causal end to end: the region self-attention is bidirectional
    over time, by design, so later frames' audio reaches earlier frames in the next block.)"""
    model = tiny_model(lookahead=1)
    z, t, audio = inputs(model, 1, 9)
    j = 3
    horizon = 2 * (j + 1 + 1)
    changed = audio.clone()
    changed[:, horizon:] += 5.0
    with torch.no_grad():
        a, b = model.encode_audio(audio), model.encode_audio(changed)
        q = torch.randn(1, 9, model.config.n_heads, model.config.head_dim)
        for ka, va, kb, vb in zip(a.keys, a.values, b.keys, b.values):
            oa = ops.causal_cross_attention(q, ka, va, 1, backend="reference")
            ob = ops.causal_cross_attention(q, kb, vb, 1, backend="reference")
            torch.testing.assert_close(oa[:, :j + 1], ob[:, :j + 1], rtol=0, atol=1e-6)
            assert not torch.allclose(oa[:, j + 1:], ob[:, j + 1:])


def test_region_attention_sees_only_its_own_region():
    model = tiny_model()
    cfg, block = model.config, model.blocks[0]
    widths = [h * cfg.head_dim for h in cfg.region_heads]      # lip 8, eye 8, global 16
    bounds = torch.tensor([0, *widths]).cumsum(0).tolist()
    h = torch.randn(2, 7, cfg.d_model)
    with torch.no_grad():
        base = block.region_attend(h, "reference")
        for r in range(3):
            changed = h.clone()
            changed[..., bounds[r]:bounds[r + 1]] = torch.randn(2, 7, widths[r])
            out = block.region_attend(changed, "reference")
            for other in range(3):
                sl = slice(bounds[other], bounds[other + 1])
                if other == r:
                    assert not torch.allclose(out[..., sl], base[..., sl])
                else:
                    torch.testing.assert_close(out[..., sl], base[..., sl], rtol=0, atol=0)


def test_region_input_projection_follows_the_partition():
    """Perturbing the eye dims of Z_t (scattered over the original order) changes only the eye
    channel group of the hidden state."""
    model = tiny_model()
    cfg, part = model.config, model.partition
    z = torch.randn(2, 5, cfg.num_dims)
    changed = z.clone()
    changed[..., list(part.eye)] += 1.0
    with torch.no_grad():
        a, b = model.project_input(z), model.project_input(changed)
    lip_w, eye_w = cfg.region_heads[0] * cfg.head_dim, cfg.region_heads[1] * cfg.head_dim
    torch.testing.assert_close(a[..., :lip_w], b[..., :lip_w], rtol=0, atol=0)
    torch.testing.assert_close(a[..., lip_w + eye_w:], b[..., lip_w + eye_w:], rtol=0, atol=0)
    assert not torch.allclose(a[..., lip_w:lip_w + eye_w], b[..., lip_w:lip_w + eye_w])


def test_cached_audio_equals_raw_features():
    model = tiny_model()
    z, t, audio = inputs(model, 3, 8)
    with torch.no_grad():
        cache = model.encode_audio(audio)
        assert isinstance(cache, AudioCache) and cache.num_layers == model.config.n_layers
        assert cache.keys[0].shape == (3, 16, model.config.n_heads, model.config.head_dim)
        torch.testing.assert_close(model(z, t, cache), model(z, t, audio), rtol=0, atol=0)


def test_null_mask_uses_the_learned_null_embedding():
    model = tiny_model()
    z, t, audio = inputs(model, 3, 6)
    mask = torch.tensor([True, False, True])
    with torch.no_grad():
        mixed = model(z, t, audio, null_mask=mask)
        cond = model(z, t, audio)
        uncond = model(z, t, None)
        other_audio = model(z, t, torch.randn_like(audio), null_mask=mask)
        via_cache = model(z, t, model.encode_audio(audio), null_mask=mask)
        model.null_audio.add_(1.0)
        moved = model(z, t, audio, null_mask=mask)
    torch.testing.assert_close(mixed[mask], uncond[mask], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(mixed[~mask], cond[~mask], rtol=0, atol=0)
    torch.testing.assert_close(other_audio[mask], mixed[mask], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(via_cache, mixed, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(moved[mask], mixed[mask])         # the null row is a parameter
    torch.testing.assert_close(moved[~mask], mixed[~mask], rtol=0, atol=0)


def test_cache_cat_window_repeat():
    model = tiny_model()
    z, t, audio = inputs(model, 2, 10)
    with torch.no_grad():
        cond, uncond = model.encode_audio(audio), model.encode_audio(None, batch=2, num_frames=10)
        both = AudioCache.cat([cond, uncond])
        out = model(torch.cat([z, z]), torch.cat([t, t]), both)
        torch.testing.assert_close(out[:2], model(z, t, cond), rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(out[2:], model(z, t, None), rtol=1e-6, atol=1e-6)
        win = cond.window(3, 7)
        assert win.num_rows == 8
        torch.testing.assert_close(win.keys[1], cond.keys[1][:, 6:14], rtol=0, atol=0)
        assert cond.window(8, 12).num_rows == 4                 # clamped at the end
        assert cond.repeat(3).batch == 6
        torch.testing.assert_close(cond.repeat(2).values[0][2:], cond.values[0], rtol=0, atol=0)
    with pytest.raises(ValueError, match="window"):
        cond.window(10, 12)
    with pytest.raises(ValueError, match="differ"):
        AudioCache.cat([cond, cond.window(0, 5)])


def test_cache_tracks_null_rows_through_cat_window_and_rows():
    model = tiny_model()
    _, _, audio = inputs(model, 2, 10)
    with torch.no_grad():
        cond, null = model.encode_audio(audio), model.encode_audio(None, batch=1, num_frames=10)
        masked = model.encode_audio(audio, null_mask=torch.tensor([True, False]))
    assert cond.null_rows == (False, False) and null.null_rows == (True,)
    both = AudioCache.cat([cond, null])
    assert both.null_rows == (False, False, True) and both.null_split() == 2
    assert both.window(2, 5).contiguous().null_rows == both.null_rows
    assert both.rows(torch.tensor([2, 0])).null_rows == (True, False)
    assert both.rows(slice(1, None)).null_split() == 1
    assert null.null_split() == 0 and cond.null_split() == 2
    assert AudioCache.cat([null, cond]).null_split() is None        # null rows not a suffix
    assert masked.null_rows is None and AudioCache.cat([masked, null]).null_rows is None
    with pytest.raises(ValueError, match="null_rows names 1 rows"):
        AudioCache(cond.keys, cond.values, (False,))


def test_every_op_goes_through_ops_with_the_models_backend(monkeypatch):
    model = tiny_model()
    model.backend = "auto"
    seen = {}
    for name in ("region_attention", "multi_dilation_dwconv", "local_dwconv",
                 "causal_cross_attention", "film"):
        original = getattr(ops, name)

        def spy(*args, _name=name, _original=original, backend, **kwargs):
            seen.setdefault(_name, set()).add(backend)
            return _original(*args, backend="reference", **kwargs)

        monkeypatch.setattr(ops, name, spy)
    z, t, audio = inputs(model, 1, 5)
    with torch.no_grad():
        model(z, t, audio)
    assert seen == {name: {"auto"} for name in seen} and len(seen) == 5


@pytest.mark.parametrize("changes,absent", [({"disentangle": False}, "in_proj.lip.weight"),
                                            ({"temporal_conv": False}, "blocks.0.tconv.pw.weight")])
def test_ablations(changes, absent):
    model = tiny_model(**changes)
    assert absent not in model.state_dict()
    if not changes.get("disentangle", True):
        assert set(model.in_proj) == {"all"}
        assert list(model.blocks[0].attn_qkv) == ["all"]
    z, t, audio = inputs(model, 2, 7)
    with torch.no_grad():
        assert model(z, t, audio).shape == z.shape


def guided_cache(model, audio, frames):
    """The batch-2B cache [conditional; null] guidance builds."""
    return AudioCache.cat([model.encode_audio(audio),
                           model.encode_audio(None, batch=audio.shape[0], num_frames=frames)])


def test_bad_inputs_give_one_line_errors():
    model = tiny_model()
    z, t, audio = inputs(model, 2, 5)
    cases = [
        (lambda: model(z[..., :-1], t, audio), "z_t must be"),
        (lambda: model(z, t[:1].repeat(3), audio), "t must be"),
        (lambda: model(z, t, audio[..., :-1]), "audio features must be"),
        (lambda: model(z, t, audio, null_mask=torch.tensor([True])), "null_mask"),
        (lambda: model(z, t, model.encode_audio(audio[:1])), "audio cache holds batch"),
        (lambda: model(z, t, model.encode_audio(audio[:, :-2])), "5 frames need 10 audio rows"),
        (lambda: model(z[:, :4], t, model.encode_audio(audio)), "4 frames need 8 audio rows"),
        (lambda: model(z[:1], t[:1], guided_cache(model, audio[:1, :8], 4), guided=True),
         "5 frames need 10 audio rows"),
        (lambda: FastDenoiser.from_reference(model)(z[:1], t[:1],
                                                    guided_cache(model, audio[:1, :8], 4),
                                                    guided=True),
         "5 frames need 10 audio rows"),
        (lambda: model.encode_audio(None), "needs batch"),
        (lambda: DisentTalkDenoiser(tiny_config(), Partition.contiguous(16, 5, 3)), "partition"),
        (lambda: DisentTalkDenoiser(tiny_config(), backend="gpu"), "unknown backend"),
    ]
    for fn, match in cases:
        with pytest.raises((ValueError, RuntimeError)) as info:
            fn()
        assert match in str(info.value) and "\n" not in str(info.value)


def test_autocast_mixed_precision_forward_and_backward():
    """Under autocast nn.Linear emits bf16 while parameters stay fp32: the blocks cast what they
    hand to the ops so every op sees one dtype."""
    model = tiny_model().train()
    z, t, audio = inputs(model, 2, 7)
    cache_fp32 = model.encode_audio(audio)           # computed outside autocast
    with torch.autocast("cpu", dtype=torch.bfloat16):
        eps = model(z, t, audio, null_mask=torch.tensor([False, True]))
        eps_cached = model(z, t, cache_fp32)
    assert eps.dtype == torch.bfloat16 and torch.isfinite(eps).all()
    eps.float().square().mean().backward()
    assert model.blocks[0].tconv.dw_weight.grad is not None
    with torch.no_grad():
        ref = model(z, t, cache_fp32)
    torch.testing.assert_close(eps_cached.float(), ref, rtol=0.05, atol=0.05)


@pytest.mark.parametrize("audio_layers,audio_kernel", [(1, 3), (2, 5), (0, 3)])
def test_window_encoding_equals_full_encoding(audio_layers, audio_kernel):
    model = tiny_model(audio_layers=audio_layers, audio_kernel=audio_kernel)
    assert model.audio_receptive_field == audio_layers * (audio_kernel - 1)
    _, _, audio = inputs(model, 2, 12)
    mask = torch.tensor([False, True])
    with torch.no_grad():
        full = model.encode_audio(audio, mask)
        for start, end in [(0, 4), (1, 5), (5, 12), (9, 20)]:
            win = model.encode_audio_window(audio, start, end, mask)
            ref = full.window(start, end)
            for a, b in zip(win.keys + win.values, ref.keys + ref.values):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="starts at row 24"):
        model.encode_audio_window(audio, 12, 14)


def test_state_dict_names_are_stable():
    """Checkpoints and the FastDenoiser rely on these exact keys and shapes."""
    from disenttalk_fast.config import DisentTalkConfig

    state = DisentTalkDenoiser(DisentTalkConfig()).state_dict()
    block0 = {k[len("blocks.0."):]: tuple(v.shape) for k, v in state.items()
              if k.startswith("blocks.0.")}
    assert block0 == {
        "norm.weight": (256,), "norm.bias": (256,),
        "attn_qkv.lip.weight": (288, 96), "attn_qkv.lip.bias": (288,),
        "attn_qkv.eye.weight": (192, 64), "attn_qkv.eye.bias": (192,),
        "attn_qkv.global.weight": (288, 96), "attn_qkv.global.bias": (288,),
        "attn_fuse.weight": (256, 256), "attn_fuse.bias": (256,),
        "tconv.dw_weight": (3, 256, 3), "tconv.dw_bias": (3, 256),
        "tconv.pw.weight": (256, 768), "tconv.pw.bias": (256,),
        "local_conv.weight": (256, 5), "local_conv.bias": (256,),
        "cross_q.weight": (256, 256), "cross_q.bias": (256,),
        "cross_kv.weight": (512, 256), "cross_kv.bias": (512,),
        "out_fuse.weight": (256, 512), "out_fuse.bias": (256,),
        "film.weight": (512, 256), "film.bias": (512,),
    }
    others = {k.split(".")[0] for k in state if not k.startswith("blocks.")}
    assert others == {"null_audio", "in_proj", "time_embed", "audio_encoder", "out_norm",
                      "out_proj"}
    assert {k for k in state if k.startswith("in_proj.")} == {
        f"in_proj.{r}.{p}" for r in ("lip", "eye", "global") for p in ("weight", "bias")}
    assert sum(1 for k in state if k.endswith(".film.bias")) == 6
    assert sum(v.numel() for v in state.values()) == 5_415_488
