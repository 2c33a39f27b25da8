"""A Gaussian fitted to the posterior means of training images: where to draw z from after training.

The VAE's prior N(0, I) and the codes the encoder actually uses never match exactly. In a
conditional model this matters most: the encoder keeps some of the digit's identity in z, so a
z drawn from N(0, I) can carry another digit than the label asks for. One Gaussian per class,
fitted to that class's posterior means ("ex-post density estimation", Ghosh et al. 2020),
draws z from where the decoder saw that digit. Plain PyTorch.
"""

from __future__ import annotations

import torch

JITTER = 1e-4  # added to the covariance diagonal so its Cholesky factor always exists


class FittedPrior:
    """Means (K, L) and Cholesky factors (K, L, L): one Gaussian per class, or one in all."""

    def __init__(self, means: torch.Tensor, scale_tril: torch.Tensor):
        self.means, self.scale_tril = means, scale_tril

    @classmethod
    def fit(cls, mu: torch.Tensor, y: torch.Tensor | None = None, num_classes: int = 0):
        """From posterior means mu (N, L) and, for a conditional model, their labels y (N,)."""
        groups = [mu[y == k] for k in range(num_classes)] if num_classes else [mu]
        for k, g in enumerate(groups):
            if len(g) <= mu.shape[1]:
                raise ValueError(
                    f"too few images ({len(g)}) of class {k} to fit a {mu.shape[1]}-d Gaussian: "
                    "fit the prior on more training images"
                )
        eye = torch.eye(mu.shape[1], dtype=mu.dtype, device=mu.device)
        means = torch.stack([g.mean(0) for g in groups])
        covs = torch.stack([torch.cov(g.T) + JITTER * eye for g in groups])
        return cls(means, torch.linalg.cholesky(covs))

    def sample(
        self,
        n: int,
        y: torch.Tensor | None = None,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """n codes (n, L); row i from class y[i]'s Gaussian (or the single one), spread scaled."""
        k = torch.zeros(n, dtype=torch.long) if y is None else y.long().cpu()
        eps = torch.randn(n, self.means.shape[1], generator=generator) * temperature
        eps = eps.to(self.means.device, self.means.dtype)
        return self.means[k] + torch.einsum("nij,nj->ni", self.scale_tril[k], eps)
