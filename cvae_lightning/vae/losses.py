"""The objective: the decoder's negative log-likelihood plus the Gaussian KL term (both summed
over the batch). With the fixed likelihood it is the reference's summed squared error + KL."""

import torch

from cvae_lightning.vae.likelihood import GaussianLikelihood

# The reference's likelihood: no state, so one instance serves every caller that names none.
FIXED = GaussianLikelihood("fixed")


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over latent dims and batch."""
    mu, logvar = mu.float(), logvar.float()
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum()


def loss_terms(
    x_rec: torch.Tensor,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    kl_weight: float | torch.Tensor = 1.0,
    likelihood: GaussianLikelihood = FIXED,
) -> dict[str, torch.Tensor]:
    """The objective recon + kl_weight * KL (1: the negative ELBO) and its two terms, each
    summed over the batch; recon is -log p(x|z) of `likelihood` (the model's), and the terms
    are reported unweighted."""
    recon, kl = likelihood(x_rec, x), kl_divergence(mu, logvar)
    return {"loss": recon + kl_weight * kl, "recon": recon, "kl": kl}


def kl_weight(beta: float, warmup_steps: int, step: int) -> float:
    """beta, reached linearly over the first `warmup_steps` training steps (0: at once)."""
    if warmup_steps <= 0:
        return beta
    return beta * min(1.0, (step + 1) / warmup_steps)
