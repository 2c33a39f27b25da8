"""Finding and safely reading our checkpoints (weights_only: no pickled code runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

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


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used here; the message names the file and the fix."""


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
        raise CheckpointError(f"ckpt_path={path} does not exist: pass a .ckpt file or a run dir")
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load with weights_only=True; anything unreadable becomes one clear error."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({type(e).__name__}): "
            "it is truncated, corrupt or not a cvae-lightning checkpoint; use another one"
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
