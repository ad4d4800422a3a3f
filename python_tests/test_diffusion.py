"""GaussianDiffusion: schedules, the forward process, the Eq. 8 loss, classifier-free training
and guidance (Eq. 9), plus the overfitting check of the whole training step."""

import time

import pytest
import torch

from diffusion_testing import synthetic_clips, tiny_model
from disenttalk_fast.diffusion import GaussianDiffusion, GuidedEps, NoiseSchedule, make_betas


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_schedule_tables(name):
    s = NoiseSchedule.create(name, 400)
    abar = s.alphas_cumprod
    assert abar.shape == (400,) and abar.dtype == torch.float32
    assert torch.all(abar[1:] < abar[:-1]) and 0 < abar[-1] < 0.01 and abar[0] > 0.99
    assert torch.all((s.betas > 0) & (s.betas < 1))
    # with a noiseless z_t = sqrt(abar_t) x0 the posterior mean is sqrt(abar_{t-1}) x0
    assert torch.allclose(s.posterior_coef_x0 + s.posterior_coef_zt * abar.sqrt(),
                          s.alphas_cumprod_prev.sqrt(), atol=1e-5)
    assert s.alpha_bar(torch.tensor([-1, 0])).tolist() == [1.0, float(abar[0])]


def test_schedule_errors():
    with pytest.raises(ValueError, match="unknown noise schedule 'sigmoid'"):
        make_betas("sigmoid", 10)
    with pytest.raises(ValueError, match="timesteps must be a positive integer"):
        make_betas("linear", 0)
    with pytest.raises(ValueError, match="cfg_drop_prob"):
        GaussianDiffusion(10, "linear", cfg_drop_prob=1.0)


def test_q_sample_and_x0_roundtrip():
    d = GaussianDiffusion(400, "cosine")
    x0, noise = torch.randn(3, 7, 5), torch.randn(3, 7, 5)
    t = torch.tensor([0, 200, 399])
    z = d.q_sample(x0, t, noise)
    assert torch.allclose(d.predict_x0(z, t, noise), x0, atol=1e-3)
    assert torch.equal(d.q_sample(x0, torch.full((3,), -1), noise), x0)


def test_training_draws_come_from_the_generator_only():
    model, d = tiny_model(), GaussianDiffusion(50, "linear", cfg_drop_prob=0.1)
    x0, audio = torch.randn(4, 9, 12), torch.randn(4, 18, 6)
    out = [d.training_losses(model, x0, audio, generator=torch.Generator().manual_seed(5))
           for _ in range(2)]
    torch.randn(10)  # global RNG use in between changes nothing
    assert torch.equal(out[0].loss, out[1].loss) and torch.equal(out[0].t, out[1].t)
    mask = d.draw_null_mask(20000, torch.Generator().manual_seed(0), "cpu")
    assert abs(mask.float().mean().item() - 0.1) < 0.01


def test_guidance_scale_one_equals_the_conditional_model_exactly():
    model = tiny_model(seed=1)
    with torch.no_grad():  # give the untrained (zero-output) head some weights
        model.out_proj.weight.normal_(0, 0.1)
    audio = torch.randn(2, 22, 6)
    cond = model.encode_audio(audio)
    null = model.encode_audio(None, num_frames=11, batch=2)
    z, t = torch.randn(2, 11, 12), torch.tensor([3, 40])
    with torch.no_grad():
        eps_c, eps_u = model(z, t, cond), model(z, t, null)
        assert torch.equal(GuidedEps(model, cond, null, 1.0)(z, t), eps_c)
        assert torch.equal(GuidedEps(model, cond, null, 0.0)(z, t), eps_u)
        assert torch.equal(model(z, t, audio), eps_c)
        s = 2.5  # both branches as one batch of 2B
        guided = GuidedEps(model, cond, null, s)
        assert guided.cache.batch == 4
        assert torch.allclose(guided(z, t), s * eps_c + (1 - s) * eps_u, atol=1e-5)
        assert not torch.allclose(eps_c, eps_u)
    for bad in (-0.5, float("nan"), "x"):
        with pytest.raises(ValueError, match="guidance scale must be"):
            GuidedEps(model, cond, null, bad)


def test_guidance_calls_denoisers_once_with_z_and_other_models_with_2b():
    """Guidance passes z once (`guided=True`) to a denoiser, through the module (its hooks see
    the call), and the doubled batch to a model that does not take `guided` (a user's own
    module); both give the same numbers."""
    model = tiny_model(seed=1)
    with torch.no_grad():
        model.out_proj.weight.normal_(0, 0.1)
    cond = model.encode_audio(torch.randn(1, 22, 6))
    null = model.encode_audio(None, num_frames=11, batch=1)
    seen, batches = [], []
    model.register_forward_pre_hook(
        lambda mod, args, kwargs: seen.append((args[0].shape[0], kwargs.get("guided"))),
        with_kwargs=True)

    class Wrapped(torch.nn.Module):
        def forward(self, z, t, cache):
            batches.append(z.shape[0])
            return model(z, t, cache)

    z, t = torch.randn(1, 11, 12), torch.tensor([7])
    with torch.no_grad():
        direct = GuidedEps(model, cond, null, 2.0)(z, t)
        assert seen == [(1, True)]
        wrapped = GuidedEps(Wrapped(), cond, null, 2.0)(z, t)
    assert batches == [2] and seen[1:] == [(2, None)]
    torch.testing.assert_close(wrapped, direct, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="null_mask does not apply with guided=True"):
        model(z, t, GuidedEps(model, cond, null, 2.0).cache, torch.tensor([True]), guided=True)


def test_tiny_model_overfits_a_tiny_dataset():
    """The noise loss (Eq. 8) on a fixed evaluation set of (t, noise) pairs over all T falls at
    least 10x: the model, the loss and the trainer's optimisation work together."""
    from disenttalk_fast.training.trainer import Trainer

    model = tiny_model()
    clip = synthetic_clips(1, 16)
    trainer = Trainer(model, clip, seed=0, batch_size=16, window=16, lr=3e-3, ema_decay=0.95)
    g = torch.Generator().manual_seed(123)
    x0 = clip[0]["exp"][None].expand(64, -1, -1)
    audio = clip[0]["audio"][None].expand(64, -1, -1)
    t = torch.randint(0, trainer.diffusion.timesteps, (64,), generator=g)
    noise = torch.randn(x0.shape, generator=g)

    def eval_loss():
        with torch.no_grad():
            return float(trainer.diffusion.training_losses(
                trainer.ema.model, x0, audio, t=t, noise=noise,
                null_mask=torch.zeros(64, dtype=torch.bool)).noise_loss)

    before = eval_loss()
    start = time.perf_counter()
    trainer.fit(300, progress=False)
    after = eval_loss()
    print(f"noise loss {before:.3f} -> {after:.4f} in {time.perf_counter() - start:.1f} s")
    assert after < before / 10
