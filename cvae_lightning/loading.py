"""Finding and safely reading our checkpoints (weights_only: no pickled code runs), and the
plain `CVAE` and the data of a checkpoint, for tools that need no Lightning."""

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
from cvae_lightning.errors import CheckpointError, ConfigError
from cvae_lightning.hub_layout import WEIGHTS, is_layout, read_model
from cvae_lightning.model import ARCHITECTURES, CVAE, model_kwargs
from cvae_lightning.runs import PROJECT_ROOT, shipped_fix

log = logging.getLogger(__name__)

# Hyperparameters that shape the weights, with the config key that sets each.
ARCHITECTURE = {
    "architecture": "model.architecture",
    "likelihood": "model.likelihood",
    "latent": "model.latent",
    "image_size": "data.image_size",
    "channels": "data.channels",
    "conditional": "model.conditional",
    **{key: f"model.{key}" for keys in ARCHITECTURES.values() for key in keys},
}
# The CVAE's parts a checkpoint's state_dict holds under "model." (the rest is the trainer's).
PARTS = ("encoder", "decoder", "likelihood")
# Values assumed for checkpoints written before a hyperparameter existed.
DEFAULTS = {"conditional": False, "architecture": "reference", "likelihood": "fixed"}


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, a run dir (or its checkpoints/ folder), or a folder in the Hub
    layout (config.json + model.safetensors) -> the file to use."""
    path = Path(path).expanduser()
    if path.is_dir():
        if is_layout(path):
            return path / WEIGHTS
        for candidate in (path / "checkpoints" / "last.ckpt", path / "last.ckpt"):
            if candidate.is_file():
                return candidate
        fix = shipped_fix(path) or (
            "pass a .ckpt file, the run directory of a run that saved one, or a saved model"
        )
        raise CheckpointError(
            f"ckpt_path={path} is a folder without checkpoints/last.ckpt or model.safetensors "
            f"with its config.json: {fix}"
        )
    if not path.is_file():
        fix = shipped_fix(path) or "pass a .ckpt file or a run dir"
        raise CheckpointError(f"ckpt_path={path} does not exist: {fix}")
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load with weights_only=True (or a Hub-layout folder's model.safetensors with its
    config.json); anything unreadable becomes one clear error."""
    try:
        if Path(path).suffix == ".safetensors":
            ckpt = read_model(path)
        else:
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


def inference_device(name: str | torch.device = "auto") -> torch.device:
    """`device=`: auto is the GPU where there is one, else the CPU; or a torch device name."""
    if str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device={name!r} is invalid: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name} asks for a GPU and none is visible: use device=auto")
    return device


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[CVAE, dict]:
    """The CVAE of a training checkpoint (weights_only load), in eval mode on `device`, and the
    checkpoint."""
    path = resolve_checkpoint(path)
    ckpt = read_checkpoint(path)
    hp = ckpt["hyper_parameters"]
    num_classes = hp.get("num_classes", 10) if hp.get("conditional") else 0
    model = CVAE(**model_kwargs(hp), num_classes=num_classes)
    weights = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
    weights = {k: v for k, v in weights.items() if k.split(".")[0] in PARTS}
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
    return model.eval().to(device), ckpt


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


def training_images_used(ckpt: dict) -> int | None:
    """How many training images the checkpoint's run trained on (data.limit; None: all)."""
    return ckpt.get("datamodule_hyper_parameters", {}).get("limit")


def run_training_images(
    source: DataSource, ckpt: dict, at_most: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The training images the checkpoint's run trained on, at most `at_most` of them."""
    limits = [n for n in (training_images_used(ckpt), at_most) if n]
    return checkpoint_images(source, ckpt, train=True, n=min(limits) if limits else None)
