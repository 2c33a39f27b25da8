"""The project's own image classifier (plain PyTorch): the feature extractor behind FID/KID.

Inception features (what FID usually uses) know nothing of handwritten digits; a small network
trained on the dataset itself does. One is trained per labelled dataset (`train_classifier.py
data=...`), sized to its channels; it reads images of any size in [0, 1] and scales them to its
own size first, so models trained at any `data.image_size` are measured the same way. The
shipped MNIST one reads 28x28 grey digits.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cvae_lightning.errors import ClassifierError
from cvae_lightning.files import atomic_write
from cvae_lightning.paths import PROJECT_ROOT

FORMAT = "cvae-lightning-classifier/1"
SIZE = 28  # MNIST's native resolution: what the shipped network was trained on
MEAN, STD = 0.1307, 0.3081  # MNIST training-set pixel statistics (files without their own)


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()
    )


class ImageClassifier(nn.Module):
    """Five 3x3 conv blocks, global average pooling to `features` values, a linear head.
    Images are scaled to `size` and standardised by the training set's per-channel
    `mean`/`std` first."""

    def __init__(
        self, features: int = 128, num_classes: int = 10, channels: int = 1, size: int = SIZE,
        mean: tuple[float, ...] = (MEAN,), std: tuple[float, ...] = (STD,),
    ):  # fmt: skip
        super().__init__()
        self.num_features = features  # torchmetrics' FID/KID read this instead of probing
        self.channels, self.size = channels, size
        # Saved as plain values beside the weights (see SHAPE), not in the state dict.
        stats = {"mean": mean, "std": std}
        for name, value in stats.items():
            value = torch.tensor(value, dtype=torch.float32).view(1, -1, 1, 1)
            self.register_buffer(name, value, persistent=False)
        self.body = nn.Sequential(
            conv_block(channels, 32), conv_block(32, 32), nn.MaxPool2d(2),  # 28 -> 14
            conv_block(32, 64), conv_block(64, 64), nn.MaxPool2d(2),  # 14 -> 7
            conv_block(64, features), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(features, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) in [0, 1] -> (N, features): the penultimate activations."""
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True)
        return self.body((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class FeatureExtractor(nn.Module):
    """A frozen classifier as torchmetrics' `feature` module: images in, penultimate features out.

    Built fresh at evaluation time, so it is never part of a training checkpoint. FID, KID and
    the classifier's verdicts all see each batch; the features of the latest batch are kept,
    so the network runs once per batch, not once per metric.
    """

    def __init__(self, classifier: ImageClassifier):
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)
        self.num_features = classifier.num_features
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None  # (images, their features)

    def train(self, mode: bool = True) -> FeatureExtractor:
        return super().train(False)  # metrics call .train(); BatchNorm must stay in eval mode

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._last is None or self._last[0] is not x:
            self._last = (x, self.classifier.features(x.float()))
        return self._last[1]

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier.head(self(x))


def classifier_path(source_key: str) -> Path:
    """Where a dataset's classifier lives unless eval.classifier / out says otherwise."""
    return PROJECT_ROOT / "weights" / f"{source_key}_classifier.pt"


# What shapes the network, as saved beside its weights.
SHAPE = ("features", "num_classes", "channels", "size", "mean", "std")


def save_classifier(model: ImageClassifier, path: str | Path, **info) -> None:
    """Weights plus what they are (format, shape, dataset, classes, test accuracy...) in one
    small file."""
    shape = {
        "features": model.num_features, "num_classes": model.head[-1].out_features,
        "channels": model.channels, "size": model.size,
        "mean": model.mean.flatten().tolist(), "std": model.std.flatten().tolist(),
    }  # fmt: skip
    blob = {"format": FORMAT, **shape, "state_dict": model.state_dict()}
    atomic_write(Path(path), lambda f: torch.save({**blob, **info}, f))


def load_classifier(path: str | Path) -> tuple[ImageClassifier, dict]:
    """The classifier of a weights file (weights_only load), in eval mode, and its info."""
    path = Path(path)
    fix = (
        "restore it with `git checkout -- weights/` or rebuild it with `uv run train_classifier.py`"
    )
    if not path.is_file():
        raise ClassifierError(f"classifier weights {path} do not exist: {fix}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        assert isinstance(blob, dict) and blob.get("format") == FORMAT, "unknown format"
        model = ImageClassifier(**{k: blob[k] for k in SHAPE if k in blob})
        model.load_state_dict(blob["state_dict"])
    except Exception as e:  # any unusable file is the same problem for the user
        raise ClassifierError(
            f"classifier weights {path} are corrupt or not a cvae-lightning classifier "
            f"({type(e).__name__}): {fix}"
        ) from None
    info = {k: v for k, v in blob.items() if k != "state_dict"}
    return model.eval(), info
