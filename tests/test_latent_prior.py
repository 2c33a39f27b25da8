"""The Gaussian prior fitted to posterior means after training."""

import pytest
import torch

from cvae_lightning.latent_prior import FittedPrior


def clusters(n=4000):
    """Two well-separated 3-d Gaussian classes with known means and spreads."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 2
    centres = torch.tensor([[5.0, 0.0, 0.0], [-5.0, 2.0, 1.0]])
    spread = torch.tensor([[1.0, 0.5, 0.2], [0.3, 2.0, 1.0]])
    return centres[y] + spread[y] * torch.randn(n, 3, generator=g), y, centres, spread


def test_fit_recovers_each_class_and_samples_from_it():
    mu, y, centres, spread = clusters()
    prior = FittedPrior.fit(mu, y, num_classes=2)
    assert torch.allclose(prior.means, centres, atol=0.1)
    g = torch.Generator().manual_seed(1)
    z = prior.sample(4000, torch.ones(4000, dtype=torch.long), generator=g)
    assert torch.allclose(z.mean(0), centres[1], atol=0.1)
    assert torch.allclose(z.std(0), spread[1], rtol=0.1)


def test_one_gaussian_for_an_unconditional_model_and_temperature_scales_the_spread():
    mu, _, _, _ = clusters()
    prior = FittedPrior.fit(mu)
    assert prior.means.shape == (1, 3)
    assert torch.allclose(prior.means[0], mu.mean(0), atol=1e-5)
    z = prior.sample(10, temperature=0.0)
    assert torch.allclose(z, prior.means.expand(10, -1))


def test_samples_are_seeded():
    mu, y, _, _ = clusters()
    prior = FittedPrior.fit(mu, y, num_classes=2)
    a = prior.sample(5, y[:5], generator=torch.Generator().manual_seed(3))
    b = prior.sample(5, y[:5], generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_too_few_images_of_a_class_is_a_clear_error():
    mu, y, _, _ = clusters(20)
    y[:] = 0
    y[0] = 1
    with pytest.raises(ValueError, match="too few images \\(1\\) of class 1"):
        FittedPrior.fit(mu, y, num_classes=2)
