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
# At most this many bytes of per-row Cholesky factors gathered at once while sampling.
GATHER_BYTES = 1 << 28


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
        # Each row's own Cholesky factor, a chunk of rows at a time: n x L x L at once would be
        # 0.7 GB for 10,000 samples of a 128-value latent.
        step = max(1, GATHER_BYTES // (4 * self.latent**2))
        chunks = []
        for i in range(0, n, step):
            part = slice(i, i + step)
            tril = self.scale_tril[c[part], k[part]]
            chunks.append(
                self.means[c[part], k[part]] + torch.einsum("nij,nj->ni", tril, eps[part])
            )
        return torch.cat(chunks) if chunks else self.means.new_zeros(0, self.latent)

    def log_prob(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        # One mixture per class, broadcast over its rows: indexing the factors per row first
        # made rows x K x L x L floats (20 GB for 6,000 codes of a 128-value latent).
        z, c = z.cpu().float(), rows(y, len(z))
        out = z.new_empty(len(z))
        for label in c.unique().tolist():
            mixture = MixtureSameFamily(
                Categorical(probs=self.weights[label]),
                MultivariateNormal(self.means[label], scale_tril=self.scale_tril[label]),
            )
            out[c == label] = mixture.log_prob(z[c == label])
        return out

    def state(self) -> dict:
        return {
            "kind": self.kind, "num_classes": self.num_classes, "weights": self.weights,
            "means": self.means, "scale_tril": self.scale_tril,
        }  # fmt: skip

    @classmethod
    def from_state(cls, s: dict):
        return cls(s["weights"], s["means"], s["scale_tril"], s["num_classes"])
