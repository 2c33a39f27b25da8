"""LightningModule: the CVAE, its likelihood + KL objective, per-image metrics, the optimizer."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

import lightning as L
import torch

from cvae_lightning.errors import ConfigError, require
from cvae_lightning.training.cuda_graph import CapturedStep, accepts
from cvae_lightning.training.epoch_sums import EpochSums, means
from cvae_lightning.training.noise import load_noise_state, noise_state, seed_noise_for_rank
from cvae_lightning.vae.losses import kl_weight, loss_terms
from cvae_lightning.vae.model import CVAE, check_model, model_kwargs

OptimizerFactory = Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer]
STAGES = ("train", "val", "test")
log = logging.getLogger(__name__)


def check_model_settings(model: Mapping, image_size: int, channels: int | str) -> None:
    """The model group's values: the network's (vae/model.py checks them) and the objective's."""
    channels = 1 if channels == "auto" else channels  # auto: the data decides later
    try:
        check_model(**model_kwargs({**model, "image_size": image_size, "channels": channels}))
    except ValueError as e:
        raise ConfigError(str(e)) from None
    require(model.get("beta", 1.0) >= 0, "model.beta", model.get("beta"), "it must be >= 0")
    warmup = model.get("kl_warmup_epochs", 0)
    require(warmup >= 0, "model.kl_warmup_epochs", warmup, "it must be >= 0 (0: no warm-up)")
    opt = model.get("optimizer") or {}
    for key in ("lr", "weight_decay"):
        if key in opt:
            require(opt[key] >= 0, f"model.optimizer.{key}", opt[key], "it must be >= 0")


