"""train_classifier.py's logic: fit the evaluation classifier and write its small weights file."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from cvae_lightning.data import load_split, source_from
from cvae_lightning.errors import AccuracyTooLowError, ConfigError, require
from cvae_lightning.evaluation.classifier import (
    SIZE,
    ImageClassifier,
    classifier_path,
    save_classifier,
)
from cvae_lightning.inference.run_data import BUILT_IN

log = logging.getLogger(__name__)


def jitter(x: torch.Tensor, degrees: float = 10.0, shift: float = 2.0) -> torch.Tensor:
    """A random rotation (+-degrees) and shift (+-shift pixels) per image: cheap augmentation."""
    n = len(x)
    angle = (torch.rand(n) * 2 - 1) * math.radians(degrees)
    offset = (torch.rand(n, 2) * 2 - 1) * (2 * shift / x.shape[-1])  # grid units span 2
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack(
        [torch.stack([cos, -sin, offset[:, 0]], 1), torch.stack([sin, cos, offset[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False)


@torch.no_grad()
def test_accuracy(model: ImageClassifier, x: torch.Tensor, y: torch.Tensor, batch: int) -> float:
    model.eval()
    accuracy = MulticlassAccuracy(num_classes=model.head[-1].out_features, average="micro")
    for xb, yb in zip(x.split(batch), y.split(batch), strict=True):
        accuracy.update(model(xb.float().div(255)), yb)
    return float(accuracy.compute())


def channel_stats(x: torch.Tensor, at_most: int = 10_000) -> tuple[list[float], list[float]]:
    """Per-channel mean and spread of uint8 images (N, C, S, S), scaled to [0, 1]."""
    x = x[:at_most].float().div(255)
    return x.mean((0, 2, 3)).tolist(), x.std((0, 2, 3)).clamp_min(1e-3).tolist()


def check_classifier_settings(cfg) -> None:
    """train_classifier.py's own keys."""
    for key in ("epochs", "batch_size"):
        require(cfg[key] >= 1, key, cfg[key], "it must be >= 1")
    require(cfg.lr > 0, "lr", cfg.lr, "it must be > 0")


def fit_classifier(cfg: DictConfig) -> dict[str, float]:
    """Train on the training split, measure on the test split, save if accurate enough."""
    check_classifier_settings(cfg)
    torch.manual_seed(cfg.seed)
    d = cfg.data
    source = source_from(d)
    if not source.classes:
        raise ConfigError(
            f"{source.described} is unlabelled: a classifier needs classes; put the images in "
            "class subfolders (DIR/<class>/...)"
        )
    size = cfg.size or (SIZE if d.name in BUILT_IN else d.image_size)
    train = load_split(source, True, size, d.channels, d.cache_dir)
    test = load_split(source, False, size, d.channels, d.cache_dir)
    train_x, train_y, test_x, test_y = train.images, train.labels, test.images, test.labels
    if cfg.limit:
        train_x, train_y = train_x[: cfg.limit], train_y[: cfg.limit]
    mean, std = channel_stats(train_x)
    model = ImageClassifier(cfg.features, len(source.classes), train.channels, size, mean, std)
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * (len(train_x) // cfg.batch_size)
    if steps < 1:
        raise ConfigError(
            f"batch_size={cfg.batch_size} is invalid: it is larger than the {len(train_x)} "
            "training images"
        )
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    mean_loss = MeanMetric()
    for epoch in range(1, cfg.epochs + 1):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_x))
        for i in range(len(train_x) // cfg.batch_size):
            idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            x = jitter(train_x[idx].float().div(255)).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(x), train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            mean_loss.update(loss.detach())
        accuracy = test_accuracy(model, test_x, test_y, 1000)
        log.info(
            f"Epoch {epoch}, Train Loss: {float(mean_loss.compute()):.4f}, "
            f"Test Accuracy: {accuracy:.4f}, Time: {time.perf_counter() - start:.1f}s"
        )
        mean_loss.reset()
    out = Path(cfg.out) if cfg.out else classifier_path(source.key)
    if accuracy < cfg.min_accuracy:
        raise AccuracyTooLowError(
            f"test accuracy {accuracy:.4f} is below min_accuracy={cfg.min_accuracy}: "
            f"{out} was left as it was; train longer (epochs=...) or lower min_accuracy"
        )
    save_classifier(
        model.to(memory_format=torch.contiguous_format), out, dataset=d.name,
        source=source.key, classes=list(source.classes), test_accuracy=accuracy,
        epochs=cfg.epochs, seed=cfg.seed,
    )  # fmt: skip
    log.info(f"wrote {out} (test accuracy {accuracy:.4f})")
    return {"test_accuracy": accuracy}
