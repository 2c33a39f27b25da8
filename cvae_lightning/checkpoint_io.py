"""Checkpoint writing that survives a crash mid-save (a Lightning CheckpointIO plugin)."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from cvae_lightning.files import atomic_write


class AtomicCheckpointIO(TorchCheckpointIO):
    """Like TorchCheckpointIO, but `last.ckpt` is replaced in one rename, never truncated."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        atomic_write(path, lambda f: torch.save(checkpoint, f))
