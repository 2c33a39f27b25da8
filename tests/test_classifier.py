"""The evaluation classifier: the shipped weights, the safe loader and the training script."""

import pytest
import torch
from hydra import compose, initialize_config_dir

from cvae_lightning.errors import AccuracyTooLowError
from cvae_lightning.evaluation.classifier import (
    ClassifierError,
    FeatureExtractor,
    ImageClassifier,
    load_classifier,
    save_classifier,
)
from cvae_lightning.evaluation.train_classifier import fit_classifier, jitter
from cvae_lightning.paths import PROJECT_ROOT

from conftest import read_images

SHIPPED = PROJECT_ROOT / "weights" / "mnist_classifier.pt"


def test_shipped_classifier_is_small_and_at_least_99_percent_accurate(cache_dir):
    model, info = load_classifier(SHIPPED)
    assert SHIPPED.stat().st_size < 1_000_000
    x, y = read_images(PROJECT_ROOT / "data", "mnist", False, 28, cache_dir)
    with torch.no_grad():
        predicted = torch.cat([model(b.float().div(255)).argmax(-1) for b in x.split(2000)])
    accuracy = (predicted == y).float().mean().item()
    assert accuracy >= 0.99
    assert accuracy == pytest.approx(info["test_accuracy"], abs=1e-4)


def test_classifier_reads_any_image_size(cache_dir):
    """Models at 64px are judged by the same 28px network: upscaled digits stay recognisable."""
    model, _ = load_classifier(SHIPPED)
    x, y = read_images(PROJECT_ROOT / "data", "mnist", False, 64, cache_dir)
    with torch.no_grad():
        predicted = model(x[:1000].float().div(255)).argmax(-1)
    assert (predicted == y[:1000]).float().mean() >= 0.98


@pytest.mark.parametrize(
    "content", [b"", b"not a torch file", "truncated", {"format": "other"}, "state_dict"]
)
def test_loader_refuses_a_corrupt_file_in_one_clear_line(tmp_path, content):
    path = tmp_path / "clf.pt"
    if content == "truncated":
        path.write_bytes(SHIPPED.read_bytes()[:5000])
    elif content == "state_dict":  # right format key, wrong weights
        torch.save({"format": load_classifier(SHIPPED)[1]["format"], "features": 64,
                    "state_dict": ImageClassifier(128).state_dict()}, path)  # fmt: skip
    elif isinstance(content, dict):
        torch.save(content, path)
    else:
        path.write_bytes(content)
    with pytest.raises(ClassifierError, match=r"corrupt or not a cvae-lightning classifier") as e:
        load_classifier(path)
    assert str(path) in str(e.value) and "train_classifier.py" in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_weights_name_the_fix(tmp_path):
    with pytest.raises(ClassifierError, match="do not exist.*git checkout"):
        load_classifier(tmp_path / "none.pt")


def test_feature_extractor_stays_frozen_in_eval_mode():
    extractor = FeatureExtractor(ImageClassifier(32))
    extractor.train()
    assert not extractor.classifier.training
    assert not any(p.requires_grad for p in extractor.parameters())
    assert extractor(torch.rand(3, 1, 16, 16)).shape == (3, 32)


def test_jitter_without_rotation_or_shift_keeps_the_image():
    x = torch.rand(4, 1, 28, 28)
    assert torch.allclose(jitter(x, degrees=0, shift=0), x, atol=1e-5)
    assert not torch.allclose(jitter(x), x)


def classifier_cfg(tmp_path, cache_dir, *overrides):
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return compose(
            "classifier",
            overrides=[f"data.cache_dir={cache_dir}", f"out={tmp_path / 'clf.pt'}",
                       "limit=2048", "epochs=2", *overrides],
        )  # fmt: skip


def test_training_script_writes_loadable_weights(tmp_path, cache_dir):
    cfg = classifier_cfg(tmp_path, cache_dir, "min_accuracy=0.2")  # chance: 0.1
    result = fit_classifier(cfg)
    model, info = load_classifier(tmp_path / "clf.pt")
    assert info["test_accuracy"] == result["test_accuracy"] > 0.2
    assert info["dataset"] == "mnist" and model.num_features == 128


def test_too_low_accuracy_leaves_the_old_weights(tmp_path, cache_dir):
    old = ImageClassifier()
    save_classifier(old, tmp_path / "clf.pt", test_accuracy=0.999)
    before = (tmp_path / "clf.pt").read_bytes()
    cfg = classifier_cfg(tmp_path, cache_dir, "epochs=1", "limit=256", "min_accuracy=0.999")
    with pytest.raises(AccuracyTooLowError, match="min_accuracy=0.999"):
        fit_classifier(cfg)
    assert (tmp_path / "clf.pt").read_bytes() == before


def test_bad_training_values_are_refused_before_any_work(tmp_path, cache_dir):
    from cvae_lightning.errors import ConfigError

    with pytest.raises(ConfigError, match="epochs=0 is invalid: it must be >= 1"):
        fit_classifier(classifier_cfg(tmp_path, cache_dir, "epochs=0"))
    assert not (tmp_path / "clf.pt").exists()
