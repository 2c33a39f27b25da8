"""The codes of images: the posteriors q(z|x) of a batch of images, a batch at a time, and the
codes densities are fitted on (posterior means, or one draw from each). Plain PyTorch."""

from __future__ import annotations

import torch

from cvae_lightning.vae.layers import reparameterize
from cvae_lightning.vae.model import CVAE


def device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def posteriors(
    model: CVAE, x: torch.Tensor, y: torch.Tensor | None = None, batch: int = 512
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar) of q(z|x[,y]) for images (N, C, S, S), floats in [0, 1] or uint8, a batch
    at a time; a plain model ignores y."""
    model.eval()
    device = device_of(model)
    ys = [None] * len(x.split(batch)) if y is None else y.to(device).split(batch)
    mus, logvars = [], []
    for xb, yb in zip(x.split(batch), ys, strict=True):
        xb = xb.to(device)
        xb = xb.float().div(255) if xb.dtype == torch.uint8 else xb  # cached uint8 data
        mu, logvar = model.posterior(xb, yb)
        mus.append(mu)
        logvars.append(logvar)
    return torch.cat(mus), torch.cat(logvars)


@torch.no_grad()
def latent_codes(
    model: CVAE,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    batch: int = 512,
    codes: str = "mean",
    seed: int = 0,
) -> torch.Tensor:
    """Codes of images (N, C, S, S), floats in [0, 1] or uint8 -> (N, latent), a batch at a
    time: the posterior means (codes="mean") or one seeded draw z = mu + sigma * eps from each
    posterior ("sample")."""
    mu, logvar = posteriors(model, x, y, batch)
    if codes == "sample":  # one draw per batch, in order: the same stream as ever
        g = torch.Generator().manual_seed(seed)
        eps = torch.cat([torch.randn(m.shape, generator=g) for m in mu.split(batch)])
        mu = reparameterize(mu, logvar, eps.to(mu))
    return mu


def posterior_means(
    model: CVAE, x: torch.Tensor, y: torch.Tensor | None = None, batch: int = 512
) -> torch.Tensor:
    """mu of q(z|x[,y]) for images (N, C, S, S) -> (N, latent), a batch at a time."""
    return latent_codes(model, x, y, batch)
