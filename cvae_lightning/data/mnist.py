"""MNIST, FashionMNIST and KMNIST from torchvision's gz files, offline: the files are checked
and unpacked where torchvision reads them (it is never allowed to try a download)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import torch
from torchvision.datasets import KMNIST, MNIST, FashionMNIST
from torchvision.datasets.utils import check_md5

from cvae_lightning.data.cache import ArrayPlan
from cvae_lightning.data.source import Source, stat_fingerprint
from cvae_lightning.errors import DatasetError
from cvae_lightning.files import atomic_write

DATASETS = {"mnist": MNIST, "fashion_mnist": FashionMNIST, "kmnist": KMNIST}


class GzDataset(Source):
    """One of torchvision's MNIST-format datasets under `root`/<Class>/raw."""

    colour = False

    @classmethod
    def from_settings(cls, name, root, path, verify, val_fraction):
        return cls(name, root, verify)

    def __init__(self, name: str, root: str | Path, verify: bool = True):
        self.key, self.root, self.verify, self.cls = name, Path(root), verify, DATASETS[name]
        self.described = f"data={name}"
        self.folder = self.root / self.cls.__name__ / "raw"
        # MNIST's class names are its digits; the others' are torchvision's names.
        self.classes = [str(i) for i in range(10)] if name == "mnist" else list(self.cls.classes)
        self.fix = (
            f"put the four original {self.cls.__name__} gz files "
            f"({', '.join(f for f, _ in self.cls.resources)}) in {self.folder} "
            "or point data.root at a folder holding them"
        )
        if not self.folder.is_dir():
            raise DatasetError(f"dataset folder {self.folder} does not exist: {self.fix}")

    def _present(self) -> list[Path]:
        found = []
        for filename, _ in self.cls.resources:
            gz = self.folder / filename
            unpacked = gz.with_suffix("")
            if not gz.is_file() and not unpacked.is_file():
                raise DatasetError(f"dataset file {gz} is missing: {self.fix}")
            found.append(gz if gz.is_file() else unpacked)
        return found

    def fingerprint(self) -> str:
        return stat_fingerprint(self._present(), "gz")

    def unpack(self) -> None:
        """Check the gz files and unpack them where torchvision reads them."""
        self._present()
        for filename, md5 in self.cls.resources:
            gz, unpacked = self.folder / filename, self.folder / filename.removesuffix(".gz")
            if not gz.is_file():
                continue  # an already unpacked copy is all torchvision needs
            if self.verify and not check_md5(str(gz), md5):
                raise DatasetError(
                    f"dataset file {gz} has the wrong md5 (expected {md5}): replace it with the "
                    "original file, or set data.verify=false for a dataset of your own"
                )
            if unpacked.is_file() and unpacked.stat().st_mtime >= gz.stat().st_mtime:
                continue
            try:
                with gzip.open(gz, "rb") as src:
                    atomic_write(unpacked, lambda dst, src=src: shutil.copyfileobj(src, dst))
            except (OSError, EOFError) as e:
                raise DatasetError(
                    f"dataset file {gz} is corrupt or truncated ({e}): replace it with the original"
                ) from e

    def read(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (N, H, W) uint8 and labels (N,) int64 of one split, read by torchvision."""
        self.unpack()
        try:
            ds = self.cls(str(self.root), train=train, download=False)
        except (RuntimeError, ValueError, AssertionError) as e:
            raise DatasetError(
                f"torchvision could not read the {self.key} files in {self.folder} ({e}): "
                "replace them with the original gz files"
            ) from e
        return ds.data, ds.targets

    def plan(self, train: bool) -> ArrayPlan:
        images, labels = self.read(train)
        return ArrayPlan(images.unsqueeze(1), labels, self.classes)
