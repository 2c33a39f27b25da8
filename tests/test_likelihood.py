"""The decoder's likelihood: the reference's fixed Gaussian and the sigma-VAE's calibrated one."""

import math

import pytest
import torch
from torch.distributions import Normal

from cvae_lightning.vae.likelihood import LOG_SIGMA_MIN, GaussianLikelihood


def test_fixed_is_the_summed_squared_error_and_its_constant_makes_it_a_gaussian():
    x, x_rec = torch.rand(2, 1, 3, 3), torch.rand(2, 1, 3, 3)
    fixed = GaussianLikelihood("fixed")
    assert torch.equal(fixed(x_rec, x), (x_rec - x).pow(2).sum())
    per_image = fixed(x_rec, x, per_image=True)
    assert per_image.shape == (2,)
    assert per_image.sum().item() == pytest.approx(fixed(x_rec, x).item())
    nll = -Normal(x_rec, math.sqrt(0.5)).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(per_image + fixed.constant(9), nll, rtol=1e-5)
    assert not list(fixed.buffers())  # the reference's checkpoints hold nothing new


def test_optimal_is_the_gaussian_nll_at_the_batchs_own_variance():
    torch.manual_seed(0)
    x, x_rec = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    optimal = GaussianLikelihood("optimal", channels=3).train()
    sigma = (x_rec - x).pow(2).mean().sqrt()
    expected = -Normal(x_rec, sigma).log_prob(x).sum()
    assert optimal(x_rec, x).item() == pytest.approx(expected.item(), rel=1e-4)
    assert optimal.constant(192) == 0.0  # already in nats
    # No other shared sigma explains the batch better.
    for scale in (0.8, 1.25):
        other = -Normal(x_rec, sigma * scale).log_prob(x).sum()
        assert other.item() > expected.item()


def test_per_channel_gives_each_channel_its_own_variance():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 8, 8)
    x_rec = x + torch.randn(4, 3, 8, 8) * torch.tensor([0.01, 0.1, 0.3])[None, :, None, None]
    per_channel = GaussianLikelihood("optimal_per_channel", channels=3).train()
    sigma = (x_rec - x).pow(2).mean((0, 2, 3), keepdim=True).sqrt()
    expected = -Normal(x_rec, sigma).log_prob(x).sum()
    assert per_channel(x_rec, x).item() == pytest.approx(expected.item(), rel=1e-4)
    # Fitting each channel's noise beats one shared variance for all three.
    shared = GaussianLikelihood("optimal", channels=3).train()
    assert per_channel(x_rec, x).item() < shared(x_rec, x).item()


def test_eval_mode_uses_the_running_sigma_so_an_images_likelihood_ignores_its_batch():
    torch.manual_seed(0)
    x = torch.rand(8, 1, 4, 4)
    x_rec = x + 0.05 * torch.randn(8, 1, 4, 4)
    lik = GaussianLikelihood("optimal")
    for _ in range(200):  # the running value settles on the training batches' sigma
        lik.train()(x_rec, x)
    assert lik.sigma().item() == pytest.approx((x_rec - x).pow(2).mean().sqrt().item(), rel=1e-3)
    lik.eval()
    alone = lik(x_rec[:1], x[:1], per_image=True)
    together = lik(x_rec, x, per_image=True)[:1]
    assert torch.allclose(alone, together)


def test_a_perfect_reconstruction_keeps_a_finite_loss():
    x = torch.rand(2, 1, 4, 4)
    loss = GaussianLikelihood("optimal").train()(x.clone(), x)
    assert torch.isfinite(loss)
    floor = (LOG_SIGMA_MIN + 0.5 * math.log(2 * math.pi)) * x.numel()
    assert loss.item() == pytest.approx(floor)  # sigma held at its floor, e^-6


def test_an_unknown_kind_names_the_key():
    with pytest.raises(ValueError, match="model.likelihood='gauss' is invalid: choose one of"):
        GaussianLikelihood("gauss")
