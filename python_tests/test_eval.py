"""`disenttalk eval`: the metrics on known signals, the acceptance checks, and an end-to-end
run on a tiny hand-made test set with a tiny model (fast; no espeak needed)."""

import json

import numpy as np
import pytest
import soundfile as sf

from disenttalk_fast.evaluation import metrics, report


def test_jitter_is_the_mean_absolute_second_difference():
    assert metrics.jitter(np.arange(10.0)[:, None]) == 0.0          # linear motion: no jitter
    x = np.zeros((6, 2))
    x[3] = 1.0
    assert metrics.jitter(x) == pytest.approx((1 + 2 + 1) * 2 / (4 * 2))
    with pytest.raises(ValueError):
        metrics.jitter(np.zeros((2, 3)))


def test_blink_rate_counts_closures_per_second():
    closure = np.zeros(250)          # 10 s
    for start in (20, 100, 180):
        closure[start:start + 4] = 0.9
    assert metrics.blink_rate(closure) == pytest.approx(0.3)
    closure[0:2] = 1.0               # a blink already under way at the start counts too
    assert metrics.blink_rate(closure) == pytest.approx(0.4)


def test_pearson_lmd_diversity_energy():
    a = np.sin(np.linspace(0, 6, 50))
    assert metrics.pearson(a, 2 * a + 1) == pytest.approx(1.0)
    assert metrics.pearson(a, -a) == pytest.approx(-1.0)
    assert metrics.pearson(a, np.ones(50)) == 0.0
    v = np.zeros((5, 3, 3))
    w = v.copy()
    w[..., 0] = 3.0
    w[..., 1] = 4.0
    assert metrics.landmark_distance(v, w) == pytest.approx(5.0)
    assert metrics.diversity([v[:, 0], v[:, 0]]) == 0.0
    assert metrics.diversity([v[:, 0], w[:, 0]]) == pytest.approx(5.0)
    e = metrics.audio_energy(np.r_[np.zeros(640), np.ones(640)], 3)
    assert e.shape == (3,) and e[1] == pytest.approx(0.0, abs=1e-6) and e[0] < -90


def test_checks_follow_the_issue_thresholds():
    row = lambda c, b=0.35, j=0.1: {"lse_c": c, "blink_rate": b, "jitter": j}  # noqa: E731
    main = {"ground_truth": row(0.4), "generated": row(0.33), "mismatched_audio": row(0.1)}
    ok = report.checks(main, {"ddim": {"lse_c": 0.33}, "ddpm": {"lse_c": 0.35},
                              "timesteps": 400})
    assert all(p for _, p, _ in ok) and len(ok) == 5
    main["generated"] = row(0.3, b=0.5, j=0.2)
    bad = dict((c, p) for c, p, _ in report.checks(main, None))
    assert not bad["sync confidence >= 0.8 x ground truth's"]
    assert not bad["blink rate within 0.28-0.45 / s"]
    assert not bad["jitter within 1.5 x ground truth's"]
    assert bad["sync confidence >= 2 x the mismatched-audio control's"]


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    """A two-clip test set (synthetic motion on the built-in face + tone bursts), a tiny model
    and a tiny sync expert."""
    import torch

    from disenttalk_fast.audio.cache import audio_digest
    from disenttalk_fast.audio.load import load_audio
    from disenttalk_fast.corpus import motion_synth, projection
    from disenttalk_fast.corpus.build import _write_dataset
    from disenttalk_fast.corpus.espeak import Phoneme
    from disenttalk_fast.motion import Motion
    from disenttalk_fast.sync.expert import SyncExpert
    from test_demo import tiny_face_checkpoint

    root = tmp_path_factory.mktemp("eval")
    (root / "test" / "clips").mkdir(parents=True)
    rows, exps = [], []
    for i, lang in enumerate(("en", "zh")):
        frames = 45
        rng = np.random.default_rng(i)
        ph = [Phoneme("_", 0.0), Phoneme("m", 0.3), Phoneme("a", 0.4), Phoneme("_", 0.9),
              Phoneme("b", 1.1), Phoneme("u", 1.2), Phoneme("_", 1.5)]
        w = motion_synth.synthesize_weights(ph, frames / 25, lang, frames,
                                            motion_synth.MotionStyle(), rng)
        exp = projection.weights_to_exp(w) + projection.tracking_noise(frames, rng)
        exps.append(exp)
        cid = f"{lang}_{i:05d}"
        Motion(exp).save(root / "test" / "clips" / f"{cid}.npz")
        t = np.arange(frames * 640) / 16000
        wav = root / f"{cid}.wav"
        sf.write(wav, (0.3 * np.sin(2 * np.pi * (150 + 50 * i) * t)
                       * (np.sin(2 * np.pi * 2 * t) > 0)).astype(np.float32), 16000)
        rows.append({"id": cid, "motion": f"clips/{cid}.npz", "audio": str(wav),
                     "audio_sha256": audio_digest(load_audio(wav)), "frames": frames,
                     "duration": frames / 25, "split": "test", "has_pose": False,
                     "language": lang})
    allx = np.concatenate(exps)
    _write_dataset(root / "test", rows, allx.mean(0), allx.std(0), 64)
    ckpt = tiny_face_checkpoint(root / "tiny.safetensors")
    torch.manual_seed(0)
    from disenttalk_fast.partition import Partition
    SyncExpert(80, Partition.contiguous().lip, hidden=16, embed_dim=8).save(root / "expert.st")
    return root, ckpt


