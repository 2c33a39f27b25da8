"""Finding and safely reading our checkpoints (weights_only: no pickled code runs), and the
plain `CVAE` and the data of a checkpoint, for tools that need no Lightning."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cvae_lightning.datasets import load_resized
from cvae_lightning.errors import CheckpointError
from cvae_lightning.model import CVAE
from cvae_lightning.runs import shipped_fix

# Hyperparameters that shape the weights, with the config key that sets each.
ARCHITECTURE = {
    "latent": "model.latent",
    "max_filters": "model.max_filters",
    "image_size": "data.image_size",
    "channels": "data.channels",
    "conditional": "model.conditional",
}
# Values assumed for checkpoints written before a hyperparameter existed.
DEFAULTS = {"conditional": False}


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run dir (or its checkpoints/ folder) -> the file to use."""
    path = Path(path).expanduser()
    if path.is_dir():
        for candidate in (path / "checkpoints" / "last.ckpt", path / "last.ckpt"):
            if candidate.is_file():
                return candidate
        raise CheckpointError(
            f"ckpt_path={path} is a folder without checkpoints/last.ckpt: "
            "pass a .ckpt file or the run directory of a run that saved one"
        )
    if not path.is_file():
        fix = shipped_fix(path) or "pass a .ckpt file or a run dir"
        raise CheckpointError(f"ckpt_path={path} does not exist: {fix}")
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load with weights_only=True; anything unreadable becomes one clear error."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        fix = shipped_fix(path) or "use another one"
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({type(e).__name__}): "
            f"it is truncated, corrupt or not a cvae-lightning checkpoint; {fix}"
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise CheckpointError(f"checkpoint {path} is not a cvae-lightning checkpoint")
    return ckpt


def check_architecture_matches(ckpt: dict[str, Any], path: str | Path, expected: dict) -> None:
    """Refuse a checkpoint whose architecture differs from the configured one, listing how."""
    saved = ckpt["hyper_parameters"]
    diff = [
        f"{key}: checkpoint {saved.get(k, DEFAULTS.get(k))!r}, config {expected[k]!r}"
        for k, key in ARCHITECTURE.items()
        if k in expected and saved.get(k, DEFAULTS.get(k)) != expected[k]
    ]
    if diff:
        raise CheckpointError(
            f"checkpoint {path} was trained with another architecture ({'; '.join(diff)}): "
            "set those values to the checkpoint's, or pick a matching checkpoint"
        )


def load_model(path: str | Path) -> tuple[CVAE, dict]:
    """The CVAE of a training checkpoint (weights_only load), in eval mode, and the checkpoint."""
    path = resolve_checkpoint(path)
    ckpt = read_checkpoint(path)
    hp = ckpt["hyper_parameters"]
    num_classes = hp.get("num_classes", 10) if hp.get("conditional") else 0
    architecture = {
        k: hp[k] for k in ("latent", "max_filters", "image_size", "channels") if k in hp
    }
    model = CVAE(**architecture, num_classes=num_classes)
    weights = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
    weights = {k: v for k, v in weights.items() if k.split(".")[0] in ("encoder", "decoder")}
    try:
        result = model.load_state_dict(weights, strict=False)
        problems = [f"missing {k}" for k in result.missing_keys]
        problems += [f"unexpected {k}" for k in result.unexpected_keys]
    except RuntimeError as e:  # a tensor of the wrong shape
        problems = [str(e).splitlines()[-1].strip()]
    if problems:
        more = f" and {len(problems) - 2} more" if len(problems) > 2 else ""
        raise CheckpointError(
            f"checkpoint {path} does not fit its own hyperparameters ({'; '.join(problems[:2])}"
            f"{more}): it was written by another version of cvae-lightning; retrain it"
        )
    return model.eval(), ckpt


@dataclass(frozen=True)
class DataSource:
    """Where a tool reads images: the data root, a dataset name (None: the checkpoint's own)
    and the resized-data cache."""

    root: str | Path
    name: str | None = None
    cache_dir: str | Path | None = None

    @classmethod
    def of(cls, data: Mapping) -> DataSource:
        """From a config's data group (root, name, cache_dir)."""
        return cls(data["root"], data.get("name"), data.get("cache_dir"))


def checkpoint_dataset(source: DataSource, ckpt: dict) -> str:
    """source.name if set, else the dataset the checkpoint was trained on."""
    return source.name or ckpt.get("datamodule_hyper_parameters", {}).get("name", "mnist")


def checkpoint_images(
    source: DataSource, ckpt: dict, train: bool, n: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n images (all if None) of a split of the checkpoint's dataset, at its image
    size, as uint8 (N, C, S, S), with their labels."""
    name, size = checkpoint_dataset(source, ckpt), ckpt["hyper_parameters"]["image_size"]
    images, labels = load_resized(source.root, name, train, size, source.cache_dir)
    return images[:n], labels[:n]


def training_images_used(ckpt: dict) -> int | None:
    """How many training images the checkpoint's run trained on (data.limit; None: all)."""
    return ckpt.get("datamodule_hyper_parameters", {}).get("limit")


def run_training_images(
    source: DataSource, ckpt: dict, at_most: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training images the checkpoint's run trained on, at most `at_most` of them."""
    limits = [n for n in (training_images_used(ckpt), at_most) if n]
    return checkpoint_images(source, ckpt, train=True, n=min(limits) if limits else None)
