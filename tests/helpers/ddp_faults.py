"""Faults on one DDP rank only, and what each rank did about them (a file per rank: spawned
workers report nothing else back)."""

from __future__ import annotations

import signal
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import torch

from cvae_lightning.errors import NonFiniteLossError
from cvae_lightning.training.checkpointing import SaveOnInterrupt, StopOnNonFiniteLoss


def note(out: str, trainer: L.Trainer, what: str) -> None:
    with open(Path(out) / f"rank{trainer.global_rank}.txt", "a") as f:
        f.write(f"{what} {trainer.global_step}\n")


class NanOnOneRank(L.Callback):
    """Rank `rank` notes a non-finite loss at step `step`; the other ranks' losses stay finite."""

    def __init__(self, rank: int, step: int):
        self.rank, self.step = rank, step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.global_rank == self.rank and trainer.global_step == self.step:
            nan = torch.full((), float("nan"), device=pl_module.device)
            pl_module.train_sums.add({"loss": nan, "recon": nan, "kl": nan}, 0, self.step)


class NotingGuard(StopOnNonFiniteLoss):
    def __init__(self, out: str, check_every_n_steps: int):
        super().__init__(check_every_n_steps)
        self.out = out

    def _check(self, trainer, pl_module, wait: bool) -> None:
        try:
            super()._check(trainer, pl_module, wait)
        except NonFiniteLossError:
            note(self.out, trainer, "stopped")
            raise


class InterruptOnOneRank(SaveOnInterrupt):
    """Ctrl-C reaches rank `rank` only, at step `step`; every save is noted."""

    def __init__(self, dirpath: str, out: str, rank: int, step: int, check_every_n_steps: int):
        super().__init__(dirpath, check_every_n_steps)
        self.out, self.rank, self.step = out, rank, step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_rank == self.rank and trainer.global_step == self.step:
            self.requested = True

    def _save_and_stop(self, trainer) -> None:
        note(self.out, trainer, "saving")
        super()._save_and_stop(trainer)


@contextmanager
def deadline(seconds: int):
    """Fail (TimeoutError) instead of hanging when the block runs past `seconds`."""

    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: a rank is waiting for the others")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
