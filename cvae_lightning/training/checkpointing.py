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

from cvae_lightning.errors import Interrupted, NonFiniteLossError
from cvae_lightning.files import atomic_write
from cvae_lightning.training.epoch_sums import HostCopy

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


def agreed(trainer: L.Trainer, value: torch.Tensor) -> torch.Tensor:
    """The maximum of `value` over all processes, on the device (itself in one process): every
    rank gets the same answer, so every rank acts on it at the same step. A collective: all
    ranks call it at the same steps."""
    if trainer.world_size == 1:
        return value
    return trainer.strategy.reduce(value.clone(), reduce_op="max")


class LaggedAgreement:
    """A device value agreed across processes at one check and read at the next (landed long
    before), or at once when asked: every rank reads the same values at the same steps."""

    def __init__(self):
        self.copy = HostCopy()

    def check(self, trainer: L.Trainer, value: torch.Tensor, now: bool) -> list[float]:
        """The values agreed at the previous check (and at this one, if `now`)."""
        found = [self.copy.take(wait=True)]
        self.copy.start(agreed(trainer, value))
        if now:
            found.append(self.copy.take(wait=True))
        return [v for v in found if v is not None]


class StopOnNonFiniteLoss(L.Callback):
    """Stops training when the loss is NaN/inf, before a checkpoint of garbage can be written.

    The module notes the first non-finite step on the device (`EpochSums.first_bad`). Every
    `check_every_n_steps` steps that note is agreed across processes and copied to the host
    without waiting, and the copy queued at the previous check is read (long landed); at the
    last batch of each epoch (before validation) and before any checkpoint it is read at once.
    Every rank reads the same value at the same step, so all stop together.
    """

    def __init__(self, check_every_n_steps: int = 50):
        self.every = check_every_n_steps
        self.agreement = LaggedAgreement()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if batch_idx + 1 == trainer.num_training_batches:
            self._check(trainer, pl_module, wait=True)
        elif trainer.global_step % self.every == 0:
            self._check(trainer, pl_module, wait=False)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        # Checkpoints written between checks (every N steps, Ctrl-C) hold no NaN either.
        if trainer.state.fn == TrainerFn.FITTING:
            self._check(trainer, pl_module, wait=True)

    def _check(self, trainer: L.Trainer, pl_module: L.LightningModule, wait: bool) -> None:
        for first_bad in self.agreement.check(trainer, pl_module.train_sums.first_bad, wait):
            if first_bad >= 0:
                good = latest_checkpoint(trainer)
                raise NonFiniteLossError(
                    f"the training loss became non-finite at step {int(first_bad)} (epoch "
                    f"{trainer.current_epoch + 1}); last good checkpoint: {good or 'none yet'}. "
                    "Lower model.optimizer.lr or resume from that checkpoint with ckpt_path=..."
                )


class SaveOnInterrupt(L.Callback):
    """Ctrl-C (or SIGTERM, a cluster's preemption) during training: finish the step under way,
    save `dirpath`/last.ckpt there (a clean step boundary, so resuming with `ckpt_path=last`
    loses nothing), then stop.

    The signal only raises a flag; the step that is running completes, then the checkpoint is
    written and `Interrupted` raised (one line, exit 130). A second Ctrl-C stops at once.
    Under DDP the flag is agreed across processes every `check_every_n_steps` steps (and read
    at the next such step), so every rank saves, and stops, at the same step; this replaces
    Lightning's own SIGTERM broadcast, a collective and a host sync on every step. Other
    exceptions save nothing: a NaN or a failed write must not replace the last good checkpoint.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, dirpath: str, check_every_n_steps: int = 10):
        self.path = Path(dirpath) / "last.ckpt"
        self.every = check_every_n_steps
        self.saved: Path | None = None
        self.requested, self._previous = False, {}
        self.agreement = LaggedAgreement()

    def _request(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        log.info(f"{name}: stopping after this step (press Ctrl-C again to stop at once)")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._request) for s in self.SIGNALS}
        if trainer.world_size > 1:
            # Lightning 2.6 broadcasts rank 0's SIGTERM flag before every step (a collective
            # and a host sync); SIGTERM is ours now, agreed every N steps instead.
            trainer.fit_loop.epoch_loop._broadcast_sigterm_tensor = lambda: None

    def _agreed_request(self, trainer: L.Trainer, batch_idx: int) -> bool:
        if trainer.world_size == 1:
            return self.requested  # a host flag: free to read every step
        last = batch_idx + 1 == trainer.num_training_batches
        if trainer.global_step % self.every and not last:
            return False
        flag = torch.full((), float(self.requested), device=trainer.strategy.root_device)
        return any(self.agreement.check(trainer, flag, now=last))

    def _save_and_stop(self, trainer: L.Trainer) -> None:
        self.requested = True  # on the ranks that did not see the signal too
        trainer.save_checkpoint(self.path)
        self.saved = self.path
        # A user error, not KeyboardInterrupt: a ddp_spawn worker passes it on to the parent
        # (torch's spawn swallows KeyboardInterrupt in workers), and it prints as one line.
        where = f"epoch {trainer.current_epoch + 1}, step {trainer.global_step}"
        raise Interrupted(
            f"training interrupted at {where}; saved {self.path}. Resume with `uv run "
            f"train.py ckpt_path=last` (the newest run) or ckpt_path={self.path.parent.parent}"
        )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self.saved is None and self._agreed_request(trainer, batch_idx):
            self._save_and_stop(trainer)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *_) -> None:
        # One process stops mid-validation too (resuming finishes it); DDP ranks at the next
        # agreed training step.
        fitting = trainer.state.fn == TrainerFn.FITTING
        if fitting and trainer.world_size == 1 and self.requested and self.saved is None:
            self._save_and_stop(trainer)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for s, previous in self._previous.items():
            signal.signal(s, previous)
        self._previous = {}
