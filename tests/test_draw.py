import pytest
import torch

from cvae_lightning.densities.standard import StandardNormal
from cvae_lightning.inference import draw
from cvae_lightning.vae.latent import posterior_means
from cvae_lightning.vae.model import CVAE


@pytest.fixture
def model():
    torch.manual_seed(0)
    return CVAE(latent=3, max_filters=16, image_size=16).eval()


def test_interpolation_starts_and_ends_at_the_two_images(model):
    x = torch.rand(2, 1, 16, 16)
    strip = draw.interpolate(model, x[0], x[1], steps=5)
    assert strip.shape == (3, 2 + 18, 2 + 5 * 18)  # one row of 5 padded 16px images
    mu = posterior_means(model, x)
    ends = model.decode(mu)
    first = strip[0, 2:18, 2:18]
    last = strip[0, 2:18, 2 + 4 * 18 : 2 + 4 * 18 + 16]
    assert torch.allclose(first, ends[0, 0], atol=1e-6)
    assert torch.allclose(last, ends[1, 0], atol=1e-6)


def test_traversal_has_one_row_per_latent_dimension(model):
    grid = draw.traverse(model, torch.rand(1, 16, 16), steps=7)
    assert grid.shape == (3, 2 + 3 * 18, 2 + 7 * 18)


def test_samples_are_deterministic_under_a_seed(model):
    prior = StandardNormal.of(model)
    a = draw.sample_grid(model, prior, 16, nrow=4, seed=3)
    assert torch.equal(a, draw.sample_grid(model, prior, 16, nrow=4, seed=3))
    assert not torch.equal(a, draw.sample_grid(model, prior, 16, nrow=4, seed=4))
    with pytest.raises(ValueError, match="conditional"):
        draw.sample_grid(model, StandardNormal.of(model), 4, label=7)


def test_manifold_needs_two_latent_dims(model):
    with pytest.raises(ValueError, match="model.latent=2"):
        draw.manifold(model)
    flat = CVAE(latent=2, max_filters=16, image_size=16).eval()
    assert draw.manifold(flat, n=5).shape == (3, 2 + 5 * 18, 2 + 5 * 18)


def test_conditional_model_takes_labels_and_keeps_the_reference_unchanged():
    assert sum(p.numel() for p in CVAE().parameters()) == 149_265
    cond = CVAE(num_classes=10)
    # The label adds 10 inputs to each encoder head and to the decoder's first layer, and a
    # per-channel scale and shift (10 -> 2 x 16, 32, 64) at each encoder and decoder stage.
    film = 2 * sum(2 * (10 * c + c) for c in (64, 32, 16))
    assert sum(p.numel() for p in cond.parameters()) == 149_265 + 2 * 10 * 8 + 10 * 4096 + film
    x, y = torch.rand(4, 1, 64, 64), torch.tensor([0, 3, 7, 9])
    x_rec, mu, _ = cond(x, y)
    assert x_rec.shape == x.shape and mu.shape == (4, 8)
    with pytest.raises(ValueError, match="pass labels"):
        cond(x)
