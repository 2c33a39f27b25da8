"""Latent densities: each recovers known clusters, draws repeatably, saves to plain tensors."""

import resource

import pytest
import torch

from cvae_lightning.densities import gmm as gmm_module
from cvae_lightning.densities.base import Codes, fit_all, mean_log_prob
from cvae_lightning.densities.flow import Flow
from cvae_lightning.densities.gmm import GaussianMixture
from cvae_lightning.densities.standard import StandardNormal

CENTRES = torch.tensor([[4.0, 0.0, 0.0], [-4.0, 3.0, 1.0], [0.0, -4.0, -2.0]])
SPREAD = torch.tensor([[1.0, 0.5, 0.2], [0.3, 1.0, 0.6], [0.5, 0.5, 0.5]])
WEIGHTS = torch.tensor([0.5, 0.3, 0.2])


def clusters(n: int = 6000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three well-separated 3-d Gaussian clusters with known weights, means and spreads."""
    g = torch.Generator().manual_seed(seed)
    k = torch.multinomial(WEIGHTS, n, replacement=True, generator=g)
    return CENTRES[k] + SPREAD[k] * torch.randn(n, 3, generator=g), k


def assign(z: torch.Tensor) -> torch.Tensor:
    return torch.cdist(z, CENTRES).argmin(1)


def cluster_shares_and_means(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    k = assign(z)
    return torch.bincount(k, minlength=3).float() / len(z), torch.stack(
        [z[k == i].mean(0) for i in range(3)]
    )


FITS = {
    "gmm": lambda codes: GaussianMixture.fit(codes, components=3),
    "flow": lambda codes: Flow.fit(codes, steps=1500, hidden=(32, 32)),
}


@pytest.mark.parametrize("kind", ["gmm", "flow"])
def test_density_recovers_known_clusters(kind):
    z, _ = clusters()
    density = FITS[kind](Codes(z))
    drawn = density.sample(6000, generator=torch.Generator().manual_seed(1))
    shares, means = cluster_shares_and_means(drawn)
    assert torch.allclose(shares, WEIGHTS, atol=0.03), shares
    assert torch.allclose(means, CENTRES, atol=0.25), means
    # A density fitted to the clusters explains held-out draws far better than N(0, I).
    held_out, _ = clusters(2000, seed=5)
    assert (
        mean_log_prob(density, Codes(held_out))
        > mean_log_prob(StandardNormal(3), Codes(held_out)) + 5
    )


def test_mixture_recovers_means_and_weights_exactly():
    z, _ = clusters()
    gmm = GaussianMixture.fit(Codes(z), components=3)
    order = assign(gmm.means[0]).argsort()
    assert torch.allclose(gmm.means[0][order], CENTRES, atol=0.1)
    assert torch.allclose(gmm.weights[0][order], WEIGHTS, atol=0.02)


def test_one_density_per_class_draws_that_class():
    z, k = clusters()
    labelled = Codes(z, k, 3)
    for density in (GaussianMixture.fit(labelled, components=2), FITS["flow"](labelled)):
        for c in range(3):
            drawn = density.sample(500, torch.full((500,), c), generator=torch.Generator())
            assert (assign(drawn) == c).float().mean() > 0.95


def test_gaussian_is_the_sample_mean_and_covariance():
    z, _ = clusters()
    gaussian = GaussianMixture.fit(Codes(z), components=1)
    assert torch.allclose(gaussian.means[0, 0], z.mean(0), atol=1e-4)
    cov = gaussian.scale_tril[0, 0] @ gaussian.scale_tril[0, 0].T
    assert torch.allclose(cov, torch.cov(z.T), rtol=1e-3, atol=1e-3)


def test_temperature_zero_collapses_to_the_component_means():
    z, _ = clusters()
    gmm = GaussianMixture.fit(Codes(z), components=3)
    drawn = gmm.sample(200, temperature=0.0, generator=torch.Generator().manual_seed(0))
    assert torch.cdist(drawn, gmm.means[0]).min(1).values.max() < 1e-5
    assert torch.equal(StandardNormal(3).sample(5, temperature=0.0), torch.zeros(5, 3))
    # The flow at temperature 0 maps every base draw to one point.
    flow = FITS["flow"](Codes(z))
    assert flow.sample(10, temperature=0.0).std(0).max() < 1e-5
    # Temperature scales the spread around each component.
    hot = gmm.sample(4000, temperature=2.0, generator=torch.Generator().manual_seed(0))
    cold = gmm.sample(4000, temperature=0.5, generator=torch.Generator().manual_seed(0))
    spread = lambda d: (d - gmm.means[0][assign(d)]).std().item()  # noqa: E731
    assert spread(hot) == pytest.approx(4 * spread(cold), rel=0.05)


@pytest.mark.parametrize("kind", ["standard", "gmm", "flow"])
def test_save_and_load_with_weights_only_gives_the_same_draws(kind, tmp_path):
    z, k = clusters(3000)
    codes = Codes(z, k, 3)
    density = StandardNormal.fit(codes) if kind == "standard" else FITS[kind](codes)
    path = tmp_path / "d.pt"
    torch.save(density.state(), path)
    state = torch.load(path, weights_only=True)
    again = type(density).from_state(state)
    y = torch.arange(50) % 3
    a = density.sample(50, y, generator=torch.Generator().manual_seed(3))
    b = again.sample(50, y, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert torch.allclose(density.log_prob(z[:100], k[:100]), again.log_prob(z[:100], k[:100]))


def test_standard_normal_draws_what_the_model_draws():
    from cvae_lightning.vae.model import CVAE

    model = CVAE(4, 16, 16).eval()
    a = model.sample(6, generator=torch.Generator().manual_seed(2))
    z = StandardNormal(4).sample(6, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, model.decode(z))


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: GaussianMixture.fitter(components=0), "components=0 is invalid: it must be >= 1"),
        (lambda: Flow.fitter(steps=0), "steps=0 is invalid: it must be >= 1"),
        (lambda: Flow.fitter(lr=0), "lr=0 is invalid: it must be > 0"),
    ],
)
def test_a_fitter_refuses_bad_settings_as_it_is_built(build, message):
    """Before any training: build_fitters names the key (density.fitters.<name>.<key>)."""
    with pytest.raises(ValueError, match=message):
        build()


def test_fit_all_times_each_fit_and_scores_held_out_codes():
    z, _ = clusters(2000)
    fitters = {"standard": StandardNormal.fit, "gmm": FITS["gmm"]}
    densities, report = fit_all(fitters, Codes(z), held_out=Codes(z[:500]))
    assert set(densities) == {"standard", "gmm"}
    assert all(r["fit_seconds"] >= 0 for r in report.values())
    assert report["gmm"]["test_log_likelihood"] > report["standard"]["test_log_likelihood"]


def test_a_flow_trains_even_when_called_under_no_grad():
    """eval.py runs under torch.no_grad() and may fit a flow on the fly."""
    z, _ = clusters(2000)
    with torch.no_grad():
        flow = Flow.fit(Codes(z), steps=300, hidden=(16, 16))
    assert mean_log_prob(flow, Codes(z)) > mean_log_prob(StandardNormal(3), Codes(z))


def test_fitted_densities_draw_at_their_temperature_and_the_prior_at_one():
    from cvae_lightning.densities.base import draw_temperature

    z, _ = clusters(500)
    gmm = GaussianMixture.fit(Codes(z), components=3)
    assert draw_temperature(gmm, None, 0.9) == 0.9
    assert draw_temperature(StandardNormal(3), None, 0.9) == 1.0  # the prior the VAE knows
    assert draw_temperature(gmm, 0.5, 0.9) == draw_temperature(StandardNormal(3), 0.5, 0.9) == 0.5


def test_a_mixture_over_a_wide_latent_scores_and_draws_many_codes_in_little_memory(monkeypatch):
    """model=resnet's 128-value codes: the mixture of each class is broadcast over its rows
    (gathering a 128 x 128 factor per row and component was 20 GB for 6,000 codes and killed a
    run), and the answer is each row's own mixture density."""
    g = torch.Generator().manual_seed(0)
    classes, k, latent, n = 2, 50, 128, 6000
    weights = torch.softmax(torch.randn(classes, k, generator=g), -1)
    means = torch.randn(classes, k, latent, generator=g)
    trils = (
        torch.eye(latent) * 0.5
        + torch.randn(classes, k, latent, latent, generator=g).tril(-1) * 0.01
    )
    gmm = GaussianMixture(weights, means, trils, num_classes=classes)
    y = torch.arange(n) % classes
    z = gmm.sample(n, y, generator=g)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB, the process's peak
    scores = gmm.log_prob(z, y)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown < 2 * 2**20, f"scoring 6,000 codes raised the peak memory by {grown} KiB"
    assert scores.shape == (n,) and torch.isfinite(scores).all()
    for i in (0, 1, n - 1):  # the density of row i's own class, computed alone
        c = y[i]
        own = torch.distributions.MixtureSameFamily(
            torch.distributions.Categorical(probs=weights[c]),
            torch.distributions.MultivariateNormal(means[c], scale_tril=trils[c]),
        )
        assert torch.allclose(scores[i], own.log_prob(z[i]), rtol=1e-5)
    # Drawing in chunks draws what one gather would: each row from its own component.
    whole = gmm.sample(7, y[:7], generator=torch.Generator().manual_seed(1))
    monkeypatch.setattr(gmm_module, "GATHER_BYTES", 3 * 4 * latent**2)  # chunks of 3 rows
    chunked = gmm.sample(7, y[:7], generator=torch.Generator().manual_seed(1))
    assert torch.allclose(whole, chunked) and gmm.sample(0).shape == (0, latent)
