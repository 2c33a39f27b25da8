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

from cvae_lightning.classifier import SIZE, DigitClassifier, save_classifier
from cvae_lightning.datasets import load_resized
from cvae_lightning.errors import AccuracyTooLowError
from cvae_lightning.validation import check_classifier_config

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
def test_accuracy(model: DigitClassifier, x: torch.Tensor, y: torch.Tensor, batch: int) -> float:
    model.eval()
    accuracy = MulticlassAccuracy(num_classes=10, average="micro")
    for xb, yb in zip(x.split(batch), y.split(batch), strict=True):
        accuracy.update(model(xb.float().div(255)), yb)
    return float(accuracy.compute())


def fit_classifier(cfg: DictConfig) -> dict[str, float]:
    """Train on the training split, measure on the test split, save if accurate enough."""
    check_classifier_config(cfg)
    torch.manual_seed(cfg.seed)
    d = cfg.data
    train_x, train_y = load_resized(d.root, d.name, True, SIZE, d.cache_dir)
    test_x, test_y = load_resized(d.root, d.name, False, SIZE, d.cache_dir)
    if cfg.limit:
        train_x, train_y = train_x[: cfg.limit], train_y[: cfg.limit]
    model = DigitClassifier(cfg.features).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * (len(train_x) // cfg.batch_size)
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
    out = Path(cfg.out)
    if accuracy < cfg.min_accuracy:
        raise AccuracyTooLowError(
            f"test accuracy {accuracy:.4f} is below min_accuracy={cfg.min_accuracy}: "
            f"{out} was left as it was; train longer (epochs=...) or lower min_accuracy"
        )
    save_classifier(
        model.to(memory_format=torch.contiguous_format), out, dataset=d.name,
        test_accuracy=accuracy, epochs=cfg.epochs, seed=cfg.seed,
    )  # fmt: skip
    log.info(f"wrote {out} (test accuracy {accuracy:.4f})")
    return {"test_accuracy": accuracy}
