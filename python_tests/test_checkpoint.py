"""Checkpoints: bit-exact round trip, EMA and extras, atomic writes, one-line errors."""

import json
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

from disenttalk_fast.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from model_testing import inputs, tiny_model


pytestmark = pytest.mark.usefixtures("one_thread")


def stats(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, generator=g), torch.rand(n, generator=g) + 0.1


@pytest.fixture
def saved(tmp_path):
    model = tiny_model(lookahead=1, schedule="cosine", feature_type="hubert", audio_dim=12)
    mean, std = stats(model.config.num_dims)
    ema = {k: v + 0.5 for k, v in model.state_dict().items()}
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, model, partition=model.partition, exp_mean=mean, exp_std=std,
                    extra_tensors={"optim.step": torch.tensor([7])},
                    extra_meta={"step": 7, "note": "test"}, ema_state=ema)
    return path, model, mean, std, ema


def test_round_trip_is_bit_exact(saved):
    path, model, mean, std, _ = saved
    ckpt = load_checkpoint(path)
    assert ckpt.config == model.config and ckpt.partition == model.partition
    assert ckpt.partition.scores == model.partition.scores
    assert torch.equal(ckpt.exp_mean, mean) and torch.equal(ckpt.exp_std, std)
    assert ckpt.meta == {"step": 7, "note": "test"} and ckpt.feature_type == "hubert"
    assert torch.equal(ckpt.extra_tensors["optim.step"], torch.tensor([7]))
    for key, value in model.state_dict().items():
        assert torch.equal(ckpt.model.state_dict()[key], value), key
    z, t, audio = inputs(model, 2, 9)
    with torch.no_grad():
        assert torch.equal(ckpt.model.eval()(z, t, audio), model(z, t, audio))
    x = torch.randn(3, model.config.num_dims)
    torch.testing.assert_close(ckpt.denormalize(ckpt.normalize(x)), x)


def test_ema_weights(saved):
    path, model, _, _, ema = saved
    ckpt = load_checkpoint(path, use_ema=True)
    for key, value in ema.items():
        assert torch.equal(ckpt.model.state_dict()[key], value)
        assert torch.equal(ckpt.ema_state[key], value)
    plain = path.with_name("plain.safetensors")
    save_checkpoint(plain, model, partition=model.partition, exp_mean=torch.zeros(16),
                    exp_std=torch.ones(16))
    ckpt = load_checkpoint(plain, use_ema=True)     # no EMA in the file: the weights
    assert ckpt.ema_state is None and ckpt.meta == {}
    assert torch.equal(ckpt.model.out_proj.weight, model.out_proj.weight)


def test_half_precision_model_round_trips(tmp_path):
    model = tiny_model().to(torch.bfloat16)
    path = tmp_path / "bf16.safetensors"
    save_checkpoint(path, model, partition=model.partition, exp_mean=torch.zeros(16),
                    exp_std=torch.ones(16))
    ckpt = load_checkpoint(path)
    assert ckpt.model.out_proj.weight.dtype == torch.bfloat16
    assert torch.equal(ckpt.model.out_proj.weight, model.out_proj.weight)


def test_write_is_atomic(tmp_path, saved, monkeypatch):
    path, model, mean, std, _ = saved
    before = path.read_bytes()
    import safetensors.torch

    def crash(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model, partition=model.partition, exp_mean=mean, exp_std=std)
    assert path.read_bytes() == before                      # the old file is untouched
    assert sorted(os.listdir(path.parent)) == ["model.safetensors"]   # no temp left behind


def one_line_error(path, match, **kwargs):
    with pytest.raises((CheckpointError, FileNotFoundError)) as info:
        load_checkpoint(path, **kwargs)
    msg = str(info.value)
    assert match in msg and str(path) in msg and "\n" not in msg, msg


