"""LightningModule: the CVAE, its MSE-plus-KL objective, per-image metrics and the optimizer."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import lightning as L
import torch
from torchmetrics import MeanMetric, MetricCollection

from cvae_lightning.losses import kl_weight, loss_terms
from cvae_lightning.model import CVAE

OptimizerFactory = Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer]
TERMS = ("loss", "recon", "kl")


def _per_image_means(prefix: str) -> MetricCollection:
    return MetricCollection({t: MeanMetric() for t in TERMS}, prefix=prefix)


class CVAEModule(L.LightningModule):
    """Trains `CVAE` on the summed objective of the reference; reports every term per image.

    Metrics accumulate on the device (torchmetrics) and are read once per epoch, so the
    training loop never waits on the GPU.
    """

    def __init__(
        self,
        optimizer: OptimizerFactory | None = None,
        channels_last: bool = False,
        compile: bool | str = False,
        conditional: bool = False,
        num_classes: int = 10,
        classes: list[str] | None = None,
        beta: float = 1.0,
        kl_warmup_epochs: float = 0,
        **architecture: int,
    ):
        """`architecture`: the `CVAE`'s latent, max_filters, image_size and channels (its own
        defaults for those not given); `num_classes` is used when `conditional`; `classes`
        names the data's classes (kept in the checkpoint for pictures and sampling). The
        objective is recon + beta * KL (beta=1: the reference), beta reached linearly over the
        first `kl_warmup_epochs` epochs of training; validation and test use beta."""
        super().__init__()
        classes = [str(c) for c in classes or []]  # plain strings: a weights_only checkpoint
        # The optimizer factory is a Hydra partial: kept out of the checkpoint's hparams so a
        # checkpoint holds only plain values and loads with weights_only=True.
        self.save_hyperparameters(ignore=["optimizer"])
        self.optimizer = optimizer
        self.model = CVAE(**architecture, num_classes=num_classes if conditional else 0)
        self.train_metrics = _per_image_means("train/")
        self.val_metrics = _per_image_means("val/")
        self.test_metrics = _per_image_means("test/")
        if channels_last:
            self.model.to(memory_format=torch.channels_last)

    def configure_model(self) -> None:
        mode = self.hparams.compile
        if mode and not getattr(self, "_compiled", False):
            # nn.Module.compile keeps parameter names, so checkpoints stay compatible.
            self.model.compile(mode=None if mode is True else mode)
            self._compiled = True

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.model(x, y)

    def objective(
        self, x: torch.Tensor, y: torch.Tensor | None = None, weight: float | None = None
    ) -> dict[str, torch.Tensor]:
        """Summed loss terms over the batch (what the reference optimises, with KL weight
        `weight`, default beta)."""
        x_rec, mu, logvar = self.model(x, y)
        return loss_terms(x_rec, x, mu, logvar, self.hparams.beta if weight is None else weight)

    def kl_weight(self) -> float:
        """The KL weight of this training step: beta after the warm-up, less during it."""
        steps_per_epoch = self.trainer.num_training_batches if self._trainer else 0
        warmup = round(self.hparams.kl_warmup_epochs * steps_per_epoch)
        return kl_weight(self.hparams.beta, warmup, self.global_step)

    def _step(self, batch, metrics: MetricCollection, weight=None) -> dict[str, torch.Tensor]:
        x = batch[0]
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        terms = self.objective(x, batch[1] if self.hparams.conditional else None, weight)
        n = x.shape[0]
        for t in TERMS:
            metrics[t].update(terms[t].detach() / n, weight=n)
        return terms

    def training_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        weight = self.kl_weight()
        terms = self._step(batch, self.train_metrics, weight)
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True)
        if self.hparams.kl_warmup_epochs:
            self.log("train/kl_weight", weight, on_step=False, on_epoch=True, reduce_fx="max")
        return terms

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, self.val_metrics)
        self.log_dict(self.val_metrics, on_step=False, on_epoch=True, prog_bar=True)

    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, self.test_metrics)
        self.log_dict(self.test_metrics, on_step=False, on_epoch=True)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # The reparameterisation draws from torch's global RNG: saving it makes resume exact.
        checkpoint["rng"] = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            checkpoint["rng"]["cuda"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        rng = checkpoint.get("rng", {})
        if "cpu" in rng:
            torch.set_rng_state(rng["cpu"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.optimizer is None:
            raise ValueError("CVAEModule needs an optimizer factory (model.optimizer) to train")
        return self.optimizer(params=self.parameters())
