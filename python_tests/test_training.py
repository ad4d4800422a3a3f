"""Trainer: exact resume, checkpoints (atomic, EMA, training state), random windows, the sync
loss in training, mixed precision, and the `disenttalk train` / `train-sync` commands."""

import json

import numpy as np
import pytest
import torch

from diffusion_testing import synthetic_clips, tiny_config, tiny_model
from disenttalk_fast import cli
from disenttalk_fast.checkpoint import load_checkpoint
from disenttalk_fast.sync.train import train_sync_expert
from disenttalk_fast.training.trainer import Trainer
from disenttalk_fast.training.windows import RandomWindows

CLIPS = synthetic_clips(3, 30, seed=5)


pytestmark = pytest.mark.usefixtures("one_thread")


def make_trainer(**kw):
    kw = {"seed": 1, "batch_size": 4, "window": 12, "lr": 1e-3, **kw}
    return Trainer(tiny_model(seed=2), CLIPS, exp_mean=torch.zeros(12), exp_std=torch.ones(12), **kw)


def test_resume_is_exact(tmp_path):
    a = make_trainer()
    a.fit(4, progress=False)
    b = make_trainer()
    b.fit(2, progress=False)
    path = tmp_path / "run.safetensors"
    b.save(path)
    del b
    c = Trainer.resume(path, CLIPS)
    assert c.step == 2 and c.lr == 1e-3 and c.batch_size == 4 and c.window == 12
    c.fit(4, progress=False)
    for (name, pa), pc in zip(a.model.named_parameters(), c.model.parameters()):
        assert torch.equal(pa, pc), name
    for pa, pc in zip(a.ema.model.parameters(), c.ema.model.parameters()):
        assert torch.equal(pa, pc)
    for pa, pc in zip(a.model.parameters(), c.model.parameters()):
        sa, sc = a.optimizer.state[pa], c.optimizer.state[pc]
        assert all(torch.equal(sa[k], sc[k]) for k in ("exp_avg", "exp_avg_sq", "step"))


def test_checkpoint_holds_ema_weights_and_stats(tmp_path):
    t = make_trainer(ema_decay=0.5)
    path = tmp_path / "ck.safetensors"
    calls = []
    t.fit(3, out=path, checkpoint_every=2, progress=lambda step, stats: calls.append(step))
    assert calls == [1, 2, 3]
    ck = load_checkpoint(path, use_ema=True)
    for pe, pm in zip(t.ema.model.parameters(), ck.model.parameters()):
        assert torch.equal(pe, pm)
    raw = load_checkpoint(path)
    assert all(torch.equal(p, q) for p, q in zip(t.model.parameters(), raw.model.parameters()))
    assert raw.meta["training"]["step"] == 3 and raw.meta["training"]["world_size"] == 1
    assert torch.equal(raw.exp_std, torch.ones(12))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.safetensors"]   # no temp files


