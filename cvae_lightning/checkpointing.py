"""Saving checkpoints safely during training: writes that a crash never leaves half done (a
Lightning CheckpointIO plugin), last.ckpt after every epoch, a checkpoint on Ctrl-C, and a stop
before a NaN loss can reach a checkpoint."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.trainer.states import TrainerFn

from cvae_lightning.errors import NonFiniteLossError
from cvae_lightning.files import atomic_write

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Like TorchCheckpointIO, but `last.ckpt` is replaced in one rename, never truncated."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        atomic_write(path, lambda f: torch.save(checkpoint, f))


class LastCheckpoint(ModelCheckpoint):
    """checkpoints/last.ckpt, for resuming: the latest state after every epoch (or every
    `every_n_train_steps` steps) and at the end of training.

    Lightning's own save_last only refreshes last.ckpt when the best checkpoint changes.
    """

    def __init__(self, dirpath: str, every_n_train_steps: int | None = None):
        super().__init__(
            dirpath=dirpath,
            filename="last",
            monitor=None,
            save_top_k=1,
            enable_version_counter=False,
            every_n_train_steps=every_n_train_steps,
        )

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Saving every N steps can leave the final steps unsaved: save them now.
        if trainer.global_step != self._last_global_step_saved and not trainer.fast_dev_run:
            trainer.save_checkpoint(Path(self.dirpath) / "last.ckpt")


def latest_checkpoint(trainer: L.Trainer) -> str:
    """The newest checkpoint file the run has written ('' if none)."""
    paths = [Path(cb.best_model_path) for cb in trainer.checkpoint_callbacks if cb.best_model_path]
    paths = [p for p in paths if p.is_file()]
    return str(max(paths, key=lambda p: p.stat().st_mtime_ns)) if paths else ""


class StopOnNonFiniteLoss(L.Callback):
    """Stops training when the loss is NaN/inf, before a checkpoint of garbage can be written.

    The test runs on the device each step and is read every `check_every_n_steps` and at the
    last batch of each epoch (before validation and checkpointing), so it costs no host sync.
    """

    def __init__(self, check_every_n_steps: int = 50):
        self.every = check_every_n_steps
        self.first_bad: torch.Tensor | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        loss = outputs["loss"]
        step = trainer.global_step  # optimizer steps taken, this one included
        if self.first_bad is None or self.first_bad.device != loss.device:
            self.first_bad = torch.full((), -1, dtype=torch.long, device=loss.device)
        bad = ~torch.isfinite(loss.detach()) & (self.first_bad < 0)
        self.first_bad = torch.where(bad, step, self.first_bad)
        if step % self.every == 0 or batch_idx + 1 == trainer.num_training_batches:
            first_bad = int(self.first_bad)
            if first_bad >= 0:
                good = latest_checkpoint(trainer)
                raise NonFiniteLossError(
                    f"the training loss became non-finite at step {first_bad} (epoch "
                    f"{trainer.current_epoch + 1}); last good checkpoint: {good or 'none yet'}. "
                    "Lower model.optimizer.lr or resume from that checkpoint with ckpt_path=..."
                )


class SaveOnInterrupt(L.Callback):
    """Ctrl-C during training: finish the step under way, save `dirpath`/last.ckpt there (a
    clean step boundary, so resuming with `ckpt_path=last` loses nothing), then stop.

    SIGINT only raises a flag while training runs; the step that is running completes, then
    the checkpoint is written and KeyboardInterrupt raised. A second Ctrl-C stops at once.
    Other exceptions save nothing: a NaN or a failed write must not replace the last good
    checkpoint.
    """

    def __init__(self, dirpath: str):
        self.path = Path(dirpath) / "last.ckpt"
        self.saved: Path | None = None
        self.requested, self._previous = False, None

    def _request(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        log.info("Ctrl-C: stopping after this step (press it again to stop at once)")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if threading.current_thread() is threading.main_thread():  # ddp_spawn workers are not
            self._previous = signal.signal(signal.SIGINT, self._request)

    def _stop_if_requested(self, trainer: L.Trainer) -> None:
        if self.requested and self.saved is None:
            trainer.save_checkpoint(self.path)
            self.saved = self.path
            raise KeyboardInterrupt

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self._stop_if_requested(trainer)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *_) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            self._stop_if_requested(trainer)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
