"""Generated images judged by the project's digit classifier, for each latent density:
FID, KID, confidence, digit coverage, precision and recall, and a memorisation guard.

FID and KID are torchmetrics' own, with the classifier's 128 penultimate activations as the
feature space instead of Inception's (which was never shown a handwritten digit). The same
metrics between real training and real test images give the floor a perfect model would reach.
A density that replays training images would score well on all of those, so each sample's
distance to its nearest training image is compared with the same distance for real test images.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence

import torch
from torchmetrics import MeanMetric
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance
from tqdm import tqdm

from cvae_lightning.densities.base import STANDARD, LatentDensity, draw_temperature
from cvae_lightning.evaluation.classifier import FeatureExtractor, ImageClassifier
from cvae_lightning.evaluation.neighbours import nearest_distance, precision_recall
from cvae_lightning.inference.draw import generate
from cvae_lightning.vae.model import CVAE


def draw_samples(
    model: CVAE, density: LatentDensity, n: int, batch: int, seed: int, temperature: float = 1.0
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """n samples of `density` in batches, in [0, 1]; a conditional model gets the labels 0, 1,
    ... in turn."""
    g = torch.Generator().manual_seed(seed)
    for start in range(0, n, batch):
        m = min(batch, n - start)
        y = torch.arange(start, start + m) % model.num_classes if model.num_classes else None
        yield generate(model, density, m, temperature, g, y).clamp(0, 1).cpu(), y


CONFIDENT = 0.9  # a sample "reads as a digit" when the classifier gives it p > 0.9


class ClassifierVerdicts:
    """Running confidence, confident share, predicted-digit counts and (given labels) accuracy
    of a classifier."""

    def __init__(self, features: FeatureExtractor):
        self.features = features
        self.confidence, self.confident, self.accuracy = MeanMetric(), MeanMetric(), MeanMetric()
        self.counts = torch.zeros(features.classifier.head[-1].out_features)

    @torch.no_grad()
    def update(self, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        probs = self.features.logits(x).softmax(-1)
        confidence, predicted = probs.max(-1)
        self.confidence.update(confidence)
        self.confident.update((confidence > CONFIDENT).float())
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
            f"{prefix}/confident_share": float(self.confident.compute()),
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


class SetJudge:
    """Judges sets of images against the test images: FID, KID, verdicts, precision/recall and
    the distance of each image to its nearest training image (for the memorisation guard)."""

    def __init__(self, classifier: ImageClassifier, kid_subset: int, seed: int, pr_k: int = 3):
        self.features = FeatureExtractor(classifier)  # one network pass per batch for all
        self.fid, self.kid = distance_metrics(self.features, kid_subset)
        self.seed, self.pr_k = seed, pr_k
        self.test_features = self.train_features = self.test_nn = None

    def _feed(self, batches: Iterator, real: bool) -> tuple[ClassifierVerdicts, torch.Tensor]:
        """One side of FID/KID, the classifier's verdicts, and the features of every image."""
        verdicts, feats = ClassifierVerdicts(self.features), []
        for x, y in batches:
            self.fid.update(x, real=real)
            self.kid.update(x, real=real)
            verdicts.update(x, y)
            feats.append(self.features(x))
        return verdicts, torch.cat(feats)

    def set_references(self, test: Iterator, train: Iterator) -> ClassifierVerdicts:
        """Batches (x, y) of test images, the real side of every comparison, and batches x of
        the training images that samples must not copy. -> the verdicts on the test images."""
        real, self.test_features = self._feed(test, real=True)
        self.train_features = torch.cat([self.features(x) for x in train])
        self.test_nn = nearest_distance(self.test_features, self.train_features).mean().item()
        return real

    def judge(self, batches: Iterator, prefix: str) -> tuple[dict[str, float], ClassifierVerdicts]:
        """All measures of one set of images, given as batches (x, labels or None)."""
        self.fid.reset()  # the test side stays
        self.kid.reset()
        verdicts, feats = self._feed(batches, real=False)
        torch.manual_seed(self.seed)  # KID's random subsets
        kid_mean, kid_std = self.kid.compute()
        precision, recall = precision_recall(self.test_features, feats, self.pr_k)
        nn = nearest_distance(feats, self.train_features).mean().item()
        return {
            f"{prefix}/fid": float(self.fid.compute()),
            f"{prefix}/kid": float(kid_mean),
            f"{prefix}/kid_std": float(kid_std),
            f"{prefix}/precision": precision,
            f"{prefix}/recall": recall,
            # Mean distance to the nearest training image over the same for real test images:
            # below 1, the set sits closer to the training images than new real digits do.
            f"{prefix}/train_nn_ratio": nn / self.test_nn,
            **verdicts.summary(prefix),
        }, verdicts


