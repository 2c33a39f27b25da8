"""Full-covariance Gaussian mixtures fitted by scikit-learn's EM (one component: `gaussian`),
one mixture per class for a conditional model."""

from __future__ import annotations

import logging

import torch
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

from cvae_lightning.densities.base import Codes, Fitter, bind, require, rows

log = logging.getLogger(__name__)
# Added to every covariance diagonal so each Cholesky factor exists (EM's reg_covar).
JITTER = 1e-4


class GaussianMixture:
    """Weights (C, K), means (C, K, L), Cholesky factors (C, K, L, L): C = classes (1 if none)."""

    kind = "gmm"

    def __init__(self, weights, means, scale_tril, num_classes: int = 0):
        self.weights, self.means, self.scale_tril = weights, means, scale_tril
        self.latent, self.num_classes = means.shape[-1], num_classes

    @classmethod
    def fitter(cls, components: int = 50, seed: int = 0, max_iter: int = 200) -> Fitter:
        """`fit` with these settings, checked now: a bad value stops a run before it trains."""
        require({"components": components, "max_iter": max_iter}, {"components": 1, "max_iter": 1})
        return bind(cls.fit, components=components, seed=seed, max_iter=max_iter)

    @classmethod
    def fit(cls, codes: Codes, components: int = 50, seed: int = 0, max_iter: int = 200):
        """EM by scikit-learn, per class if num_classes > 0; k-means initialisation."""
        from sklearn.mixture import GaussianMixture as SkMixture

        weights, means, trils = [], [], []
        for c, g in enumerate(codes.groups()):
            of = f" of class {c}" if codes.num_classes else ""
            if len(g) == 0:  # a class the training images never showed: the pooled codes
                log.info(f"gmm: no codes{of}; its mixture is fitted on all {len(codes.z)} codes")
                g = codes.z
            k = min(components, max(len(g) - 1, 1))
            if k < components:  # small classes are normal in users' own data
                log.info(f"gmm: {len(g)} codes{of}, so {k} components instead of {components}")
            gm = SkMixture(
                k, covariance_type="full", reg_covar=JITTER, max_iter=max_iter,
                random_state=seed,
            ).fit(g.double().numpy())  # fmt: skip
            weights.append(torch.from_numpy(gm.weights_))
            means.append(torch.from_numpy(gm.means_))
            trils.append(torch.linalg.cholesky(torch.from_numpy(gm.covariances_)))
        # Classes fitted with fewer components are padded with weight-0 copies: one tensor each.
        k = max(len(w) for w in weights)
        pad = lambda t: torch.cat([t, t[:1].expand(k - len(t), *t.shape[1:])])  # noqa: E731
        weights = [torch.cat([w, w.new_zeros(k - len(w))]) for w in weights]
        stack = lambda ts: torch.stack([pad(t) for t in ts]).float()  # noqa: E731
        return cls(stack(weights), stack(means), stack(trils), codes.num_classes)

    def sample(self, n, y=None, temperature=1.0, generator=None) -> torch.Tensor:
        """Pick a component by its weight, then spread around its mean scaled by temperature."""
        c = rows(y, n)
        k = torch.multinomial(self.weights[c], 1, generator=generator).squeeze(1)
        eps = torch.randn(n, self.latent, generator=generator) * temperature
        return self.means[c, k] + torch.einsum("nij,nj->ni", self.scale_tril[c, k], eps)

    def log_prob(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        c = rows(y, len(z))
        mixture = MixtureSameFamily(
            Categorical(probs=self.weights[c]),
            MultivariateNormal(self.means[c], scale_tril=self.scale_tril[c]),
        )
        return mixture.log_prob(z.cpu().float())

    def state(self) -> dict:
        return {
            "kind": self.kind, "num_classes": self.num_classes, "weights": self.weights,
            "means": self.means, "scale_tril": self.scale_tril,
        }  # fmt: skip

    @classmethod
    def from_state(cls, s: dict):
        return cls(s["weights"], s["means"], s["scale_tril"], s["num_classes"])
