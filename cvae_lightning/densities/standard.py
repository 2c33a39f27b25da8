"""N(0, I), the VAE's own prior, as a density like the fitted ones (nothing to fit)."""

from __future__ import annotations

import math

import torch

from cvae_lightning.densities.base import STANDARD, Codes, Fitter, bind


class StandardNormal:
    """N(0, I): the VAE's prior. Draws the same z as `CVAE.sample` under the same generator."""

    kind = STANDARD

    def __init__(self, latent: int, num_classes: int = 0):
        self.latent, self.num_classes = latent, num_classes

    @classmethod
    def of(cls, model) -> StandardNormal:
        """The prior of a model (a CVAE: its latent size and classes)."""
        return cls(model.latent, model.num_classes)

    @classmethod
    def fitter(cls) -> Fitter:
        return bind(cls.fit)

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
