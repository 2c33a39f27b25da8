import pytest
import torch

from cvae_lightning.vae.layers import LOGVAR_MAX, reparameterize
from cvae_lightning.vae.model import CVAE, count_parameters


def test_reference_parameter_count():
    model = CVAE()
    assert count_parameters(model) == 149_265
    assert f"{count_parameters(model) / 1e6:.4f}" == "0.1493"


def test_shapes_at_reference_size():
    model = CVAE()
    x = torch.rand(4, 1, 64, 64)
    z, mu, logvar = model.encode(x)
    assert z.shape == mu.shape == logvar.shape == (4, 8)
    x_rec = model.decode(z)
    assert x_rec.shape == x.shape
    assert x_rec.min() >= 0 and x_rec.max() <= 1
    assert model.sample(3).shape == (3, 1, 64, 64)
    assert [t.shape for t in model(x)] == [x.shape, (4, 8), (4, 8)]


@pytest.mark.parametrize("latent,filters,size,channels", [(2, 16, 16, 1), (16, 32, 32, 3)])
def test_sizes_come_from_arguments(latent, filters, size, channels):
    model = CVAE(latent=latent, max_filters=filters, image_size=size, channels=channels)
    x = torch.rand(2, channels, size, size)
    x_rec, mu, _ = model(x)
    assert x_rec.shape == x.shape and mu.shape == (2, latent)


@pytest.mark.parametrize(
    "kwargs,key",
    [
        ({"image_size": 60}, "data.image_size=60"),
        ({"latent": 0}, "model.latent=0"),
        ({"max_filters": 30}, "model.max_filters=30"),
    ],
)
def test_refuses_impossible_sizes(kwargs, key):
    with pytest.raises(ValueError, match=key):
        CVAE(**kwargs)


def test_logvar_is_clamped():
    model = CVAE()
    torch.nn.init.constant_(model.encoder.logvar.bias, 1e4)
    _, _, logvar = model.encode(torch.rand(2, 1, 64, 64))
    assert torch.all(logvar == LOGVAR_MAX)


def test_reparameterize_uses_sigma_and_is_differentiable():
    torch.manual_seed(0)
    mu = torch.full((20000, 1), 3.0, requires_grad=True)
    logvar = torch.full((20000, 1), 2 * torch.log(torch.tensor(0.5)).item(), requires_grad=True)
    z = reparameterize(mu, logvar)
    assert z.mean().item() == pytest.approx(3.0, abs=0.02)
    assert z.std().item() == pytest.approx(0.5, abs=0.02)
    z.sum().backward()
    assert mu.grad is not None and logvar.grad is not None


def test_sample_is_reproducible_with_a_generator():
    model = CVAE(image_size=16, max_filters=16).eval()
    a = model.sample(4, generator=torch.Generator().manual_seed(1))
    b = model.sample(4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert not torch.equal(a, model.sample(4, temperature=0.0))
