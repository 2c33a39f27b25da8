"""Densities over the latent codes: where to draw z from once the VAE is trained.

The VAE's prior N(0, I) and the region the encoder actually fills never match: much of N(0, I)
decodes to blobs the decoder never learnt. A density fitted to the training images' codes
("ex-post density estimation", Ghosh et al. 2020; the second stage of Dai & Wipf 2019) draws
z where the decoder saw digits, without retraining the model. Four kinds:

- `standard`: N(0, I), the VAE's own prior (nothing to fit);
- `gaussian` / `gmm`: a full-covariance Gaussian mixture fitted by scikit-learn's EM (one
  component for `gaussian`), one mixture per class for a conditional model;
- `flow`: a masked autoregressive flow (zuko) trained by maximum likelihood, the class as its
  context for a conditional model.

Every density saves to tensors and plain values only (`state()`), so a file of them loads with
`torch.load(weights_only=True)`; no pickled scikit-learn object is ever written.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

from cvae_lightning.errors import ConfigError

log = logging.getLogger(__name__)
# Added to every covariance diagonal so each Cholesky factor exists (EM's reg_covar).
JITTER = 1e-4


@dataclass(frozen=True)
class Codes:
    """What a density is fitted on: codes z (N, L), their labels y (N,) for a conditional
    model (None otherwise) and the number of classes (0: unconditional)."""

    z: torch.Tensor
    y: torch.Tensor | None = None
    num_classes: int = 0

    def groups(self) -> list[torch.Tensor]:
        """The codes of each class in turn, or all of them for an unconditional model."""
        return (
            [self.z[self.y == c] for c in range(self.num_classes)] if self.num_classes else [self.z]
        )


def _rows(y: torch.Tensor | None, n: int) -> torch.Tensor:
    """Class index of each of n rows (all 0 for an unconditional density)."""
    return torch.zeros(n, dtype=torch.long) if y is None else y.long().cpu().expand(n)


class StandardNormal:
    """N(0, I): the VAE's prior. Draws the same z as `CVAE.sample` under the same generator."""

    kind = "standard"

    def __init__(self, latent: int, num_classes: int = 0):
        self.latent, self.num_classes = latent, num_classes

    @classmethod
    def fit(cls, codes: Codes):
        return cls(codes.z.shape[1], codes.num_classes)

    def sample(self, n, y=None, temperature=1.0, generator=None) -> torch.Tensor:
        return torch.randn(n, self.latent, generator=generator) * temperature

    def log_prob(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)

    def state(self) -> dict:
        return {"kind": self.kind, "latent": self.latent, "num_classes": self.num_classes}

    @classmethod
    def from_state(cls, s: dict):
        return cls(s["latent"], s["num_classes"])


