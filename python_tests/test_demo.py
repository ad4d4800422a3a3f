"""`disenttalk demo`: the bundled assets exist and load, and the command writes an .mp4 with
video and sound (checked here with a tiny checkpoint so the test stays fast)."""

from pathlib import Path

import numpy as np
import soundfile as sf

from disenttalk_fast.cli import main
from disenttalk_fast.commands.demo import ASSETS, DEMO_MODEL, SAMPLES


def tiny_face_checkpoint(path: Path, timesteps: int = 20) -> Path:
    """A tiny untrained 64-dim model (the built-in face's width) on 80-band mel features."""
    import torch

    from disenttalk_fast.checkpoint import save_checkpoint
    from disenttalk_fast.config import DisentTalkConfig
    from disenttalk_fast.model import DisentTalkDenoiser
    from disenttalk_fast.partition import Partition

    config = DisentTalkConfig(d_model=64, head_dim=16, region_heads=(2, 1, 1), n_layers=1,
                              audio_dim=80, timesteps=timesteps, window=32)
    torch.manual_seed(0)
    model = DisentTalkDenoiser(config, Partition.contiguous())
    with torch.no_grad():
        model.out_proj.weight.normal_(0, 0.05)
    save_checkpoint(path, model, partition=model.partition, exp_mean=torch.zeros(64),
                    exp_std=torch.full((64,), 0.05))
    return path


def speech_like(path: Path, seconds: float = 1.6) -> Path:
    t = np.arange(int(16000 * seconds)) / 16000
    env = (np.sin(2 * np.pi * 3 * t) > 0).astype(np.float32)
    sf.write(path, (0.3 * env * np.sin(2 * np.pi * 180 * t)).astype(np.float32), 16000)
    return path


def test_bundled_assets_are_small_and_load():
    from disenttalk_fast.checkpoint import load_checkpoint
    from disenttalk_fast.sync.expert import SyncExpert

    assert DEMO_MODEL.is_file(), "the demo checkpoint must ship inside the package"
    assert DEMO_MODEL.stat().st_size < 20e6
    ckpt = load_checkpoint(DEMO_MODEL)
    assert ckpt.config.num_dims == 64 and ckpt.feature_type == "mel"
    expert = SyncExpert.load(ASSETS / "sync_expert.safetensors")
    assert tuple(expert.lip_dims) == ckpt.partition.lip
    for lang, wav in SAMPLES.items():
        info = sf.info(wav)
        assert info.samplerate == 16000 and info.channels == 1 and 2.5 < info.duration < 12, lang


def test_demo_writes_an_mp4_with_video_and_audio(tmp_path):
    import av

    ckpt = tiny_face_checkpoint(tmp_path / "tiny.safetensors")
    wav = speech_like(tmp_path / "speech.wav")
    out = tmp_path / "demo.mp4"
    assert main(["demo", "-o", str(out), "--model", str(ckpt), "--audio", str(wav),
                 "--size", "32", "--steps", "2"]) == 0
    with av.open(str(out)) as container:
        kinds = {s.type for s in container.streams}
        frames = sum(1 for _ in container.decode(video=0))
    assert kinds == {"video", "audio"}
    assert frames == 40     # 1.6 s at 25 fps


def test_demo_errors_are_one_line(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path / "x.avi")]) == 2
    assert "must be an .mp4" in capsys.readouterr().err
    assert main(["demo", "-o", str(tmp_path / "x.mp4"), "--model", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "no such demo model" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.mp4").exists()
