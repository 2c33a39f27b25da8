"""LightningDataModule for images of any source, served in batches straight from a uint8 tensor."""

from __future__ import annotations

import logging

import lightning as L
import torch

from cvae_lightning.data import load_split, source_from
from cvae_lightning.data.cache import Split
from cvae_lightning.errors import require

log = logging.getLogger(__name__)


def check_data_settings(data) -> None:
    """The data group's batching values (the source checks its own: name, path, channels)."""
    for key in ("batch_size", "val_batch_size"):
        require(data[key] >= 1, f"data.{key}", data[key], "it must be >= 1")
    if data.limit is not None:
        require(data.limit >= data.batch_size, "data.limit", data.limit,
                f"it must be null or >= data.batch_size ({data.batch_size}), or no full batch "
                "is left to train on")  # fmt: skip
    on_device = data.on_device
    require(on_device in (True, False, "auto"), "data.on_device", on_device,
            "use true, false or auto")  # fmt: skip


class TensorBatches:
    """Batches of (images uint8, labels) drawn from tensors that may live on the GPU.

    Replaces a DataLoader: indexing one tensor per batch costs microseconds, where a per-image
    Dataset + collate costs milliseconds. The shuffle order of epoch e depends only on (seed, e),
    and the position inside the epoch is part of `state_dict`, so a resumed run sees the same
    batches as an uninterrupted one. Under DDP each rank takes a disjoint stride of the order.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        shuffle: bool,
        drop_last: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0
        self._start = 0  # batches of the current epoch already served (for resume)

    def _per_rank(self) -> int:
        return len(self.images) // self.world_size

    def __len__(self) -> int:
        n = self._per_rank()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self) -> torch.Tensor:
        n = len(self.images)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        order = order[self.rank : self._per_rank() * self.world_size : self.world_size]
        return order.to(self.images.device, non_blocking=True)

    def __iter__(self):
        order, start = self._order(), self._start
        self._start = 0
        for b in range(start, len(self)):
            self._position = b + 1
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            yield self.images[idx], self.labels[idx]
        self.epoch += 1
        self._position = 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": getattr(self, "_position", 0)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self._start = state["epoch"], state["position"]


class ImageDataModule(L.LightningDataModule):
    """Images of any source (data.name: MNIST-style, cifar10, celeba, folder) resized to
    `image_size` with `channels` (auto: the source's own), pixels in [0, 1] on the device.

    Both splits are read from the memory-mapped cache (built in prepare_data). Batches stay
    uint8 until the LightningModule's step turns them into floats on the device
    (`CVAEModule.model_input`, inside the CUDA graph when there is one), so a host to device
    copy moves a quarter of the bytes.
    """

    def __init__(
        self,
        name: str = "mnist",
        root: str | None = "data",
        path: str | None = None,
        image_size: int = 64,
        channels: int | str = "auto",
        batch_size: int = 128,
        val_batch_size: int = 128,
        limit: int | None = None,
        on_device: bool | str = "auto",
        cache_dir: str | None = None,
        verify: bool = True,
        val_fraction: float = 0.1,
        seed: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.train_data: tuple[torch.Tensor, torch.Tensor] | None = None
        self.val_data: tuple[torch.Tensor, torch.Tensor] | None = None
        self.classes: list[str] | None = None
        self._source = None

    @property
    def source(self):
        if self._source is None:
            self._source = source_from(self.hparams)
        return self._source

    def _load(self, train: bool) -> Split:
        hp = self.hparams
        split = load_split(self.source, train, hp.image_size, hp.channels, hp.cache_dir)
        self.classes, self.channels = split.classes, split.channels
        return split

    def prepare_data(self) -> None:
        # Once per node, before setup: check, decode and cache both splits, so the ranks only
        # read; the class names and the channel count are known from here on.
        for train in (True, False):
            split = self._load(train)
            if split.skipped:
                log.warning(
                    f"{split.skipped} unreadable image file(s) of the "
                    f"{'training' if train else 'test'} split are left out: see "
                    f"{split.where / 'skipped.txt' if split.where else 'the lines above'}"
                )

    def _device(self) -> torch.device:
        on_device, trainer = self.hparams.on_device, self.trainer
        device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
        if on_device == "auto":
            on_device = device.type == "cuda"
        return device if on_device else torch.device("cpu")

    def setup(self, stage: str | None = None) -> None:
        device = self._device()
        if self.train_data is None and stage in (None, "fit"):
            split = self._load(train=True)
            images, labels = split.images, split.labels
            if self.hparams.limit:
                images, labels = images[: self.hparams.limit], labels[: self.hparams.limit]
            self.train_data = (images.to(device), labels.to(device))
        if self.val_data is None:
            split = self._load(train=False)
            self.val_data = (split.images.to(device), split.labels.to(device))

    def _rank_world(self) -> tuple[int, int]:
        t = self.trainer
        return (t.global_rank, t.world_size) if t is not None else (0, 1)

    def _batches(self, data, batch_size: int, shuffle: bool) -> TensorBatches:
        rank, world = self._rank_world()
        return TensorBatches(
            *data, batch_size, shuffle=shuffle, drop_last=shuffle, seed=self.hparams.seed,
            rank=rank, world_size=world,
        )  # fmt: skip

    def train_dataloader(self) -> TensorBatches:
        # Shuffled, last partial batch dropped (the reference recipe).
        return self._batches(self.train_data, self.hparams.batch_size, shuffle=True)

    def _eval_batches(self) -> TensorBatches:
        # In order, every image.
        return self._batches(self.val_data, self.hparams.val_batch_size, shuffle=False)

    val_dataloader = _eval_batches
    test_dataloader = _eval_batches

    def fixed_val_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first n test images (floats in [0, 1]) and labels, on the CPU: pictures drawn
        from them compare across epochs and runs."""
        if self.val_data is None:
            self.setup("validate")
        images, labels = self.val_data
        return images[:n].cpu().float().div(255), labels[:n].cpu()