def test_eval_writes_table_json_and_plots(tiny_setup):
    from disenttalk_fast.cli import main

    root, ckpt = tiny_setup
    out = root / "out"
    assert main(["eval", "--test", str(root / "test"), "--model", str(ckpt),
                 "--expert", str(root / "expert.st"), "-o", str(out), "--steps", "2",
                 "--seeds", "2", "--diversity-clips", "2", "--ddpm-clips", "1",
                 "--cross-lingual", str(ckpt), "--ablation", f"no_sync_loss={ckpt}",
                 "--ablation-baseline", str(ckpt)]) == 0
    result = json.loads((out / "eval.json").read_text())
    assert set(result["main"]) == {"ground_truth", "generated", "mismatched_audio", "mean_motion"}
    gt = result["main"]["ground_truth"]
    assert gt["mouth_corr"] == pytest.approx(1.0) and gt["lmd"] == 0.0 and gt["clips"] == 2
    assert result["main"]["mean_motion"]["jitter"] == 0.0
    assert set(result["per_language"]) == {"en", "zh"}
    assert set(result["diversity"]) == {"lip", "eye", "global"}
    assert result["ddpm_vs_ddim"]["timesteps"] == 20
    assert "en_only_on_zh" in result["cross_lingual"]
    assert list(result["ablations"]) == ["full model (same budget)", "no_sync_loss"]
    assert len(result["checks"]) == 5
    md = (out / "eval.md").read_text()
    assert "| ground truth |" in md and "### Cross-lingual" in md and "### Ablations" in md
    for png in ("eye_openness.png", "mouth_vs_energy.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


def test_eval_errors_are_one_line(tmp_path, capsys):
    from disenttalk_fast.cli import main

    assert main(["eval", "-o", str(tmp_path / "o")]) == 2
    assert "--corpus" in capsys.readouterr().err
    assert main(["eval", "--corpus", str(tmp_path / "none")]) == 2
    assert "no such test dataset" in capsys.readouterr().err
    (tmp_path / "file.txt").write_text("x")
    assert main(["eval", "--test", str(tmp_path), "-o", str(tmp_path / "file.txt")]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    # A test set that turns out unusable leaves no empty output folder behind.
    assert main(["eval", "--test", str(tmp_path / "file.txt"), "-o", str(tmp_path / "ev")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "ev").exists()


@pytest.fixture(scope="module")
def bad_files(tiny_setup):
    """Files that are not checkpoints: a folder, a text file, and a safetensors file of another
    kind (the sync expert)."""
    root, _ = tiny_setup
    (root / "folder.safetensors").mkdir(exist_ok=True)
    (root / "text.safetensors").write_text("not safetensors")
    return {"folder": root / "folder.safetensors", "text": root / "text.safetensors",
            "expert": root / "expert.st", "missing": root / "missing.safetensors"}


@pytest.mark.parametrize("extra,message", [
    (["--steps", "0"], "--steps must be >= 1, got 0"),
    (["--steps", "21"], "--steps 21 exceeds the T=20 diffusion steps of --model "),
    (["--max-clips", "-1"], "--max-clips must be >= 0, got -1"),
    (["--ddpm-clips", "-2"], "--ddpm-clips must be >= 0, got -2"),
    (["--diversity-clips", "-1"], "--diversity-clips must be >= 0, got -1"),
    (["--ablation", "x={text}"], "--ablation x={text}: not a readable safetensors file"),
    (["--ablation", "x={expert}"], "--ablation x={expert}: not a disenttalk_fast checkpoint"),
    (["--ablation", "x={folder}"], "--ablation x={folder}: not a file"),
    (["--ablation", "x={missing}"], "--ablation x={missing}: no such checkpoint file"),
    (["--ablation", "x"], "--ablation 'x': expected NAME=CKPT"),
    (["--ablation", "x={ckpt}", "--ablation", "x={ckpt}"], "the name 'x' is taken"),
    (["--ablation", "x={ckpt}", "--ablation-baseline", "{missing}"],
     "--ablation-baseline {missing}: no such checkpoint file"),
    (["--ablation", "x={ckpt}", "--steps", "21"], "--steps 21 exceeds the T=20"),
    (["--ablation-baseline", "{ckpt}"], "--ablation-baseline is the reference of --ablation"),
    (["--cross-lingual", "{missing}"], "--cross-lingual {missing}: no such checkpoint file"),
    (["--model", "{text}"], "--model {text}: not a readable safetensors file"),
    (["--expert", "{folder}"], "{folder}: the sync expert is not a file"),
])
def test_eval_bad_arguments_fail_before_any_work(tiny_setup, bad_files, extra, message, tmp_path,
                                                 capsys):
    """Each of these once failed only after the models loaded or after the whole main
    evaluation, leaving an empty output folder: now a one-line error first, and no folder."""
    from disenttalk_fast.cli import main

    root, ckpt = tiny_setup
    names = {**bad_files, "ckpt": ckpt}
    extra = [a.format(**names) for a in extra]
    out = tmp_path / "out"
    assert main(["eval", "--test", str(root / "test"), "--model", str(ckpt),
                 "--expert", str(root / "expert.st"), "-o", str(out), "--steps", "2",
                 *extra]) == 2
    printed = capsys.readouterr()
    err = printed.err.strip()
    assert message.format(**names) in err and "\n" not in err
    assert not out.exists()


def test_eval_output_folder_is_checked_first(tiny_setup, tmp_path, capsys):
    from disenttalk_fast.cli import main

    root, ckpt = tiny_setup
    (tmp_path / "file").write_text("x")
    (tmp_path / "out" / "eval.json").mkdir(parents=True)
    for out, message in [(tmp_path / "file" / "sub", "is a file, not a folder"),
                         (tmp_path / "out", "eval.json: is a directory")]:
        assert main(["eval", "--test", str(root / "test"), "--model", str(ckpt),
                     "--expert", str(root / "expert.st"), "-o", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err


def test_cross_lingual_needs_mandarin_clips(tiny_setup, tmp_path, capsys):
    """--cross-lingual on a test set without zh clips was silently skipped (even a missing
    file): now an error, before any model is loaded."""
    import shutil

    from disenttalk_fast.cli import main

    root, ckpt = tiny_setup
    en_only = tmp_path / "en_only"
    shutil.copytree(root / "test", en_only)
    manifest = en_only / "manifest.jsonl"
    manifest.write_text("".join(line + "\n" for line in manifest.read_text().splitlines()
                                if '"en_' in line))
    dataset = json.loads((en_only / "dataset.json").read_text())
    (en_only / "dataset.json").write_text(json.dumps({**dataset, "num_clips": 1}))
    out = tmp_path / "out"
    assert main(["eval", "--test", str(en_only), "--model", str(ckpt), "--expert",
                 str(root / "expert.st"), "-o", str(out), "--steps", "2",
                 "--cross-lingual", str(ckpt)]) == 2
    err = capsys.readouterr().err.strip()
    assert "has no Mandarin (zh) test clip" in err and "\n" not in err
    assert not out.exists()


def test_a_failed_write_leaves_no_output_folder(tiny_setup, tmp_path, monkeypatch, capsys):
    """The folder is made only when the results are ready, and taken away again when writing
    them fails: never a folder with some of the files."""
    from disenttalk_fast.cli import main
    from disenttalk_fast.evaluation import report

    def full_disk(path, *args):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(report, "plot_mouth_vs_energy", full_disk)
    root, ckpt = tiny_setup
    out = tmp_path / "new" / "out"
    assert main(["eval", "--test", str(root / "test"), "--model", str(ckpt), "--expert",
                 str(root / "expert.st"), "-o", str(out), "--steps", "2", "--max-clips", "1",
                 "--ddpm-clips", "0", "--seeds", "0"]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
