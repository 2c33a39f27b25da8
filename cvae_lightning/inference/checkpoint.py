"""Finding and safely reading our checkpoints (weights_only: no pickled code runs) into the
plain `CVAE`, for tools that need no Lightning; and the device inference runs on."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from cvae_lightning.errors import CheckpointError, ConfigError
from cvae_lightning.inference.hub_layout import WEIGHTS, is_layout, read_model
from cvae_lightning.paths import shipped_fix
from cvae_lightning.vae.model import ARCHITECTURES, CVAE, model_kwargs

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
    """The CVAE of a checkpoint file (resolve_checkpoint's answer; weights_only load), in eval
    mode on `device`, and the checkpoint."""
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
