"""The lip-sync expert: training on synthetic data where the lips follow the audio, the offset
sweep scores, L_sync's gradient into the denoiser, and its file format."""

import pytest
import torch

from diffusion_testing import synthetic_clips, tiny_model
from disenttalk_fast.diffusion import GaussianDiffusion
from disenttalk_fast.sync.expert import SyncExpert, SyncLoss, all_windows
from disenttalk_fast.sync.metrics import sync_scores
from disenttalk_fast.sync.train import train_sync_expert

LIPS = (0, 1, 2)   # the tiny model's contiguous partition: lip = dims 0..2


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def expert():
    torch.set_num_threads(1)
    return train_sync_expert(synthetic_clips(4, 60, seed=1), LIPS, steps=300, batch_size=64,
                             lr=1e-3, hidden=64, embed_dim=32, seed=0)


def test_expert_scores_aligned_windows_above_shifted_ones(expert):
    for clip in synthetic_clips(3, 80, seed=7):      # clips the expert never saw
        lw, aw = all_windows(clip["exp"][None][..., list(LIPS)], clip["audio"][None])
        aligned = expert(aw[0], lw[0])
        shifted = expert(aw[0, 5:], lw[0, :-5])      # audio 5 frames later than the lips
        assert aligned.mean() > shifted.mean() + 0.1
        assert ((aligned > 0) & (aligned < 1)).all()


def test_offset_sweep_finds_the_offset(expert):
    clip = synthetic_clips(1, 80, seed=9)[0]
    s = sync_scores(expert, clip["exp"], clip["audio"])
    assert s.offset == 0 and s.confidence > 0.1 and len(s.distances) == 31
    assert s.distance == min(s.distances)
    lagging = sync_scores(expert, torch.roll(clip["exp"], 4, 0), clip["audio"])
    assert lagging.offset == -4        # lips 4 frames late match audio 4 frames earlier
    noise = sync_scores(expert, torch.randn(80, 12), clip["audio"])
    assert noise.confidence < s.confidence and noise.distance > s.distance
    with pytest.raises(ValueError, match="too short for a \\+-15 frame sweep"):
        sync_scores(expert, clip["exp"][:20], clip["audio"][:40])


def test_sync_loss_is_differentiable_wrt_the_denoiser(expert):
    model = tiny_model()
    with torch.no_grad():
        model.out_proj.weight.normal_(0, 0.1)
    clip = synthetic_clips(2, 12, seed=3)
    x0 = torch.stack([c["exp"] for c in clip])
    audio = torch.stack([c["audio"] for c in clip])
    d = GaussianDiffusion.from_config(model.config)
    out = d.training_losses(model, x0, audio, generator=torch.Generator().manual_seed(0),
                            null_mask=torch.tensor([False, True]), sync_loss=SyncLoss(expert),
                            lambda_sync=0.01)
    assert out.sync_loss is not None and out.sync_loss > 0
    assert torch.allclose(out.loss, out.noise_loss + 0.01 * out.sync_loss)
    grads = torch.autograd.grad(out.sync_loss, [model.out_proj.weight, model.in_proj["lip"].weight])
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
    assert all(p.grad is None and not p.requires_grad for p in expert.parameters())
    # no rows with audio: the term is zero but still part of the graph
    none = SyncLoss(expert)(out.x0_pred, audio, torch.tensor([False, False]))
    assert none.item() == 0 and none.requires_grad


def test_save_load_roundtrip_and_bad_files(expert, tmp_path):
    path = tmp_path / "expert.safetensors"
    expert.save(path)
    back = SyncExpert.load(path)
    assert back.lip_dims == LIPS and back.audio_dim == 6
    a, m = torch.randn(4, 10, 6), torch.randn(4, 5, 3)
    assert torch.equal(back(a, m), expert(a, m))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="bad.safetensors: not a readable safetensors file"):
        SyncExpert.load(bad)
    with pytest.raises(FileNotFoundError, match="no such sync expert file"):
        SyncExpert.load(tmp_path / "missing.safetensors")
    from safetensors.torch import save_file
    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not a DisentTalk sync expert"):
        SyncExpert.load(tmp_path / "other.safetensors")


