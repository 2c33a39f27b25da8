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
    x_rec: torch.Tensor,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    kl_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """The objective recon + kl_weight * KL (1: the reference, the negative ELBO) and its two
    terms, each summed over the batch; the terms are reported unweighted."""
    recon, kl = reconstruction_loss(x_rec, x), kl_divergence(mu, logvar)
    return {"loss": recon + kl_weight * kl, "recon": recon, "kl": kl}


def kl_weight(beta: float, warmup_steps: int, step: int) -> float:
    """beta, reached linearly over the first `warmup_steps` training steps (0: at once)."""
    if warmup_steps <= 0:
        return beta
    return beta * min(1.0, (step + 1) / warmup_steps)