class CVAEModule(L.LightningModule):
    """Trains `CVAE` on the summed objective of the reference; reports every term per image.

    A step reads nothing back from the device: its terms are added to per-epoch sums on the
    device (`EpochSums`), which are read, reduced across processes and logged once per epoch.
    With `cuda_graph` the whole training step (uint8 -> float, forward, loss, backward, AdamW,
    the sums) is captured once in a CUDA graph and replayed per batch (manual optimisation).
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
        cuda_graph: bool | str = False,
        **network,
    ):
        """`network`: the `CVAE`'s keys (architecture, likelihood, latent, image_size,
        channels and the architecture's own: max_filters, or resnet's width, blocks, ...; its
        own defaults for those not given); `num_classes` is used when `conditional`; `classes`
        names the data's classes (kept in the checkpoint for pictures and sampling). The
        objective is recon + beta * KL (beta=1: the reference), beta reached linearly over the
        first `kl_warmup_epochs` epochs of training; validation and test use beta.
        `cuda_graph`: train with one captured CUDA graph per step (a CUDA device only; the
        same step runs eagerly elsewhere)."""
        super().__init__()
        classes = [str(c) for c in classes or []]  # plain strings: a weights_only checkpoint
        # The optimizer factory is a Hydra partial: kept out of the checkpoint's hparams so a
        # checkpoint holds only plain values and loads with weights_only=True.
        self.save_hyperparameters(ignore=["optimizer"])
        self.optimizer = optimizer
        # (Not **architecture: Lightning's save_hyperparameters drops a key named like the **.)
        self.model = CVAE(**network, num_classes=num_classes if conditional else 0)
        self.sums = {stage: EpochSums() for stage in STAGES}
        # train() resolves "auto" to true/false for its machine; built directly, auto is off.
        self.automatic_optimization = cuda_graph is not True
        self._captured: CapturedStep | None = None
        if channels_last:
            self.model.to(memory_format=torch.channels_last)

    @property
    def train_sums(self) -> EpochSums:
        return self.sums["train"]

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
        self,
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        weight: float | torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Summed loss terms over the batch (what the reference optimises, with KL weight
        `weight`, default beta)."""
        x_rec, mu, logvar = self.model(x, y)
        weight = self.hparams.beta if weight is None else weight
        return loss_terms(x_rec, x, mu, logvar, weight, self.model.likelihood)

    def kl_weight(self) -> float:
        """The KL weight of this training step: beta after the warm-up, less during it."""
        steps_per_epoch = self.trainer.num_training_batches if self._trainer else 0
        warmup = round(self.hparams.kl_warmup_epochs * steps_per_epoch)
        return kl_weight(self.hparams.beta, warmup, self.global_step)

    def model_input(self, x: torch.Tensor) -> torch.Tensor:
        """Images as the network reads them: uint8 batches become floats in [0, 1] here (on
        the device, inside the CUDA graph when there is one), in the model's memory format."""
        if x.dtype == torch.uint8:
            x = x.float().div_(255)
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _step(self, batch, stage: str, weight=None, step=None, count=True) -> dict:
        """The objective of a batch, added to the stage's sums (`count`: and its images; a
        captured step's caller counts them, as replays run no Python)."""
        x = self.model_input(batch[0])
        terms = self.objective(x, batch[1] if self.hparams.conditional else None, weight)
        images = x.shape[0] if count else 0
        self.sums[stage].add(terms, images, self.global_step if step is None else step)
        return terms

    def _ends_epoch(self, batch_idx: int) -> bool:
        """Whether this step is the epoch's (or the training's: max_steps) last."""
        # The automatic loop counts the step after training_step; the manual one already has.
        done = self.global_step + int(self.automatic_optimization)
        max_steps = self.trainer.max_steps
        last = batch_idx + 1 == self.trainer.num_training_batches
        return last or 0 < max_steps <= done

    def training_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        weight = self.kl_weight()
        if self.automatic_optimization:
            # Steps count from 1 in the NaN guard's message (global_step after this step).
            terms = self._step(batch, "train", weight, step=self.global_step + 1)
        else:
            terms = {"loss": self._manual_step(batch, weight)}
        if self._ends_epoch(batch_idx):
            self._log_means("train")
            if self.hparams.kl_warmup_epochs:
                self.log("train/kl_weight", weight, on_step=False, on_epoch=True, batch_size=1)
            if self.model.likelihood.calibrated:  # the decoder's running sigma (mean of channels)
                sigma = self.model.likelihood.sigma().mean()
                self.log("train/sigma", sigma, on_step=False, on_epoch=True, batch_size=1)
        return terms

    # -- the manual (CUDA-graph) training step -------------------------------------------

    def on_train_start(self) -> None:
        for sums in self.sums.values():
            sums.to(self.device)  # a mid-epoch checkpoint's sums were loaded on the CPU
        # The graph reads the step and the KL weight from the device, at replay time.
        self._step_count = torch.full((), float(self.global_step), device=self.device)
        self._kl_weight = torch.full((), float(self.hparams.beta), device=self.device)
        if not self.automatic_optimization and self.device.type == "cuda":
            self._captured = CapturedStep(self._update)

    def _update(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """One training step, as the CUDA graph captures it: forward, loss, backward, AdamW and
        the epoch sums; returns the summed loss."""
        optimizer = self.optimizers().optimizer
        optimizer.zero_grad(set_to_none=True)  # capture then allocates the gradients once
        self._step_count.add_(1)
        terms = self._step((x, y), "train", self._kl_weight, self._step_count, count=False)
        self.manual_backward(terms["loss"])
        optimizer.step()
        return terms["loss"].detach()

    def _manual_step(self, batch, weight: float) -> torch.Tensor:
        self._kl_weight.fill_(weight)  # a kernel argument, not a copy from the host
        y = batch[1] if self.hparams.conditional else None
        wrapper = self.optimizers()
        # What LightningOptimizer.step() does around a step: count it (global_step), so
        # checkpoints, max_steps and the warm-up see the replayed steps too.
        wrapper._on_before_step()
        run = self._captured or self._update
        loss = run(batch[0], y)
        self.sums["train"].images += batch[0].shape[0]
        wrapper._on_after_step()
        return loss

    # -- evaluation and the per-epoch means ------------------------------------------------

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "test")

    def _log_means(self, stage: str) -> None:
        """Read the stage's sums once, summed over processes, and log the per-image means."""
        totals = self.trainer.strategy.reduce(self.sums[stage].totals(), reduce_op="sum")
        values = {f"{stage}/{t}": v for t, v in means(totals).items()}
        self.log_dict(values, on_step=False, on_epoch=True, prog_bar=stage == "val", batch_size=1)

    def on_train_epoch_start(self) -> None:
        self.sums["train"].reset(self.device)

    def on_validation_epoch_start(self) -> None:
        self.sums["val"].reset(self.device)

    def on_validation_epoch_end(self) -> None:
        self._log_means("val")

    def on_test_epoch_start(self) -> None:
        self.sums["test"].reset(self.device)

    def on_test_epoch_end(self) -> None:
        self._log_means("test")

    # -- checkpoints and noise ----------------------------------------------------------

    def setup(self, stage: str) -> None:
        seed_noise_for_rank(self.trainer.global_rank)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # The reparameterisation draws from torch's RNG: saving it makes resume exact.
        checkpoint["rng"] = noise_state(self.trainer.strategy)
        checkpoint["epoch_sums"] = self.sums["train"].state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        load_noise_state(checkpoint.get("rng", {}), self.trainer.strategy)
        if "epoch_sums" in checkpoint:
            self.sums["train"].load_state_dict(checkpoint["epoch_sums"])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.optimizer is None:
            raise ValueError("CVAEModule needs an optimizer factory (model.optimizer) to train")
        graphed = not self.automatic_optimization and self.device.type == "cuda"
        if graphed and accepts(self.optimizer, "capturable"):
            # Its step count lives on the device, so a CUDA graph can replay the update.
            return self.optimizer(params=self.parameters(), capturable=True)
        return self.optimizer(params=self.parameters())
