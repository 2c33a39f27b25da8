"""The reference objective: summed squared error plus the Gaussian KL term (both per batch)."""

import torch


def reconstruction_loss(x_rec: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Sum over pixels and batch of (x_rec - x)^2, computed in fp32 even under autocast."""
    return (x_rec.float() - x.float()).pow(2).sum()


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over latent dims and batch."""
    mu, logvar = mu.float(), logvar.float()
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum()


def loss_terms(
    x_rec: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The reference objective and its two terms, each summed over the batch."""
    recon, kl = reconstruction_loss(x_rec, x), kl_divergence(mu, logvar)
    return {"loss": recon + kl, "recon": recon, "kl": kl}
