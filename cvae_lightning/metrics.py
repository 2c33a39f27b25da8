"""Model-quality measures in plain PyTorch: importance-weighted bound, latent activity, probes.

p(x|z) is the model's own likelihood (likelihood.py), in the loss's units: its `constant`
turns the per-image loss and the IWAE bound into nats (D/2 log(pi) for the fixed Gaussian).
"""

from __future__ import annotations

import math

import torch

from cvae_lightning.model import CVAE, reparameterize


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) summed over the last dim."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)


@torch.no_grad()
def iwae_loss(model: CVAE, x: torch.Tensor, k: int, y: torch.Tensor | None = None) -> torch.Tensor:
    """Per image, in the loss's units: -log (1/k sum_i p(x|z_i) p(z_i) / q(z_i|x)) - constant
    (the likelihood's: 0 for a calibrated one, D/2 log(pi) for the fixed one).

    For k=1 its expectation is the per-image loss (recon + KL); it can only fall as k grows,
    towards -log p(x) - constant.
    """
    model.eval()
    mu, logvar = model.posterior(x, y)
    log_w = []
    for _ in range(k):
        z = reparameterize(mu, logvar)
        x_rec = model.decode(z, y)
        log_px_z = -model.likelihood(x_rec, x, per_image=True)
        log_pz = _log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
        log_qz = _log_normal(z, mu, logvar)
        log_w.append(log_px_z + log_pz - log_qz)
    return -(torch.logsumexp(torch.stack(log_w), dim=0) - math.log(k))


def active_units(mu: torch.Tensor, threshold: float = 0.01) -> int:
    """Latent dims whose posterior mean varies across images by more than `threshold`."""
    return int((mu.var(dim=0) > threshold).sum())


def knn_accuracy(
    train_z: torch.Tensor, train_y: torch.Tensor, test_z: torch.Tensor, test_y: torch.Tensor,
    k: int = 5, chunk: int = 1024,
) -> float:  # fmt: skip
    """Accuracy of a k-nearest-neighbour vote (Euclidean) from train codes to test codes."""
    correct = 0
    for start in range(0, len(test_z), chunk):
        d = torch.cdist(test_z[start : start + chunk], train_z)
        votes = train_y[d.topk(k, largest=False).indices]
        pred = torch.mode(votes, dim=1).values
        correct += int((pred == test_y[start : start + chunk]).sum())
    return correct / len(test_z)


def _distances(query: torch.Tensor, ref: torch.Tensor, chunk: int = 2048):
    """Yield (start, distances of query[start:start+chunk] to every row of ref)."""
    for start in range(0, len(query), chunk):
        yield start, torch.cdist(query[start : start + chunk], ref)


def nearest_distance(query: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Each query row's Euclidean distance to its nearest row of ref -> (len(query),)."""
    return torch.cat([d.min(dim=1).values for _, d in _distances(query, ref)])


def knn_radii(features: torch.Tensor, k: int) -> torch.Tensor:
    """Each row's distance to its k-th nearest other row (the row itself excluded)."""
    return torch.cat([d.kthvalue(k + 1, dim=1).values for _, d in _distances(features, features)])


def manifold_coverage(query: torch.Tensor, ref: torch.Tensor, ref_radii: torch.Tensor) -> float:
    """Share of query rows inside at least one ref row's k-NN ball."""
    inside = [(d <= ref_radii[None, :]).any(dim=1) for _, d in _distances(query, ref)]
    return torch.cat(inside).float().mean().item()


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall of a generated set (Kynkäänniemi et al. 2019) in a feature
    space: precision, the share of fake samples inside the real data's k-NN manifold (are they
    realistic?); recall, the share of real samples inside the fake one's (is all of it drawn?)."""
    return (
        manifold_coverage(fake, real, knn_radii(real, k)),
        manifold_coverage(real, fake, knn_radii(fake, k)),
    )
