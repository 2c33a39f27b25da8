"""Callbacks: the reference's console lines, and image grids in TensorBoard and as PNG files."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from torchvision.utils import make_grid, save_image

from cvae_lightning.model import count_parameters

# Hydra routes this logger to the console and to the run's train.log.
log = logging.getLogger(__name__)


def seconds_since_process_start() -> float | None:
    """Wall time since this process started (Linux /proc), or None where that is unknown."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class ReferenceConsoleLog(L.Callback):
    """Prints what the reference prints: parameters, then every `every_n_steps` and at each
    epoch end the loss and images/s, and per epoch the mean train loss and the epoch time.

    Losses are per image. Reading the loss is the only host sync, once per `every_n_steps`.
    """

    def __init__(self, every_n_steps: int = 250):
        self.every_n_steps = every_n_steps

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # A worker started by ddp_spawn has no logging set up (Hydra configured the parent).
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="[%(asctime)s][rank 0] %(message)s")

    @rank_zero_only
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        n = count_parameters(pl_module)
        log.info(f"Total Trainable Parameters: {n / 1e6:.4f} M ({n:,})")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A run resumed mid-epoch skips on_train_epoch_start: start the clock here too.
        self.on_train_epoch_start(trainer, pl_module)
        started = seconds_since_process_start()
        if started is not None and trainer.is_global_zero:
            log.info(f"First training step {started:.2f}s after the process started")

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.images, self.train_time, self.start = 0, None, time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        n = batch[0].shape[0]
        self.images += n * trainer.world_size
        step = batch_idx + 1
        last = step == trainer.num_training_batches
        if step % self.every_n_steps and not last:
            return
        loss = outputs["loss"].item() / n  # syncs, which also makes the clock below honest
        elapsed = time.perf_counter() - self.start
        if last:
            self.train_time = elapsed
        if trainer.is_global_zero:
            log.info(
                f"Epoch {trainer.current_epoch + 1}, Iter {step}, Loss: {loss:.4f}, "
                f"Throughput: {self.images / elapsed:.1f} im/s",
            )

    @rank_zero_only
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        elapsed = self.train_time or time.perf_counter() - self.start
        metrics = trainer.callback_metrics
        line = f"Epoch {trainer.current_epoch + 1}, "
        if "train/loss" in metrics:
            line += f"Train Loss: {metrics['train/loss']:.4f}, "
        if "val/loss" in metrics:
            line += f"Val Loss: {metrics['val/loss']:.4f}, "
        line += f"Time: {elapsed:.2f}s, Throughput: {self.images / elapsed:.1f} im/s"
        log.info(line)


class ImageGridLogger(L.Callback):
    """Each epoch: reconstructions of a fixed validation batch and images decoded from a fixed
    z ~ N(0, I), to TensorBoard and as PNG. At the end, the reference's combined picture.
    """

    def __init__(self, dirpath: str, n: int = 128, rows: int = 8, seed: int = 0):
        if n % rows:
            raise ValueError(f"callbacks.images.n={n} must be a multiple of rows={rows}")
        self.dirpath, self.n, self.rows, self.seed = Path(dirpath), n, rows, seed

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        g = torch.Generator().manual_seed(self.seed)
        self.z = torch.randn(self.n, pl_module.model.latent, generator=g)
        self.x = trainer.datamodule.fixed_val_images(self.n).cpu()

    @torch.no_grad()
    def render(self, pl_module: L.LightningModule) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction grid, sample grid), each (C, H, W) in [0, 1] on the CPU."""
        was_training = pl_module.training
        pl_module.eval()
        model, device = pl_module.model, pl_module.device
        x = self.x.to(device)
        if pl_module.hparams.get("channels_last"):
            x = x.contiguous(memory_format=torch.channels_last)
        mu, _ = model.encoder(x)  # the posterior mean: pictures that do not flicker with eps
        recon = model.decode(mu).float().cpu()
        samples = model.decode(self.z.to(device)).float().cpu()
        pl_module.train(was_training)
        nrow = self.n // self.rows
        return make_grid(recon, nrow=nrow, padding=0), make_grid(samples, nrow=nrow, padding=0)

    def _emit(self, trainer: L.Trainer, tag: str, image: torch.Tensor, name: str) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        save_image(image, self.dirpath / name)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(tag, image, global_step=trainer.current_epoch)

    @rank_zero_only
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == 0:
            originals = make_grid(self.x, nrow=self.n // self.rows, padding=0)
            self._emit(trainer, "images/originals", originals, "originals.png")
        recon, samples = self.render(pl_module)
        epoch = trainer.current_epoch + 1
        self._emit(trainer, "images/reconstructions", recon, f"recon_epoch{epoch:03d}.png")
        self._emit(trainer, "images/samples", samples, f"samples_epoch{epoch:03d}.png")

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        recon, samples = self.render(pl_module)
        blank = torch.zeros(recon.shape[0], recon.shape[1] // self.rows, recon.shape[2])
        self._emit(trainer, "images/final", torch.cat([recon, blank, samples], dim=1), "final.png")


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the last good checkpoint."""


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
                ckpt = trainer.checkpoint_callback
                good = ckpt.last_model_path if ckpt is not None else ""
                raise NonFiniteLossError(
                    f"the training loss became non-finite at step {first_bad} (epoch "
                    f"{trainer.current_epoch + 1}); last good checkpoint: {good or 'none yet'}. "
                    "Lower model.optimizer.lr or resume from that checkpoint with ckpt_path=..."
                )
