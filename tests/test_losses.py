import math

import pytest
import torch

from cvae_lightning.vae.likelihood import GaussianLikelihood
from cvae_lightning.vae.losses import kl_divergence


def test_reconstruction_is_summed_squared_error():
    x = torch.tensor([[0.0, 1.0], [0.5, 0.25]])
    x_rec = torch.tensor([[0.5, 1.0], [0.0, 0.75]])
    fixed = GaussianLikelihood("fixed")
    assert fixed(x_rec, x).item() == pytest.approx(0.25 + 0 + 0.25 + 0.25)
    assert fixed(x_rec, x, per_image=True).tolist() == pytest.approx([0.25, 0.5])


def test_kl_matches_hand_sum():
    mu = torch.tensor([[1.0, 0.0], [0.5, -2.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [-1.0, 0.0]])
    hand = sum(
        -0.5 * (1 + lv - m**2 - math.exp(lv))
        for m, lv in zip(mu.flatten().tolist(), logvar.flatten().tolist(), strict=True)
    )
    assert kl_divergence(mu, logvar).item() == pytest.approx(hand)


def test_kl_is_zero_at_the_prior():
    assert kl_divergence(torch.zeros(3, 8), torch.zeros(3, 8)).item() == 0.0


def test_the_kl_weight_scales_only_the_objective():
    from cvae_lightning.vae.losses import loss_terms

    x, x_rec = torch.rand(4, 1, 8, 8), torch.rand(4, 1, 8, 8)
    mu, logvar = torch.randn(4, 3), torch.randn(4, 3)
    full, none = loss_terms(x_rec, x, mu, logvar), loss_terms(x_rec, x, mu, logvar, 0.0)
    assert torch.equal(none["loss"], none["recon"]) and torch.equal(none["kl"], full["kl"])
    half = loss_terms(x_rec, x, mu, logvar, 0.5)
    assert torch.allclose(half["loss"], full["recon"] + 0.5 * full["kl"])


def test_kl_warm_up_reaches_beta_linearly():
    from cvae_lightning.vae.losses import kl_weight

    assert [kl_weight(2.0, 4, s) for s in range(6)] == [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]
    assert kl_weight(0.7, 0, 0) == 0.7
