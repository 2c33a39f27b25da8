"""The data a run trained on, read from its checkpoint (with any key the user overrides): its
source, splits and images, its classes, and a class asked for by name or index."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cvae_lightning.data import load_split, source_from
from cvae_lightning.data.cache import Split
from cvae_lightning.data.source import Source
from cvae_lightning.errors import ConfigError
from cvae_lightning.paths import PROJECT_ROOT

log = logging.getLogger(__name__)


# The data keys a tool may override on its command line; null = the run's own.
DATA_KEYS = ("name", "root", "path", "cache_dir", "verify", "val_fraction")
BUILT_IN = ("mnist", "fashion_mnist", "kmnist")


@dataclass(frozen=True)
class DataSource:
    """Where a tool reads a run's images: the data settings the checkpoint was trained with,
    with any key the user set (not None) in its place."""

    overrides: Mapping = field(default_factory=dict)

    @classmethod
    def of(cls, data: Mapping) -> DataSource:
        """From a config's data group (its DATA_KEYS; null ones mean the run's own)."""
        return cls({k: data[k] for k in DATA_KEYS if data.get(k) is not None})

    def settings(self, ckpt: dict) -> dict[str, Any]:
        """The run's data settings (from its checkpoint), overridden where the user said so."""
        saved = ckpt.get("datamodule_hyper_parameters", {})
        s = {"name": "mnist", "root": None, "path": None, "cache_dir": None, "verify": True}
        s |= {"val_fraction": 0.1} | {k: saved[k] for k in DATA_KEYS if k in saved}
        s |= dict(self.overrides)
        project_data = PROJECT_ROOT / "data"
        if s["name"] in BUILT_IN and not (s["root"] and Path(s["root"]).is_dir()):
            # A model trained on another machine (the shipped one): the project's own copy.
            if s["root"] is not None and "root" not in self.overrides:
                log.info(
                    f"data.root {s['root']} of the checkpoint is not here; using {project_data}"
                )
            if "cache_dir" not in self.overrides:
                s["cache_dir"] = project_data / "cache"
            s["root"] = project_data
        return s


def checkpoint_source(source: DataSource, ckpt: dict) -> Source:
    """The data source the checkpoint's run read (checked to exist)."""
    return source_from(source.settings(ckpt))


def checkpoint_split(source: DataSource, ckpt: dict, train: bool) -> Split:
    """A split of the checkpoint's data, at its image size and channels (uint8, cached)."""
    s, hp = source.settings(ckpt), ckpt["hyper_parameters"]
    return load_split(
        source_from(s), train, hp["image_size"], hp.get("channels", 1), s["cache_dir"]
    )


def checkpoint_images(
    source: DataSource, ckpt: dict, train: bool, n: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n images (all if None) of a split of the checkpoint's dataset, at its image
    size, as uint8 (N, C, S, S), with their labels."""
    split = checkpoint_split(source, ckpt, train)
    return split.images[:n], split.labels[:n]


def class_names(ckpt: dict) -> list[str]:
    """The names of the classes the checkpoint's run trained on ([] when unlabelled)."""
    hp = ckpt["hyper_parameters"]
    if "classes" in hp:
        return list(hp["classes"])
    return [str(i) for i in range(hp.get("num_classes", 10))]  # before names were kept


def class_index(label, num_classes: int, classes: list[str]) -> int | None:
    """A class asked for by name or index (an int or its digits) -> the index a conditional
    model draws with; None stays None."""
    if label is None:
        return None
    if not num_classes:
        raise ConfigError(f"label={label} needs a conditional checkpoint: use label=null")
    if str(label) in classes:
        return classes.index(str(label))
    if str(label).isdigit() and int(label) < num_classes:
        return int(label)
    shown = ", ".join(classes[:12]) + (", ..." if len(classes) > 12 else "")
    raise ConfigError(
        f"label={label} is invalid for this checkpoint: use a class name ({shown}) or an index "
        f"0..{num_classes - 1}"
    )


def class_labels(
    label, n: int, num_classes: int, classes: list[str], device
) -> torch.Tensor | None:
    """`label` for n images of a model with `num_classes` (0: unconditional): a class name or
    index, or one per image (a list or tensor) -> class indices on `device`."""
    if not num_classes:
        if label is not None:
            raise ConfigError("label=... needs a conditional model; this one is not")
        return None
    if label is None:
        raise ConfigError(f"this model is conditional: pass label= (one of {classes})")
    if isinstance(label, torch.Tensor) and label.dim() == 1:
        return label.long().to(device)
    if isinstance(label, list | tuple):
        return torch.tensor([class_index(x, num_classes, classes) for x in label], device=device)
    return torch.full((n,), class_index(label, num_classes, classes), device=device)


def training_images_used(ckpt: dict) -> int | None:
    """How many training images the checkpoint's run trained on (data.limit; None: all)."""
    return ckpt.get("datamodule_hyper_parameters", {}).get("limit")


def run_training_images(
    source: DataSource, ckpt: dict, at_most: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training images the checkpoint's run trained on, at most `at_most` of them."""
    limits = [n for n in (training_images_used(ckpt), at_most) if n]
    return checkpoint_images(source, ckpt, train=True, n=min(limits) if limits else None)
