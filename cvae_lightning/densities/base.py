"""What every latent density shares: the codes it is fitted on, the contract each kind keeps
(fit, sample, log_prob, state), and fitting a set of them with a report.

The VAE's prior N(0, I) and the region the encoder actually fills never match: much of N(0, I)
decodes to blobs the decoder never learnt. A density fitted to the training images' codes
("ex-post density estimation", Ghosh et al. 2020; the second stage of Dai & Wipf 2019) draws
z where the decoder saw its data, without retraining the model. Every density saves to tensors
and plain values only (`state()`), so a file of them loads with `torch.load(weights_only=True)`
(or safetensors); no pickled scikit-learn object is ever written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import torch

# What fitted densities draw at unless told otherwise (conf/density's `temperature`, which a
# test keeps equal): 0.9 gave the lowest FID on the full-MNIST reference model.
FITTED_TEMPERATURE = 0.9
# N(0, I)'s name (standard.py): drawn at temperature 1 unless asked otherwise.
STANDARD = "standard"


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


def rows(y: torch.Tensor | None, n: int) -> torch.Tensor:
    """Class index of each of n rows (all 0 for an unconditional density)."""
    return torch.zeros(n, dtype=torch.long) if y is None else y.long().cpu().expand(n)


class LatentDensity(Protocol):
    """A density over codes z (N, latent), per class for a conditional model."""

    kind: str  # its name in files and in `prior=`
    latent: int
    num_classes: int

    @classmethod
    def fit(cls, codes: Codes, **settings) -> LatentDensity: ...

    def sample(self, n: int, y=None, temperature: float = 1.0, generator=None) -> torch.Tensor:
        """n codes (on the CPU), spread scaled by temperature, of class y if conditional."""

    def log_prob(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor: ...

    def state(self) -> dict:
        """Tensors and plain values only, with `kind`: what from_state rebuilds it from."""

    @classmethod
    def from_state(cls, s: dict) -> LatentDensity: ...


# A fitter: fit(codes) -> density, its settings bound and checked (each kind's `fitter`).
Fitter = Callable[[Codes], LatentDensity]


def require(settings: dict, at_least: dict[str, float], above: dict[str, float] = None) -> None:
    """Refuse a setting below its least value (or not above its bound), naming it."""
    for key, least in at_least.items():
        if settings[key] < least:
            raise ValueError(f"{key}={settings[key]} is invalid: it must be >= {least}")
    for key, bound in (above or {}).items():
        if settings[key] <= bound:
            raise ValueError(f"{key}={settings[key]} is invalid: it must be > {bound}")


def bind(fit: Callable, **settings) -> Fitter:
    return partial(fit, **settings)


def draw_temperature(density: LatentDensity, asked: float | None, fitted: float) -> float:
    """The spread to draw at: `asked` where given, else 1 for N(0, I) (the prior the VAE was
    trained with) and `fitted` (density.temperature) for a fitted density."""
    if asked is not None:
        return asked
    return 1.0 if density.kind == STANDARD else fitted


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
    log-likelihood."""
    densities, report = {}, {}
    for name, fit in fitters.items():
        start = time.perf_counter()
        densities[name] = fit(codes)
        report[name] = {"fit_seconds": time.perf_counter() - start}
        if held_out is not None:
            report[name]["test_log_likelihood"] = mean_log_prob(densities[name], held_out)
    return densities, report
