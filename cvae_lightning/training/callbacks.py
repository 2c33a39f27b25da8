"""Callbacks: the reference's console lines, image grids and latent pictures (TensorBoard, PNG)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only
from torchvision.utils import make_grid, save_image

from cvae_lightning.files import atomic_write
from cvae_lightning.inference import draw
from cvae_lightning.inference.captions import label_rows
from cvae_lightning.inference.draw import class_rows
from cvae_lightning.inference.scatter import class_scatter
from cvae_lightning.training.epoch_sums import HostCopy
from cvae_lightning.training.loggers import log_image, tensorboard_writers
from cvae_lightning.vae.latent import posterior_means
from cvae_lightning.vae.model import count_parameters

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

    Losses are per image. The step's loss is copied to the host without waiting
    (`HostCopy`) and its line printed once the copy has landed, a step or so later on a GPU;
    only the epoch's last line waits, which also makes the epoch's clock honest.
    """

    def __init__(self, every_n_steps: int = 250):
        self.every_n_steps = every_n_steps
        self.copy = HostCopy()

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
        self.line: tuple[int, int, int, int] | None = None  # (epoch, step, images, batch)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        n = batch[0].shape[0]
        self.images += n * trainer.world_size
        step = batch_idx + 1
        last = step == trainer.num_training_batches
        self._print_line(trainer, wait=False)
        if step % self.every_n_steps and not last:
            return
        self._print_line(trainer, wait=True)  # a line per copy (only with every_n_steps=1)
        self.copy.start(outputs["loss"])
        self.line = (trainer.current_epoch + 1, step, self.images, n)
        if last:
            self._print_line(trainer, wait=True)
            self.train_time = time.perf_counter() - self.start

    def _print_line(self, trainer: L.Trainer, wait: bool) -> None:
        loss = self.copy.take(wait)
        if loss is None:
            return
        elapsed = time.perf_counter() - self.start
        epoch, step, images, n = self.line
        if trainer.is_global_zero:
            log.info(
                f"Epoch {epoch}, Iter {step}, Loss: {loss / n:.4f}, "
                f"Throughput: {images / elapsed:.1f} im/s",
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


def emit_image(trainer: L.Trainer, dirpath: Path, tag: str, image: torch.Tensor, name: str) -> None:
    """Save an image grid as dirpath/name (atomically) and show it in the run's trackers."""
    atomic_write(dirpath / name, lambda f: save_image(image, f, format="png"))
    log_image(trainer, tag, image)


class ImageGridLogger(L.Callback):
    """Each epoch: reconstructions of a fixed validation batch and images decoded from a fixed
    z ~ N(0, I), to TensorBoard and as PNG. At the end, the reference's combined picture.
    A conditional model's samples show one row per class.
    """

    def __init__(self, dirpath: str, n: int = 128, rows: int = 8, seed: int = 0):
        if n % rows:
            raise ValueError(f"callbacks.images.n={n} must be a multiple of rows={rows}")
        self.dirpath, self.n, self.rows, self.seed = Path(dirpath), n, rows, seed

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        g = torch.Generator().manual_seed(self.seed)
        self.z = torch.randn(self.n, pl_module.model.latent, generator=g)
        self.x, self.y = trainer.datamodule.fixed_val_batch(self.n)

    @torch.no_grad()
    def render(self, pl_module: L.LightningModule) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction grid, sample grid), each (C, H, W) in [0, 1] on the CPU."""
        was_training = pl_module.training
        pl_module.eval()
        model, device = pl_module.model, pl_module.device
        x, y = self.x.to(device), self.y.to(device)
        if pl_module.hparams.get("channels_last"):
            x = x.contiguous(memory_format=torch.channels_last)
        mu, _ = model.posterior(x, y)  # posterior means: no eps flicker
        recon = model.decode(mu, y).float().cpu()
        z, y_samples, cols = self.z.to(device), None, self.n // self.rows
        if model.num_classes:  # one row per class, all rows full
            z = z[: self.n // model.num_classes * model.num_classes]
            y_samples, cols = class_rows(model.num_classes, len(z))
            y_samples = y_samples.to(device)
        samples = model.decode(z, y_samples).float().cpu()
        pl_module.train(was_training)
        recon_grid = make_grid(recon, nrow=self.n // self.rows, padding=0)
        return recon_grid, make_grid(samples, nrow=cols, padding=0)

    def _emit(self, trainer: L.Trainer, tag: str, image: torch.Tensor, name: str) -> None:
        emit_image(trainer, self.dirpath, tag, image, name)

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
        if samples.shape[2] != recon.shape[2]:  # conditional: 10 rows of another width
            samples = torch.nn.functional.pad(samples, (0, recon.shape[2] - samples.shape[2]))
        self._emit(trainer, "images/final", torch.cat([recon, blank, samples], dim=1), "final.png")


class LatentPictures(L.Callback):
    """At the end of training: an interpolation strip and a latent traversal (PNG and
    TensorBoard), the 2-D manifold and a scatter of the test set's posterior means when
    model.latent=2, and the test set's posterior means in TensorBoard's embedding projector
    (labels as metadata, images as sprites)."""

    def __init__(
        self,
        dirpath: str,
        interpolate: tuple[int, int] = (0, 1),
        steps: int = 10,
        traverse: int = 0,
        embed: int = 1000,
    ):
        self.dirpath, self.pair, self.steps = Path(dirpath), tuple(interpolate), steps
        self.traverse_index, self.embed = traverse, embed

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        model = pl_module.model
        n = max(*self.pair, self.traverse_index, self.embed) + 1
        x, y = trainer.datamodule.fixed_val_batch(n)  # labels are ignored by a plain model
        a, b = self.pair
        strip = draw.interpolate(model, x[a], x[b], self.steps, y[a], y[b])
        emit_image(trainer, self.dirpath, "latent/interpolation", strip, "interpolation.png")
        i = self.traverse_index
        grid = label_rows(
            draw.traverse(model, x[i], y[i]), [f"z[{d}]" for d in range(model.latent)]
        )
        emit_image(trainer, self.dirpath, "latent/traversal", grid, "traversal.png")
        mu = posterior_means(model, x[: self.embed], y[: self.embed]).cpu()
        classes = getattr(trainer.datamodule, "classes", None) or []
        if model.latent == 2:
            emit_image(
                trainer, self.dirpath, "latent/manifold", draw.manifold(model), "manifold.png"
            )
            self._scatter(trainer, mu, y[: self.embed], classes)
        for writer in tensorboard_writers(trainer):
            writer.add_embedding(
                mu,
                metadata=[classes[int(c)] if classes else "-" for c in y[: self.embed]],
                label_img=x[: self.embed],
                global_step=trainer.global_step,
                tag="test_posterior_means",  # a folder name: no slash
            )
        pl_module.train()

    def _scatter(self, trainer: L.Trainer, mu: torch.Tensor, labels: torch.Tensor, classes) -> None:
        pixels, _ = class_scatter(
            mu.numpy(), labels.numpy(), classes, inches=6, dpi=100, marker=6, xlabel="z[0]",
            ylabel="z[1]", title="posterior means of test images", legend="class",
        )  # fmt: skip
        image = torch.from_numpy(pixels).permute(2, 0, 1).float().div(255)
        emit_image(trainer, self.dirpath, "latent/scatter", image, "latent_scatter.png")