@torch.no_grad()
def sample_quality(
    model: CVAE,
    classifier: ImageClassifier,
    densities: dict[str, LatentDensity | None],
    *,
    test: tuple[torch.Tensor, torch.Tensor],
    train: torch.Tensor,
    n: int,
    batch: int,
    seed: int,
    kid_subset: int = 1000,
    temperature: float | None = None,
    fitted_temperature: float = 1.0,
    sweep: Sequence[float] = (),
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """For each density, n samples judged against the test images (keys samples/<name>/...);
    the first n training images judged the same way give the floor (real/...). Each density
    draws at `temperature`, or where None at 1 for N(0, I) and `fitted_temperature` otherwise.
    With `sweep`, the fitted density of lowest FID is judged again at each of those spreads
    (sweep/<t>/fid, kid, confident_share), and sweep/temperature is the spread of lowest FID
    among them and the one it was first drawn at: what fitted densities then draw at.

    `test` is (images in [0, 1], labels); `train` holds uint8 training images, all of which the
    memorisation guard compares samples with. -> (metrics, digit shares of each set)."""
    kid_subset = min(kid_subset, n, len(test[0]), len(train))
    judge = SetJudge(classifier, kid_subset, seed)

    def train_batches(limit: int | None = None):
        for x in train[:limit].split(batch):
            yield x.float().div(255)

    real = judge.set_references(zip(*(t.split(batch) for t in test), strict=True), train_batches())
    floor, _ = judge.judge(((x, None) for x in train_batches(n)), "real/train")
    metrics = {
        "real/fid_train_vs_test": floor["real/train/fid"],
        "real/kid_train_vs_test": floor["real/train/kid"],
        "real/precision": floor["real/train/precision"],
        "real/recall": floor["real/train/recall"],
        **real.summary("real"),
    }
    shares = {"real_test": real.shares().tolist()}
    for name, density in tqdm(densities.items(), desc="densities' samples", disable=None):
        t = draw_temperature(density, temperature, fitted_temperature)
        draws = draw_samples(model, density, n, batch, seed, t)
        quality, verdicts = judge.judge(draws, f"samples/{name}")
        metrics |= quality
        shares[name] = verdicts.shares().tolist()
    fitted = [name for name, density in densities.items() if density.kind != STANDARD]
    if sweep and fitted:
        best = min(fitted, key=lambda name: metrics[f"samples/{name}/fid"])
        drawn = draw_temperature(densities[best], temperature, fitted_temperature)
        metrics |= {f"sweep/{drawn:g}/{k}": metrics[f"samples/{best}/{k}"] for k in SWEPT}
        fids = {drawn: metrics[f"samples/{best}/fid"]}
        for t in sorted(set(sweep) - {drawn}):
            quality, _ = judge.judge(draw_samples(model, densities[best], n, batch, seed, t), "s")
            metrics |= {f"sweep/{t:g}/{k}": quality[f"s/{k}"] for k in SWEPT}
            fids[t] = quality["s/fid"]
        metrics["sweep/temperature"] = min(fids, key=fids.get)
    return metrics, shares


# What the temperature sweep records at each spread.
SWEPT = ("fid", "kid", "confident_share")
