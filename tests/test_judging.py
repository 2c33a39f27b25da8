"""FID/KID over the project classifier's features, confidence and digit coverage of samples."""

import pytest
import torch

from cvae_lightning.densities.standard import StandardNormal
from cvae_lightning.evaluation.classifier import FeatureExtractor, ImageClassifier, load_classifier
from cvae_lightning.evaluation.samples import (
    ClassifierVerdicts,
    distance_metrics,
    draw_samples,
    sample_quality,
)
from cvae_lightning.paths import PROJECT_ROOT
from cvae_lightning.vae.model import CVAE

from conftest import read_images


@pytest.fixture(scope="module")
def classifier():
    return load_classifier(PROJECT_ROOT / "weights" / "mnist_classifier.pt")[0]


@pytest.fixture(scope="module")
def digits(cache_dir):
    x, y = read_images(PROJECT_ROOT / "data", "mnist", False, 28, cache_dir)
    return x[:2000].float().div(255), y[:2000]


def distances(classifier, real, fake):
    fid, kid = distance_metrics(FeatureExtractor(classifier), kid_subset=500)
    fid.update(real, real=True)
    kid.update(real, real=True)
    fid.update(fake, real=False)
    kid.update(fake, real=False)
    torch.manual_seed(0)
    return fid.compute().item(), kid.compute()[0].item()


def test_fid_and_kid_of_a_set_against_itself_are_zero_and_against_noise_large(classifier, digits):
    x = digits[0]
    fid_self, kid_self = distances(classifier, x, x)
    fid_halves, _ = distances(classifier, x[:1000], x[1000:])  # two samples of the same digits
    fid_noise, kid_noise = distances(classifier, x, torch.rand_like(x))
    assert abs(fid_self) < 1e-6 * fid_noise
    assert abs(kid_self) < 1e-4 * kid_noise  # unbiased estimate: ~0, either sign
    assert fid_noise > 100 * fid_halves > 0


def test_verdicts_measure_confidence_coverage_and_accuracy():
    always_three = ImageClassifier(8)
    torch.nn.init.zeros_(always_three.head[-1].weight)
    with torch.no_grad():
        always_three.head[-1].bias.copy_(torch.arange(10) == 3).mul_(20)
    verdicts = ClassifierVerdicts(FeatureExtractor(always_three))
    y = torch.tensor([3, 3, 1, 2])
    verdicts.update(torch.rand(4, 1, 28, 28), y)
    s = verdicts.summary("samples")
    assert s["samples/digit_evenness"] == pytest.approx(0, abs=1e-6)
    assert s["samples/rarest_digit_share"] == 0
    assert s["samples/class_accuracy"] == 0.5 and s["samples/confidence"] > 0.99
    assert verdicts.shares()[3] == 1


def test_shipped_classifier_finds_the_test_digits_evenly_covered(classifier, digits):
    verdicts = ClassifierVerdicts(FeatureExtractor(classifier))
    verdicts.update(*digits)
    s = verdicts.summary("real")
    assert s["real/digit_evenness"] > 0.99 and s["real/rarest_digit_share"] > 0.07
    assert s["real/class_accuracy"] > 0.98 and s["real/confidence"] > 0.95


def test_samples_are_deterministic_and_cycle_through_the_digits():
    model = CVAE(4, 16, 16, num_classes=10)
    first = list(draw_samples(model, StandardNormal.of(model), 25, 10, seed=3))
    again = list(draw_samples(model, StandardNormal.of(model), 25, 10, seed=3))
    assert [len(x) for x, _ in first] == [10, 10, 5]
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again, strict=True))
    labels = torch.cat([y for _, y in first])
    assert labels.tolist() == [i % 10 for i in range(25)]
    assert all(x.min() >= 0 and x.max() <= 1 for x, _ in first)


def test_the_classifier_runs_once_per_batch_for_all_metrics(classifier, digits, monkeypatch):
    """FID, KID, the verdicts and the neighbour distances share each batch's features: 4 test
    batches, 8 batches of training images for the guard, 4 for the floor, 4 per density."""
    calls = []
    features = classifier.features
    monkeypatch.setattr(classifier, "features", lambda x: calls.append(len(x)) or features(x))
    x, y = digits
    train = (x[400:1200] * 255).round().byte()
    model = CVAE(4, 16, 16)
    prior = StandardNormal.of(model)
    metrics, _ = sample_quality(
        model, classifier, {"standard": prior, "also": prior},
        test=(x[:400], y[:400]), train=train, n=400, batch=100, seed=0, kid_subset=100,
    )  # fmt: skip
    assert calls == [100] * (4 + 8 + 4 + 4 + 4)
    assert metrics["real/fid_train_vs_test"] < metrics["samples/standard/fid"]
    # The same seed draws the same samples, whichever name they are reported under.
    assert metrics["samples/standard/fid"] == metrics["samples/also/fid"]


def test_precision_recall_and_the_memorisation_guard(classifier, digits):
    """Copies of training images: perfect precision, and a guard ratio far below real test
    images' (0 distance); noise: no precision, no recall."""
    from cvae_lightning.evaluation.samples import SetJudge

    x, y = digits
    judge = SetJudge(classifier, kid_subset=100, seed=0)
    train = x[1000:2000]
    judge.set_references(zip(x[:500].split(100), y[:500].split(100), strict=True), train.split(100))
    copies, _ = judge.judge(((b, None) for b in train[:500].split(100)), "copies")
    noise, _ = judge.judge(((torch.rand(100, 1, 28, 28), None) for _ in range(5)), "noise")
    fresh, _ = judge.judge(((b, None) for b in x[500:1000].split(100)), "fresh")
    assert copies["copies/train_nn_ratio"] < 0.01 < fresh["fresh/train_nn_ratio"]
    assert fresh["fresh/train_nn_ratio"] == pytest.approx(1, abs=0.15)
    assert copies["copies/precision"] > 0.8 and fresh["fresh/recall"] > 0.8
    assert noise["noise/precision"] == 0 and noise["noise/recall"] == 0