def test_training_errors():
    with pytest.raises(ValueError, match="no clip has the 8 frames"):
        train_sync_expert([{"exp": torch.zeros(6, 12), "audio": torch.zeros(12, 6)}], LIPS, steps=1)
    with pytest.raises(ValueError, match="clip 0: need exp"):
        train_sync_expert([{"exp": torch.zeros(6, 12), "audio": torch.zeros(5, 6)}], LIPS, steps=1)


def test_training_rejects_bad_arguments_and_clips():
    clips = synthetic_clips(2, 30, seed=1)

    def train(data=clips, lip=LIPS, **kw):
        train_sync_expert(data, lip, **{"steps": 1, "batch_size": 4, "hidden": 8,
                                        "embed_dim": 4, **kw})

    for lip, message in (((0, 1, 12), "lip_dims go up to 12; the clips' exp has 12 dims"),
                         ((-1, 0), "integers >= 0"), ((0, 0, 1), "lip_dims has duplicates"),
                         ((0, 1.5), "integers >= 0"), ("012", "list of dim indices")):
        with pytest.raises(ValueError, match=message):
            train(lip=lip)
    nan = [{"exp": clips[0]["exp"].clone(), "audio": clips[0]["audio"]}]
    nan[0]["exp"][3, 0] = float("nan")
    for data, message in ((nan, "clip 0: holds NaN or inf"),
                          (clips[:1] + synthetic_clips(1, 30, audio_dim=7),
                           "clip 1: .*audio dim 7"),
                          ([{"exp": torch.zeros(30, 12)}], "clip 0: needs 'exp' and 'audio'")):
        with pytest.raises(ValueError, match=message):
            train(data)
    for kw, message in (({"lr": float("nan")}, "lr must be"), ({"lr": -1.0}, "lr must be"),
                        ({"steps": 2.5}, "steps must be an integer")):
        with pytest.raises(ValueError, match=message):
            train(**kw)


def test_load_and_save_refuse_bad_files(expert, tmp_path):
    import json

    from safetensors.torch import save_file
    tensors = {k: v.contiguous() for k, v in expert.state_dict().items()}
    cfg = {"audio_dim": 6, "lip_dims": list(LIPS), "hidden": expert.hidden,
           "embed_dim": expert.embed_dim}
    for lips, message in (([-1, -2, -3], "integers >= 0"), ([0, 0, 0], "duplicates")):
        path = tmp_path / "cfg.safetensors"
        save_file(tensors, str(path), metadata={"format": "disenttalk-sync-expert/1",
                                                "config": json.dumps({**cfg, "lip_dims": lips})})
        with pytest.raises(ValueError,
                           match=f"cfg.safetensors: invalid sync expert config.*{message}"):
            SyncExpert.load(path)
    path = tmp_path / "nan.safetensors"
    key = next(iter(tensors))
    save_file({**tensors, key: torch.full_like(tensors[key], float("nan"))}, str(path),
              metadata={"format": "disenttalk-sync-expert/1", "config": json.dumps(cfg)})
    with pytest.raises(ValueError, match="nan.safetensors: sync expert tensor .* NaN or inf"):
        SyncExpert.load(path)
    with pytest.raises(FileNotFoundError, match=r"nodir/x.safetensors: folder .*nodir does not"):
        expert.save(tmp_path / "nodir" / "x.safetensors")
    broken = SyncExpert(6, LIPS, 8, 4)
    with torch.no_grad():
        next(broken.parameters()).fill_(float("inf"))
    with pytest.raises(ValueError, match="NaN or inf"):
        broken.save(tmp_path / "inf.safetensors")
    assert not (tmp_path / "inf.safetensors").exists()
