"""CIFAR-10 from torchvision's python-format folder (cifar-10-batches-py), never downloaded."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import CIFAR10
from torchvision.datasets.utils import check_md5

from cvae_lightning.data.cache import ArrayPlan
from cvae_lightning.data.source import Source, stat_fingerprint
from cvae_lightning.errors import DatasetError


class Cifar10(Source):
    """The 50,000 training and 10,000 test images, 32x32 RGB, 10 classes."""

    key, described, colour = "cifar10", "data=cifar10", True

    @classmethod
    def from_settings(cls, name, root, path, verify, val_fraction):
        return cls(root, verify)

    def __init__(self, root: str | Path, verify: bool = True):
        self.root, self.verify = Path(root), verify
        self.folder = self.root / CIFAR10.base_folder
        self.fix = (
            f"extract the original cifar-10-python.tar.gz in {self.root} (it makes "
            f"{CIFAR10.base_folder}/), or point data.root at the folder holding it"
        )
        if not self.folder.is_dir():
            raise DatasetError(f"dataset folder {self.folder} does not exist: {self.fix}")
        self.classes = [str(c) for c in self._unpickle(CIFAR10.meta["filename"])["label_names"]]

    def _file(self, name: str, md5: str | None = None) -> Path:
        path = self.folder / name
        if not path.is_file():
            raise DatasetError(f"dataset file {path} is missing: {self.fix}")
        if self.verify and md5 and not check_md5(str(path), md5):
            raise DatasetError(
                f"dataset file {path} has the wrong md5 (expected {md5}): replace it with the "
                "original file, or set data.verify=false for a dataset of your own"
            )
        return path

    def _unpickle(self, name: str, md5: str | None = None) -> dict:
        path = self._file(name, md5 if md5 else CIFAR10.meta["md5"])
        try:
            with open(path, "rb") as f:
                blob = pickle.load(f, encoding="latin1")  # the dataset's own format
        except Exception as e:
            raise DatasetError(
                f"dataset file {path} is corrupt or truncated ({type(e).__name__}): replace it "
                "with the original"
            ) from None
        if not isinstance(blob, dict):
            raise DatasetError(f"dataset file {path} is not a CIFAR-10 batch: {self.fix}")
        return blob

    def _files(self, train: bool) -> list[list[str]]:
        return CIFAR10.train_list if train else CIFAR10.test_list

    def fingerprint(self) -> str:
        names = [name for name, _ in CIFAR10.train_list + CIFAR10.test_list]
        return stat_fingerprint([self._file(n) for n in names], "cifar10")

    def plan(self, train: bool) -> ArrayPlan:
        images, labels = [], []
        for name, md5 in self._files(train):
            blob = self._unpickle(name, md5)
            try:
                data = np.asarray(blob["data"], np.uint8).reshape(-1, 3, 32, 32)
                labels += list(blob["labels"])
            except (KeyError, ValueError) as e:
                raise DatasetError(
                    f"dataset file {self.folder / name} is not a CIFAR-10 batch ({e}): {self.fix}"
                ) from None
            images.append(torch.from_numpy(data))
        return ArrayPlan(torch.cat(images), torch.tensor(labels, dtype=torch.int64), self.classes)
