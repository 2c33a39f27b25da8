"""Generated images judged by the project's digit classifier: FID, KID, confidence, digit coverage.

FID and KID are torchmetrics' own, with the classifier's 128 penultimate activations as the
feature space instead of Inception's (which was never shown a handwritten digit). The same
metrics between real training and real test images give the floor a perfect model would reach.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator

import torch
from torchmetrics import MeanMetric
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from cvae_lightning.classifier import DigitClassifier, FeatureExtractor
from cvae_lightning.explore import generate
from cvae_lightning.latent_prior import FittedPrior
from cvae_lightning.model import CVAE


def draw_samples(
    model: CVAE, n: int, batch: int, seed: int, temperature: float = 1.0,
    prior: FittedPrior | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:  # fmt: skip
    """n samples in batches, in [0, 1]; a conditional model gets the labels 0, 1, ... in turn."""
    g = torch.Generator().manual_seed(seed)
    for start in range(0, n, batch):
        m = min(batch, n - start)
        y = torch.arange(start, start + m) % model.num_classes if model.num_classes else None
        yield generate(model, m, temperature, g, y, prior).clamp(0, 1).cpu(), y


class ClassifierVerdicts:
    """Running confidence, predicted-digit counts and (given labels) accuracy of a classifier."""

    def __init__(self, features: FeatureExtractor):
        self.features = features
        self.confidence, self.accuracy = MeanMetric(), MeanMetric()
        self.counts = torch.zeros(features.classifier.head[-1].out_features)

    @torch.no_grad()
    def update(self, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        probs = self.features.logits(x).softmax(-1)
        confidence, predicted = probs.max(-1)
        self.confidence.update(confidence)
        self.counts += torch.bincount(predicted, minlength=len(self.counts)).float()
        if y is not None:
            self.accuracy.update((predicted == y).float())

    def shares(self) -> torch.Tensor:
        return self.counts / self.counts.sum()

    def summary(self, prefix: str) -> dict[str, float]:
        shares = self.shares()
        entropy = -(shares * shares.clamp_min(1e-12).log()).sum().item()
        out = {
            f"{prefix}/confidence": float(self.confidence.compute()),
            # 1.0 when every digit is predicted equally often, 0.0 when only one digit is
            f"{prefix}/digit_evenness": entropy / math.log(len(shares)),
            f"{prefix}/rarest_digit_share": shares.min().item(),
        }
        if self.accuracy.update_count:
            out[f"{prefix}/class_accuracy"] = float(self.accuracy.compute())
        return out


def distance_metrics(
    features: FeatureExtractor, kid_subset: int
) -> tuple[FrechetInceptionDistance, KernelInceptionDistance]:
    """FID and KID over the classifier's features; their real side survives reset()."""
    fid = FrechetInceptionDistance(feature=features, reset_real_features=False, normalize=True)
    with warnings.catch_warnings():  # KID keeps all features: 10,000 x 128 floats is 5 MB
        warnings.filterwarnings("ignore", ".*will save all extracted features.*")
        kid = KernelInceptionDistance(
            feature=features, reset_real_features=False, normalize=True, subset_size=kid_subset
        )
    return fid, kid


@torch.no_grad()
def sample_quality(
    model: CVAE,
    classifier: DigitClassifier,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    train_x: torch.Tensor,
    n: int,
    batch: int,
    seed: int,
    kid_subset: int = 1000,
    temperature: float = 1.0,
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """FID/KID of n samples against the test images, and of training images (the floor);
    the classifier's confidence and digit coverage on samples and test images, its accuracy on
    the test images and (conditional model) on the requested digits. -> (metrics, digit shares)"""
    kid_subset = min(kid_subset, n, len(test_x), len(train_x))
    features = FeatureExtractor(classifier)  # one network pass per batch serves all metrics
    fid, kid = distance_metrics(features, kid_subset)
    real = ClassifierVerdicts(features)
    for x, y in zip(test_x.split(batch), test_y.split(batch), strict=True):
        fid.update(x, real=True)
        kid.update(x, real=True)
        real.update(x, y)

    samples = ClassifierVerdicts(features)
    for x, y in draw_samples(model, n, batch, seed, temperature):
        fid.update(x, real=False)
        kid.update(x, real=False)
        samples.update(x, y)
    torch.manual_seed(seed)  # KID's random subsets
    kid_mean, kid_std = kid.compute()
    metrics = {
        "samples/fid": float(fid.compute()),
        "samples/kid": float(kid_mean),
        "samples/kid_std": float(kid_std),
        **samples.summary("samples"),
    }

    fid.reset()  # the test features stay: now compare real training images with them
    kid.reset()
    for x in train_x.split(batch):
        fid.update(x, real=False)
        kid.update(x, real=False)
    torch.manual_seed(seed)
    metrics |= {
        "real/fid_train_vs_test": float(fid.compute()),
        "real/kid_train_vs_test": float(kid.compute()[0]),
        **real.summary("real"),
    }
    shares = {"samples": samples.shares().tolist(), "real_test": real.shares().tolist()}
    return metrics, shares


@torch.no_grad()
def fitted_prior_accuracy(
    model: CVAE, classifier: DigitClassifier, prior: FittedPrior, n: int, batch: int, seed: int
) -> float:
    """How often a conditional model draws the requested digit with z from the fitted prior."""
    verdicts = ClassifierVerdicts(FeatureExtractor(classifier))
    for x, y in draw_samples(model, n, batch, seed, prior=prior):
        verdicts.update(x, y)
    return float(verdicts.accuracy.compute())