def rewrite(path, out, tensors=None, **meta_changes):
    """Copy a checkpoint with its tensors and/or metadata edited."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = dict(f.metadata())
    data = load_file(str(path)) if tensors is None else tensors(load_file(str(path)))
    meta.update(meta_changes)
    save_file(data, str(out), metadata={k: v for k, v in meta.items() if v is not None})
    return out


def test_bad_files_give_one_line_errors(tmp_path, saved):
    path = saved[0]
    one_line_error(tmp_path / "missing.safetensors", "no such checkpoint file")
    one_line_error(tmp_path, "not a file")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(os.urandom(200))
    one_line_error(garbage, "not a readable safetensors file")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[:-100])
    one_line_error(truncated, "not a readable safetensors file")
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    one_line_error(foreign, "not a disenttalk_fast checkpoint")

    key = "model.blocks.1.cross_q.weight"
    drop = lambda d: {k: v for k, v in d.items() if k != key}  # noqa: E731
    one_line_error(rewrite(path, tmp_path / "a.safetensors", drop), f"missing tensor '{key}'")
    shrink = lambda d: {**d, key: d[key][:, :3].contiguous()}  # noqa: E731
    one_line_error(rewrite(path, tmp_path / "b.safetensors", shrink), "has shape")
    stray = lambda d: {**d, "optimizer": torch.zeros(1)}  # noqa: E731
    one_line_error(rewrite(path, tmp_path / "c.safetensors", stray), "unexpected tensor")

    cfg = json.loads(load_checkpoint(path).config.to_json())
    bad_cfg = json.dumps({**cfg, "d_model": 33})
    one_line_error(rewrite(path, tmp_path / "d.safetensors", config=bad_cfg), "invalid config")
    other_cfg = json.dumps({**cfg, "n_layers": 3})    # valid, but weights are for 2 blocks
    one_line_error(rewrite(path, tmp_path / "e.safetensors", config=other_cfg), "missing tensor")
    one_line_error(rewrite(path, tmp_path / "f.safetensors", partition="{"), "not valid JSON")
    one_line_error(rewrite(path, tmp_path / "g.safetensors", stats=None), "no 'stats'")
    one_line_error(rewrite(path, tmp_path / "h.safetensors", format_version="9"), "version 9")
    one_line_error(rewrite(path, tmp_path / "h2.safetensors", feature_type="wav2vec"),
                   "metadata feature_type 'wav2vec' disagrees with the config's 'hubert'")
    nan = lambda d: {**d, key: torch.full_like(d[key], float("nan"))}  # noqa: E731
    one_line_error(rewrite(path, tmp_path / "i.safetensors", nan), "holds NaN or inf")
    huge_cfg = json.dumps({**cfg, "n_layers": 10 ** 12})   # would hang building the model
    one_line_error(rewrite(path, tmp_path / "j.safetensors", config=huge_cfg),
                   "n_layers = 1000000000000 is beyond the supported 1024")
    # Within the limits but ~0.9 TB of fp32 weights: refused from the file's tensors, before
    # any of that memory is allocated.
    big_cfg = json.dumps({**cfg, "d_model": 16384, "head_dim": 1024, "region_heads": [8, 4, 4],
                          "n_layers": 1024})
    one_line_error(rewrite(path, tmp_path / "k.safetensors", config=big_cfg),
                   "config and weights disagree")


def test_bad_save_arguments(tmp_path):
    model = tiny_model()
    ok = dict(partition=model.partition, exp_mean=torch.zeros(16), exp_std=torch.ones(16))
    with pytest.raises(ValueError, match="exp_mean must have 16"):
        save_checkpoint(tmp_path / "x", model, **{**ok, "exp_mean": torch.zeros(3)})
    with pytest.raises(ValueError, match="exp_std must be > 0"):
        save_checkpoint(tmp_path / "x", model, **{**ok, "exp_std": torch.zeros(16)})
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        save_checkpoint(tmp_path / "x", model, **ok, extra_meta={"a": object()})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_checkpoint(tmp_path / "no" / "x", model, **ok)
    assert os.listdir(tmp_path) == []


def test_save_refuses_what_load_would_refuse(tmp_path):
    model = tiny_model()
    mean, std = stats(model.config.num_dims)
    path = tmp_path / "bad.safetensors"

    def save(**kw):
        save_checkpoint(path, model, partition=model.partition, exp_mean=mean, exp_std=std, **kw)

    ema = {k: v.clone() for k, v in model.state_dict().items()}
    key = next(k for k, v in ema.items() if v.is_floating_point())
    for value, message in ((torch.full_like(ema[key], float("inf")), "holds NaN or inf"),
                           (ema[key][:1].clone(), "the model's is"),
                           (ema[key].double(), "the model's is")):
        with pytest.raises(ValueError, match=f"'ema.{key}' .*{message}"):
            save(ema_state={**ema, key: value})
    with pytest.raises(ValueError, match="ema_state must be a state_dict"):
        save(ema_state=[1])
    with pytest.raises(ValueError, match="exp_std must be"):
        save_checkpoint(path, model, partition=model.partition, exp_mean=mean, exp_std=None)
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    with pytest.raises(ValueError, match="'model.* holds NaN or inf"):
        save()
    assert not path.exists()
