"""Samplers: determinism per seed, correctness on an exact denoiser, windowed long sequences
(no seam, bounded memory), region control and the one-line errors."""

import math

import pytest
import torch

from diffusion_testing import GaussianProcessDenoiser, tiny_config, tiny_model
from disenttalk_fast.diffusion import GaussianDiffusion
from disenttalk_fast.sampling.ddim import ddim_plan, ddim_timesteps
from disenttalk_fast.sampling.ddpm import ddpm_plan
from disenttalk_fast.sampling.region_control import RegionControl
from disenttalk_fast.sampling.sampler import sample
from disenttalk_fast.sampling.step import DenoiseStep
from disenttalk_fast.sampling.windowed import window_starts


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    m = tiny_model(seed=3)
    with torch.no_grad():  # an untrained model predicts eps = 0; give it a non-trivial head
        m.out_proj.weight.normal_(0, 0.2, generator=torch.Generator().manual_seed(0))
    return m


AUDIO = torch.randn(2, 30, 6, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("sampler,steps", [("ddim", 8), ("ddpm", None)])
def test_sampling_is_deterministic_per_seed(model, sampler, steps):
    a = sample(model, AUDIO, sampler=sampler, steps=steps, guidance=2.0, seed=7)
    torch.randn(100)  # the global RNG plays no part
    b = sample(model, AUDIO, sampler=sampler, steps=steps, guidance=2.0, seed=7)
    c = sample(model, AUDIO, sampler=sampler, steps=steps, guidance=2.0, seed=8)
    assert a.shape == (2, 15, 12) and a.dtype == torch.float32 and torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert model.training  # mode restored


def test_plans():
    d = GaussianDiffusion(400, "linear")
    assert ddim_timesteps(400, 25)[[0, -1]].tolist() == [399, 0]
    assert ddim_timesteps(400, 400).tolist() == list(range(399, -1, -1))
    assert len(set(ddim_timesteps(400, 397).tolist())) == 397
    p = ddpm_plan(d)
    assert p.num_steps == 400 and p.sigma[-1] == 0 and p.abar_next[-1] == 1
    q = ddim_plan(d, 10, eta=0.0)
    assert q.num_steps == 10 and torch.all(q.sigma == 0) and q.abar_next[-1] == 1
    # DDIM with every step and eta = 1 is the ancestral sampler
    r = ddim_plan(d, 400, eta=1.0)
    assert torch.allclose(r.sigma, p.sigma, atol=1e-5)


@pytest.mark.parametrize("sampler,steps,eta", [("ddpm", None, 0.0), ("ddim", 50, 0.0),
                                               ("ddim", 50, 0.5)])
def test_samplers_draw_from_the_prior_of_an_exact_denoiser(sampler, steps, eta):
    """With the exact eps of a Gaussian-process prior the samples must have the prior's variance
    (1) and lag-1 autocorrelation (exp(-1 / 2 l^2)): checks every sampler coefficient. (The
    variance comes out a little low — about 0.9 at T = 100 — because the ancestral step uses
    the posterior variance beta~_t, a known lower bound; a wrong coefficient is far off.)"""
    m = GaussianProcessDenoiser(tiny_config(timesteps=100), length_scale=4.0)
    x = sample(m, None, 48, batch=16, sampler=sampler, steps=steps, eta=eta, seed=0, window=48)
    var = x.var().item()
    lag1 = (x[:, 1:] * x[:, :-1]).mean().item() / var
    assert 0.8 < var < 1.1, var
    assert abs(lag1 - math.exp(-1 / 32)) < 0.012, lag1


def test_windowed_sampling_has_no_seam_and_bounded_memory():
    """2000 frames in windows of 64 (overlap 16) on the exact GP denoiser: the frame-to-frame
    change where a window's new frames meet the previous window's held frames is no larger
    than the change inside windows, and the denoiser never sees more than one window."""
    m = GaussianProcessDenoiser(tiny_config(timesteps=100), length_scale=6.0)
    L, W, OV = 2000, 64, 16
    x = sample(m, None, L, batch=2, sampler="ddim", steps=50, window=W, overlap=OV, seed=0)
    assert x.shape == (2, L, 12) and torch.isfinite(x).all()
    assert m.max_frames_seen == W and m.max_batch_seen <= 2 * 2
    d = (x[:, 1:] - x[:, :-1]).abs()            # d[:, j] = |x[j+1] - x[j]|
    starts = window_starts(L, W, OV)
    ends = [min(s + W, L) for s in starts]
    seams = torch.tensor(ends[:-1]) - 1      # last held frame -> first new frame
    inside = torch.ones(L - 1, dtype=torch.bool)
    inside[seams] = False
    print(f"|delta| at seams: mean {d[:, seams].mean():.3f} max {d[:, seams].max():.3f}; "
          f"inside: mean {d[:, inside].mean():.3f} max {d[:, inside].max():.3f}")
    assert d[:, seams].mean() <= 1.15 * d[:, inside].mean()
    assert d[:, seams].max() <= d[:, inside].max()
    assert abs(x.var().item() - 1) < 0.2


def test_windows_cover_the_sequence_with_equal_shapes():
    assert window_starts(10, 64, 16) == [0]
    assert window_starts(100, 40, 10) == [0, 30, 60]
    assert window_starts(101, 40, 10) == [0, 30, 60, 61]
    for L in (64, 65, 200, 2000):
        s = window_starts(L, 64, 16)
        assert s[0] == 0 and s[-1] + 64 == L and all(b - a <= 48 for a, b in zip(s, s[1:]))


def test_windowed_real_model_runs_and_holds_the_overlap(model):
    calls = []
    x = sample(model, AUDIO[:1], sampler="ddim", steps=4, window=6, overlap=2, seed=0,
               progress=lambda done, total: calls.append((done, total)))
    assert x.shape == (1, 15, 12) and torch.isfinite(x).all()
    assert calls[-1] == (16, 16) and len(calls) == 16     # 4 windows x 4 steps
    whole = sample(model, AUDIO[:1], sampler="ddim", steps=4, window=15, overlap=2, seed=0)
    # the default window is the model's training window (16 frames here: one window)
    assert torch.equal(whole, sample(model, AUDIO[:1], sampler="ddim", steps=4, seed=0))
    long_audio = torch.randn(1, 80, 6)
    assert torch.equal(sample(model, long_audio, steps=2, seed=0),
                       sample(model, long_audio, steps=2, seed=0, window=16, overlap=3))


def test_step_is_pure(model):
    d = GaussianDiffusion.from_config(model.config)
    cache = model.encode_audio(AUDIO)
    step = DenoiseStep(lambda z, t: model(z, t, cache), ddim_plan(d, 5))
    z, noise = torch.randn(2, 15, 12), torch.randn(2, 15, 12)
    z0 = z.clone()
    with torch.no_grad():
        a, b = step(z, 2, noise), step(z, 2, noise)
    assert torch.equal(a, b) and torch.equal(z, z0)


def test_region_control(model):
    p = model.partition
    ref_frame = torch.randn(12)
    ref_seq = torch.randn(20, 12)
    base = sample(model, AUDIO, steps=6, seed=3)
    out = sample(model, AUDIO, steps=6, seed=3, control=RegionControl(
        freeze={"global": ref_frame}, replace={"eye": ref_seq}))
    g, e, lip = list(p.region("global")), list(p.region("eye")), list(p.region("lip"))
    assert torch.equal(out[..., g], ref_frame[g].expand(2, 15, -1))
    assert torch.equal(out[..., e], ref_seq[:15, e].expand(2, -1, -1))
    assert not torch.allclose(out[..., lip], base[..., lip])   # the lips adapt to the rest
    # a region-only reference (K_r dims) works the same
    out2 = sample(model, AUDIO, steps=6, seed=3, control=RegionControl(
        freeze={"global": ref_frame[g]}, replace={"eye": ref_seq[:, e]}))
    assert torch.equal(out, out2)
    scaled = sample(model, AUDIO, steps=6, seed=3, control=RegionControl(lip_scale=1.3))
    assert torch.allclose(scaled[..., lip], 1.3 * base[..., lip])
    assert torch.equal(scaled[..., g + e], base[..., g + e])
    # windowed generation applies the control to every window
    w = sample(model, AUDIO, steps=4, seed=3, window=6, overlap=2,
               control=RegionControl(replace={"eye": ref_seq}))
    assert torch.equal(w[..., e], ref_seq[:15, e].expand(2, -1, -1))


@pytest.mark.parametrize("kwargs,message", [
    (dict(scale={"nose": 2.0}), "unknown region 'nose'"),
    (dict(freeze={"eye": torch.zeros(12)}, replace={"eye": torch.zeros(20, 12)}),
     "both frozen and replaced"),
    (dict(lip_scale=2.0, freeze={"lip": torch.zeros(12)}), "both scaled and fixed"),
    (dict(lip_scale=float("inf")), "finite number"),
    (dict(lip_scale=True), "finite number"),
    (dict(freeze="global"), "freeze must be a dict"),
    (dict(freeze={"lip": 0.0}), r"freeze\['lip'\]: expected one frame"),
    (dict(freeze={"lip": None}), r"freeze\['lip'\]: expected an array of numbers, got NoneType"),
    (dict(freeze={"lip": "abc"}), r"freeze\['lip'\]: expected an array of numbers, got str"),
    (dict(replace={"eye": torch.zeros(12)}), r"replace\['eye'\]: expected a sequence"),
    (dict(replace={"eye": torch.zeros(0, 12)}), "reference is empty"),
    (dict(freeze={"eye": torch.full((12,), float("nan"))}), "reference holds NaN or inf"),
])
def test_region_control_errors(kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        RegionControl(**kwargs)
    assert "\n" not in str(info.value)


def test_region_control_cannot_change_after_it_is_checked():
    """Its checks run once, when made: a change afterwards would be ignored (the scales are
    resolved then) or unchecked (a region both scaled and frozen), so it is refused."""
    import dataclasses

    scale = {"lip": 1.0}
    control = RegionControl(scale=scale, lip_scale=None)
    scale["lip"] = 2.0                       # the caller's dict is copied, not kept
    assert control.scales["lip"] == 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        control.lip_scale = 2.0
    with pytest.raises(TypeError):
        control.scale["lip"] = 2.0
    with pytest.raises(TypeError):
        RegionControl(lip_scale=2.0).freeze["lip"] = torch.zeros(12)
    # dataclasses.replace makes a new control, checked again.
    assert dataclasses.replace(control, eye_scale=0.5).scales == {"lip": 1.0, "eye": 0.5}
    with pytest.raises(ValueError, match="both scaled and fixed"):
        dataclasses.replace(control, freeze={"lip": torch.zeros(12)})
    # A reference is copied: changing the caller's array later cannot bypass its checks.
    ref = torch.zeros(12)
    frozen = RegionControl(freeze={"eye": ref})
    ref[:] = float("nan")
    assert torch.isfinite(frozen.freeze["eye"]).all()


def test_region_control_pickles_copies_and_compares():
    """Still a plain value: process pools pickle it, dataclasses.asdict and deepcopy work, and
    equal settings compare equal."""
    import copy
    import dataclasses
    import pickle

    control = RegionControl(lip_scale=1.3, freeze={"eye": torch.arange(12.0)})
    for twin in (pickle.loads(pickle.dumps(control)), copy.deepcopy(control),
                 RegionControl(scale={"lip": 1.3}, freeze={"eye": list(range(12))})):
        assert twin == control and twin.scales == {"lip": 1.3}
        with pytest.raises(TypeError):
            twin.scale["lip"] = 2.0
    assert dataclasses.asdict(control)["scale"] == {}
    assert control != RegionControl(lip_scale=1.3, freeze={"eye": torch.zeros(12)})
    assert control != RegionControl(lip_scale=1.2, freeze={"eye": torch.arange(12.0)})


def test_region_control_reference_errors(model):
    with pytest.raises(ValueError, match="reference has 5 frames, fewer than the 15"):
        sample(model, AUDIO, steps=2, control=RegionControl(replace={"eye": torch.zeros(5, 12)}))
    with pytest.raises(ValueError, match="last dim must be N=12"):
        sample(model, AUDIO, steps=2, control=RegionControl(freeze={"eye": torch.zeros(7)}))


@pytest.mark.parametrize("kwargs,message", [
    (dict(steps=51), "steps=51 exceeds the model's T=50"),
    (dict(steps=0), "steps must be >= 1"),
    (dict(sampler="ddpm", steps=10), "ddpm runs all T=50 steps"),
    (dict(sampler="euler"), "unknown sampler 'euler'"),
    (dict(guidance=-1.0), r"guidance scale must be in \[0, 100\]"),
    (dict(guidance=1e20), r"guidance scale must be in \[0, 100\]"),
    (dict(eta=2.0), "eta must be a number in"), (dict(eta=None), "eta must be a number in"),
    (dict(eta="x"), "eta must be a number in"), (dict(eta=float("nan")), "eta must be a number in"),
    (dict(window=8, overlap=8), "overlap must be an integer in"),
    (dict(num_frames=16), "num_frames=16 needs 32 audio rows"),
    (dict(num_frames=3.5), "num_frames must be an integer >= 1"),
    (dict(seed=1.5), "seed must be an integer"), (dict(seed=2 ** 64), "seed must be an integer"),
])
def test_bad_arguments_give_one_line_errors(model, kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        sample(model, AUDIO, **kwargs)
    assert "\n" not in str(info.value)


def test_empty_or_broken_audio(model):
    with pytest.raises(ValueError, match="audio is empty"):
        sample(model, torch.zeros(0, 6))
    with pytest.raises(ValueError, match="audio is empty"):
        sample(model, torch.zeros(1, 1, 6))
    with pytest.raises(ValueError, match="NaN or inf"):
        sample(model, torch.full((1, 10, 6), float("nan")))
    with pytest.raises(ValueError, match="num_frames is required"):
        sample(model, None)
    with pytest.raises(ValueError, match="batch must be an integer >= 1, got 0"):
        sample(model, None, num_frames=4, batch=0)
    with pytest.raises(ValueError, match="an AudioCache or None, got str"):
        sample(model, "speech.wav")


def test_motion_that_comes_out_non_finite_is_an_error(model):
    """Features far beyond any real ones (finite as given; float64 even past float32's range)
    overflow: a one-line error, never NaN / inf motion handed out."""
    with pytest.raises(ValueError, match=r"NaN or inf \(as float32\)"):
        sample(model, AUDIO.double() * 1e300, steps=2)
    with pytest.raises(ValueError, match="the generated motion is not finite") as info:
        sample(model, AUDIO * 1e30, steps=2)
    assert "\n" not in str(info.value)


def test_a_checkpoint_samples_its_model_and_other_objects_are_refused(model):
    from disenttalk_fast.checkpoint import Checkpoint

    n = model.config.num_dims
    ckpt = Checkpoint(config=model.config, partition=model.partition, model=model,
                      exp_mean=torch.zeros(n), exp_std=torch.ones(n))
    assert torch.equal(sample(ckpt, AUDIO, steps=2), sample(model, AUDIO, steps=2))
    with pytest.raises(ValueError, match="model must be a denoiser .* got dict"):
        sample({}, AUDIO)


def test_one_element_tensors_are_numbers(model):
    a = sample(model, AUDIO, steps=2, eta=torch.tensor(0.5), guidance=torch.tensor(2.0))
    assert torch.equal(a, sample(model, AUDIO, steps=2, eta=0.5, guidance=2.0))


def test_numpy_integers_are_integers(model):
    import numpy as np

    a = sample(model, AUDIO, steps=2, window=np.int64(8), overlap=np.int32(2))
    assert torch.equal(a, sample(model, AUDIO, steps=2, window=8, overlap=2))


def test_numpy_features_sample_as_tensors(model):
    a = sample(model, AUDIO, steps=2, seed=1)
    b = sample(model, AUDIO.numpy(), steps=2, seed=1)
    assert torch.equal(a, b)


def test_a_precomputed_audio_cache_gives_the_same_motion(model):
    cache = model.encode_audio(AUDIO)
    a = sample(model, AUDIO, steps=5, seed=2)
    assert torch.equal(sample(model, cache, steps=5, seed=2), a)
    short = sample(model, cache, num_frames=9, steps=5, seed=2)
    assert short.shape == (2, 9, 12)
    with pytest.raises(ValueError, match="num_frames=20 exceeds the 15 frames"):
        sample(model, cache, num_frames=20)
    for bad in (0, 2.5, "5"):
        with pytest.raises(ValueError, match="num_frames must be an integer >= 1"):
            sample(model, cache, num_frames=bad)
    # A cache of an odd number of rows is cut as features are (the last row is half a frame).
    odd = model.encode_audio(AUDIO[:, :21])
    assert torch.equal(sample(model, odd, steps=5, seed=2), sample(model, AUDIO[:, :21], steps=5,
                                                                     seed=2))
    for audio in (AUDIO, cache):
        with pytest.raises(ValueError, match="batch=3, but the audio holds 2 sample"):
            sample(model, audio, batch=3)
    assert sample(model, cache, steps=2, batch=2).shape == (2, 15, 12)


def test_a_reused_sampler_keeps_its_captured_step_and_matches_sample(model, monkeypatch):
    """`Sampler` gives `sample`'s results call after call while keeping one captured step (the
    static-buffer path the CUDA graph replays, run eagerly on the CPU with cuda_graph=True); it
    captures again for a new window shape and when the weights move."""
    from disenttalk_fast.sampling import Sampler

    settings = dict(sampler="ddim", steps=4, guidance=2.0, window=8, overlap=2, cuda_graph=True)
    sampler = Sampler(model, **settings)
    other = torch.randn(2, 30, 6, generator=torch.Generator().manual_seed(5))
    first = sampler(AUDIO, seed=1)
    kept = sampler._window_sampler.graphed
    assert kept is not None
    second = sampler(other, seed=2)
    assert sampler._window_sampler.graphed is kept           # no new capture
    assert torch.equal(first, sample(model, AUDIO, seed=1, **settings))
    assert torch.equal(second, sample(model, other, seed=2, **settings))
    control = RegionControl(lip_scale=1.5)
    assert torch.equal(sampler(AUDIO, seed=1, control=control),
                       sample(model, AUDIO, seed=1, control=control, **settings))

    short = sampler(AUDIO[:, :10], seed=1)                    # 5 frames: a 5-frame window
    assert sampler._window_sampler.graphed is not kept
    assert torch.equal(short, sample(model, AUDIO[:, :10], seed=1, **settings))

    moved = sampler._window_sampler.graphed
    assert moved.fits(moved.eps_fn.window(0, 5), moved.shape)
    model.double().float()                                    # same values, new addresses
    assert not moved.fits(moved.eps_fn.window(0, 5), moved.shape)
    assert torch.equal(sampler(AUDIO[:, :10], seed=1), short)
    assert sampler._window_sampler.graphed is not moved

    kept = sampler._window_sampler.graphed                    # other kernels: capture again
    window = kept.eps_fn.window(0, 5)
    assert kept.fits(window, kept.shape)
    backend, model.backend = model.backend, "cuda"
    try:
        assert not kept.fits(window, kept.shape)
    finally:
        model.backend = backend
    with monkeypatch.context() as patch:
        patch.setenv("DISENTTALK_BACKEND", "reference")
        assert not kept.fits(window, kept.shape)
    assert kept.fits(window, kept.shape)


def test_sampler_checks_its_settings_when_made(model):
    from disenttalk_fast.sampling import Sampler

    with pytest.raises(ValueError, match="window must be an integer >= 2 frames"):
        Sampler(model, window=1)
    with pytest.raises(ValueError, match="overlap must be an integer in"):
        Sampler(model, window=10, overlap=10)
    with pytest.raises(ValueError, match=r"guidance scale must be in \[0, 100\]"):
        Sampler(model, guidance=-1)
    with pytest.raises(ValueError, match="control must be a RegionControl"):
        Sampler(model)(AUDIO, control="lips")