class GaussianMixture:
    """Weights (C, K), means (C, K, L), Cholesky factors (C, K, L, L): C = classes (1 if none)."""

    kind = "gmm"

    def __init__(self, weights, means, scale_tril, num_classes: int = 0):
        self.weights, self.means, self.scale_tril = weights, means, scale_tril
        self.latent, self.num_classes = means.shape[-1], num_classes

    @classmethod
    def fit(cls, codes: Codes, components: int = 50, seed: int = 0, max_iter: int = 200):
        """EM by scikit-learn, per class if num_classes > 0; k-means initialisation."""
        from sklearn.mixture import GaussianMixture as SkMixture

        if components < 1:
            raise ValueError(f"components={components} is invalid: it must be >= 1")
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
        c = _rows(y, n)
        k = torch.multinomial(self.weights[c], 1, generator=generator).squeeze(1)
        eps = torch.randn(n, self.latent, generator=generator) * temperature
        return self.means[c, k] + torch.einsum("nij,nj->ni", self.scale_tril[c, k], eps)

    def log_prob(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        c = _rows(y, len(z))
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


class Flow:
    """A masked autoregressive flow (zuko.flows.MAF) over standardised codes.

    The codes are shifted and scaled to zero mean and unit spread first, so one learning rate
    suits any model; log_prob undoes that scaling, so it stays a density over z.
    """

    kind = "flow"

    def __init__(self, latent, num_classes, transforms, hidden, shift, scale, weights=None):
        import zuko

        self.latent, self.num_classes = latent, num_classes
        self.transforms, self.hidden = transforms, [int(h) for h in hidden]
        self.shift, self.scale = shift, scale
        self.flow = zuko.flows.MAF(
            latent, num_classes, transforms=transforms, hidden_features=tuple(self.hidden)
        )
        if weights is not None:
            self.flow.load_state_dict(weights)
        self.flow.eval().requires_grad_(False)

    def _context(self, y: torch.Tensor | None, n: int) -> torch.Tensor | None:
        if not self.num_classes:
            return None
        return torch.nn.functional.one_hot(_rows(y, n), self.num_classes).float()

    @classmethod
    def fit(
        cls,
        codes: Codes,
        transforms: int = 3,
        hidden: tuple[int, ...] = (64, 64),
        steps: int = 2000,
        batch_size: int = 512,
        lr: float = 1e-3,
        seed: int = 0,
    ):
        """Maximum likelihood with Adam on random batches of the codes (cosine-decayed lr)."""
        for key, value in (
            ("transforms", transforms),
            ("steps", steps),
            ("batch_size", batch_size),
        ):
            if value < 1:
                raise ValueError(f"{key}={value} is invalid: it must be >= 1")
        if lr <= 0:
            raise ValueError(f"lr={lr} is invalid: it must be > 0")
        z = codes.z.cpu().float()
        shift, scale = z.mean(0), z.std(0).clamp_min(1e-6)
        with torch.random.fork_rng():
            torch.manual_seed(seed)  # the MADE layers' initial weights
            density = cls(z.shape[1], codes.num_classes, transforms, hidden, shift, scale)
        flow, x = density.flow.train().requires_grad_(True), (z - shift) / scale
        context = density._context(codes.y, len(z))
        g = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(flow.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        with torch.enable_grad():  # callers may be inside no_grad (evaluation)
            for _ in range(steps):
                idx = torch.randint(len(x), (batch_size,), generator=g)
                dist = flow(None if context is None else context[idx])
                loss = -dist.log_prob(x[idx]).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
        flow.eval().requires_grad_(False)
        return density

    @torch.no_grad()
    def sample(self, n, y=None, temperature=1.0, generator=None) -> torch.Tensor:
        """Base draws eps ~ N(0, temperature^2 I) pushed through the inverse flow."""
        eps = torch.randn(n, self.latent, generator=generator) * temperature
        dist = self.flow(self._context(y, n))
        return self.shift + self.scale * dist.transform.inv(eps)

    @torch.no_grad()
    def log_prob(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        x = (z.cpu().float() - self.shift) / self.scale
        return self.flow(self._context(y, len(z))).log_prob(x) - self.scale.log().sum()

    def state(self) -> dict:
        return {
            "kind": self.kind, "latent": self.latent, "num_classes": self.num_classes,
            "transforms": self.transforms, "hidden": self.hidden, "shift": self.shift,
            "scale": self.scale, "weights": dict(self.flow.state_dict()),
        }  # fmt: skip

    @classmethod
    def from_state(cls, s: dict):
        return cls(
            s["latent"], s["num_classes"], s["transforms"], s["hidden"], s["shift"], s["scale"],
            s["weights"],
        )  # fmt: skip


LatentDensity = StandardNormal | GaussianMixture | Flow
KINDS = {cls.kind: cls for cls in (StandardNormal, GaussianMixture, Flow)}
# A fitter: fit(codes) -> density; conf/density builds them as Hydra partials.
Fitter = Callable[[Codes], LatentDensity]


def draw_temperature(density: LatentDensity | None, asked: float | None, fitted: float) -> float:
    """The spread to draw at: `asked` where given, else 1 for N(0, I) (the prior the VAE was
    trained with) and `fitted` (density.temperature) for a fitted density."""
    if asked is not None:
        return asked
    return 1.0 if density is None or density.kind == StandardNormal.kind else fitted


def mean_log_prob(density: LatentDensity, codes: Codes, chunk: int = 4096) -> float:
    """Mean log-likelihood of the codes (nats per code): how well a density generalises."""
    z, y, total = codes.z, codes.y, 0.0
    for start in range(0, len(z), chunk):
        yc = None if y is None else y[start : start + chunk]
        total += density.log_prob(z[start : start + chunk], yc).sum().item()
    return total / len(z)


def fit_all(
    fitters: dict[str, Fitter], codes: Codes, held_out: Codes | None = None
) -> tuple[dict[str, LatentDensity], dict[str, dict[str, float]]]:
    """Fit each named density on the codes; time each fit and, given held-out codes, their mean
    log-likelihood. A bad setting names the density's config key."""
    densities, report = {}, {}
    for name, fit in fitters.items():
        start = time.perf_counter()
        try:
            densities[name] = fit(codes)
        except ValueError as e:
            raise ConfigError(f"density.fitters.{name}: {e}") from None
        report[name] = {"fit_seconds": time.perf_counter() - start}
        if held_out is not None:
            report[name]["test_log_likelihood"] = mean_log_prob(densities[name], held_out)
    return densities, report