def test_a_failed_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    t = make_trainer()
    path = tmp_path / "ck.safetensors"
    t.fit(1, out=path, progress=False)
    before = path.read_bytes()
    import safetensors.torch

    def crash(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise KeyboardInterrupt  # a killed run

    monkeypatch.setattr(safetensors.torch, "save_file", crash)
    t.train_step()
    with pytest.raises(KeyboardInterrupt):
        t.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.safetensors"]


def test_random_windows_are_aligned_slices():
    rw = RandomWindows(CLIPS, window=7, batch_size=50)
    exp, audio = rw.draw(torch.Generator().manual_seed(0))
    assert exp.shape == (50, 7, 12) and audio.shape == (50, 14, 6)
    for e, a in zip(exp, audio):
        hits = [(i, s) for i, c in enumerate(CLIPS) for s in range(30 - 6)
                if torch.equal(c["exp"][s:s + 7], e)]
        assert len(hits) == 1
        i, s = hits[0]
        assert torch.equal(CLIPS[i]["audio"][2 * s:2 * s + 14], a)
    with pytest.raises(ValueError, match="no clip has 40 frames for a training window"):
        RandomWindows(CLIPS, window=40, batch_size=2)
    with pytest.raises(ValueError, match="clip 0: audio must be"):
        RandomWindows([{"exp": torch.zeros(5, 12), "audio": torch.zeros(9, 6)}], 5, 1)
    with pytest.raises(ValueError, match="exp has 11 dims, the model 12"):
        RandomWindows([{"exp": torch.zeros(5, 11), "audio": torch.zeros(10, 6)}], 5, 1,
                      num_dims=12)


def test_training_with_the_sync_expert_and_bf16():
    expert = train_sync_expert(CLIPS, (0, 1, 2), steps=5, batch_size=8, hidden=16, embed_dim=8)
    t = make_trainer(sync_expert=expert, lambda_sync=0.5)
    stats = t.train_step()
    assert stats["sync_loss"] > 0 and stats["loss"] > stats["noise_loss"]
    t = make_trainer(precision="bf16")
    assert np.isfinite(t.train_step()["loss"])
    with pytest.raises(ValueError, match="differ from the model's partition lip dims"):
        make_trainer(sync_expert=train_sync_expert(CLIPS, (0, 1, 5), steps=1, batch_size=2))
    with pytest.raises(ValueError, match="precision must be one of"):
        make_trainer(precision="fp8")


@pytest.mark.parametrize("kw, message", [
    ({"lambda_sync": -1.0}, "lambda_sync must be a finite number >= 0"),
    ({"lambda_sync": float("nan")}, "lambda_sync must be"),
    ({"grad_clip": -1.0}, "grad_clip must be a finite number >= 0"),
    ({"grad_clip": float("nan")}, "grad_clip must be"),
    ({"lr": 1e39}, "lr must be a number in"), ({"lr": float("inf")}, "lr must be"),
    ({"batch_size": 2.7}, "batch_size must be an integer"),
    ({"window": 12.9}, "window must be an integer"),
])
def test_bad_settings_are_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        make_trainer(**kw)


def test_bad_stats_and_fit_arguments_are_refused_before_training(tmp_path):
    def trainer(**kw):
        return Trainer(tiny_model(seed=2), CLIPS, seed=1, batch_size=4, window=12, **kw)

    with pytest.raises(ValueError, match="exp_std must have 12 values, got 5"):
        trainer(exp_std=torch.ones(5))
    with pytest.raises(ValueError, match="exp_std must be > 0"):
        trainer(exp_std=-torch.ones(12))
    with pytest.raises(ValueError, match="exp_mean must be finite"):
        trainer(exp_mean=torch.full((12,), float("nan")))
    t = make_trainer()
    with pytest.raises(ValueError, match="steps must be an integer"):
        t.fit(1.5, progress=False)
    with pytest.raises(ValueError, match="out: folder .*nodir does not exist"):
        t.fit(2, out=tmp_path / "nodir" / "x.safetensors", progress=False)
    assert t.step == 0


def test_a_diverged_run_writes_no_checkpoint(tmp_path):
    out = tmp_path / "run.safetensors"

    def poison(step, stats):   # weights go bad after the step whose loss was still finite
        with torch.no_grad():
            next(t.model.parameters()).fill_(float("nan"))

    t = make_trainer()
    with pytest.raises(RuntimeError, match=r"training diverged: the weights hold NaN or inf "
                                           r"after step 1; .*run.safetensors was not written"):
        t.fit(1, out=out, progress=poison)
    assert not out.exists()


def test_sync_expert_must_fit_the_data_and_window():
    expert = train_sync_expert(synthetic_clips(2, 30, audio_dim=7), (0, 1, 2), steps=1,
                               batch_size=2, hidden=8, embed_dim=4)
    with pytest.raises(ValueError, match="sync expert takes audio features of dim 7, the clips "
                                         "have 6"):
        make_trainer(sync_expert=expert)
    expert = train_sync_expert(CLIPS, (0, 1, 2), steps=1, batch_size=2, hidden=8, embed_dim=4)
    with pytest.raises(ValueError, match="window must be >= 5 frames with a sync expert"):
        make_trainer(sync_expert=expert, window=4)


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.pop("step"), "step must be an integer >= 0, got None"),
    (lambda m: m.update(step="x"), "step must be"), (lambda m: m.update(step=-5), "step must be"),
    (lambda m: m.update(step=2.5), "step must be"),
    (lambda m: m.update(batch_size="abc"), "batch_size must be an integer"),
])
def test_resume_refuses_bad_training_state(tmp_path, edit, message):
    from safetensors import safe_open
    from safetensors.torch import save_file
    path = tmp_path / "run.safetensors"
    make_trainer().fit(1, out=path, progress=False)
    with safe_open(str(path), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    extra = json.loads(meta["extra"])
    edit(extra["training"])
    save_file(tensors, str(path), metadata={**meta, "extra": json.dumps(extra)})
    with pytest.raises(ValueError, match=f"run.safetensors: bad training state \\({message}"):
        Trainer.resume(path, CLIPS)


# -- the commands ----------------------------------------------------------------------------------
TINY = json.dumps({k: v for k, v in tiny_config().to_dict().items()
                   if k not in ("num_dims", "audio_dim", "feature_type")})


@pytest.fixture
def npz(tmp_path):
    path = tmp_path / "clips.npz"
    np.savez(path, **{f"exp_c{i}": c["exp"].numpy() * 3 + 1 for i, c in enumerate(CLIPS)},
             **{f"audio_c{i}": c["audio"].numpy() for i, c in enumerate(CLIPS)})
    return path


def run_cli(*argv):
    return cli.main([str(a) for a in argv])


def test_train_command_trains_and_resumes(npz, tmp_path, capsys):
    out = tmp_path / "ck.safetensors"
    assert run_cli("train", npz, "--out", out, "--steps", 2, "--config", TINY,
                   "--no-progress") == 0
    ck = load_checkpoint(out)
    assert ck.meta["training"]["step"] == 2 and ck.config.audio_dim == 6
    allexp = np.concatenate([c["exp"].numpy() * 3 + 1 for c in CLIPS])
    assert np.allclose(ck.exp_mean.numpy(), allexp.mean(0), atol=1e-5)
    assert run_cli("train", npz, "--out", out, "--steps", 3, "--resume", "--no-progress") == 0
    assert load_checkpoint(out).meta["training"]["step"] == 3
    assert "step 3" in capsys.readouterr().out


@pytest.mark.parametrize("args,message", [
    (("--steps", 0), "--steps must be >= 1"),
    (("--steps", 2, "--resume"), "nothing to resume"),
    (("--steps", 2, "--config", "{bad"), "--config: not valid JSON"),
    (("--steps", 2, "--config", '{"colour": 1}'), "unknown config key(s) 'colour'"),
    (("--steps", 2, "--config", '{"timesteps": 0}'), "timesteps must be >= 1"),
    (("--steps", 2, "--lr", "nan"), "--lr must be a finite number > 0"),
    (("--steps", 2, "--batch-size", 0), "--batch-size must be >= 1"),
    (("--steps", 2, "--window", 0), "--window must be >= 1 frame"),
    (("--steps", 2, "--device", "meta"), "--device"),
    (("--steps", 2, "--out", "model.pt"), "the output is a .safetensors file"),
])
def test_train_command_errors_are_one_line(npz, tmp_path, capsys, args, message):
    if "--out" in args:   # (the later --out wins)
        args = (*args[:-1], tmp_path / args[-1])
    assert run_cli("train", npz, "--out", tmp_path / "x.safetensors", *args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and err.startswith("disenttalk train: error:")


def test_train_command_file_errors(npz, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    assert run_cli("train", npz, "--out", corrupt, "--steps", 2, "--resume") == 2
    assert "corrupt.safetensors: not a readable safetensors file" in capsys.readouterr().err
    assert run_cli("train", tmp_path / "nope", "--out", tmp_path / "y.safetensors",
                   "--steps", 2) == 2
    assert "nope: no such dataset folder or .npz file" in capsys.readouterr().err
    (tmp_path / "exists.safetensors").write_bytes(b"")
    assert run_cli("train", npz, "--out", tmp_path / "exists.safetensors", "--steps", 2) == 2
    assert "exists: pass --resume" in capsys.readouterr().err
    np.savez(tmp_path / "odd.npz", exp_a=np.zeros((5, 12)))
    assert run_cli("train", tmp_path / "odd.npz", "--out", tmp_path / "z.safetensors",
                   "--steps", 2) == 2
    assert "clip 'a' has exp_a but no audio_a" in capsys.readouterr().err


def test_train_sync_command(npz, tmp_path, capsys):
    out = tmp_path / "expert.safetensors"
    assert run_cli("train-sync", npz, "--out", out, "--steps", 3, "--k-lip", 3,
                   "--batch-size", 8) == 0
    from disenttalk_fast.sync.expert import SyncExpert
    assert SyncExpert.load(out).lip_dims == (0, 1, 2)
    assert "sync expert over lip dims [0, 1, 2]" in capsys.readouterr().out
    assert run_cli("train", npz, "--out", tmp_path / "ck.safetensors", "--steps", 1,
                   "--config", TINY, "--sync-expert", out, "--no-progress") == 0
    # Refused before training starts (one line, no progress bar, no file).
    for flags, message in [(["--batch-size", 0], "--batch-size must be >= 1"),
                           (["--lr", "nan"], "--lr must be a finite number > 0"),
                           (["--device", "meta"], "--device")]:
        assert run_cli("train-sync", npz, "--out", tmp_path / "e2.safetensors", "--steps", 3,
                       *flags) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, err
    assert not (tmp_path / "e2.safetensors").exists()


def test_train_command_on_a_prepared_dataset_folder(tmp_path, capsys):
    """`disenttalk prepare` output -> ClipDataset (mel features) -> `disenttalk train`."""
    import soundfile as sf

    from disenttalk_fast.data import prepare_dataset
    from disenttalk_fast.interop import write_motion
    from disenttalk_fast.motion import Motion

    audio_dir, coeff_dir = tmp_path / "audio", tmp_path / "coeffs"
    audio_dir.mkdir()
    coeff_dir.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        sf.write(audio_dir / f"c{i}.wav", (rng.standard_normal(24 * 640) * 0.1).astype(np.float32),
                 16000)
        write_motion(Motion(rng.standard_normal((24, 12)).astype(np.float32), None, 25.0),
                     coeff_dir / f"c{i}.npz")
    prepare_dataset(audio_dir, coeff_dir, tmp_path / "ds", val_fraction=0.0)
    out = tmp_path / "ck.safetensors"
    assert run_cli("train", tmp_path / "ds", "--out", out, "--steps", 1, "--config", TINY,
                   "--no-progress") == 0
    ck = load_checkpoint(out)
    assert ck.config.audio_dim == 80 and ck.config.feature_type == "mel"
    assert "2 clips, mel features" in capsys.readouterr().out
