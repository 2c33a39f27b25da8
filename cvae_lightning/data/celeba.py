"""CelebA from torchvision's layout (celeba/img_align_celeba/*.jpg and the list files), never
downloaded. Unlabelled here: its 40 attributes are not classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torchvision.datasets import CelebA as TorchvisionCelebA
from torchvision.datasets.utils import check_md5

from cvae_lightning.data.cache import FilePlan
from cvae_lightning.data.source import Source, file_record, fingerprint_of
from cvae_lightning.errors import DatasetError

PARTITION = "list_eval_partition.txt"
# list_eval_partition.txt's split numbers: 0 train, 1 valid, 2 test; our test split is CelebA's.
SPLITS = {True: "0", False: "2"}


class CelebA(Source):
    key, described, colour, classes = "celeba", "data=celeba", True, []

    @classmethod
    def from_settings(cls, name, root, path, verify, val_fraction):
        return cls(root, verify)

    def __init__(self, root: str | Path, verify: bool = True):
        self.root, self.verify = Path(root), verify
        self.folder = self.root / TorchvisionCelebA.base_folder
        self.images = self.folder / "img_align_celeba"
        fix = (
            f"put CelebA's img_align_celeba/ folder (unzipped img_align_celeba.zip) and "
            f"{PARTITION} in {self.folder}, or point data.root at the folder holding celeba/"
        )
        for needed in (self.images, self.folder / PARTITION):
            if not needed.exists():
                raise DatasetError(f"dataset file {needed} is missing: {fix}")
        if verify:
            md5 = next(m for _, m, name in TorchvisionCelebA.file_list if name == PARTITION)
            if not check_md5(str(self.folder / PARTITION), md5):
                raise DatasetError(
                    f"dataset file {self.folder / PARTITION} has the wrong md5 (expected {md5}): "
                    "replace it with the original file, or set data.verify=false"
                )
        self.partition = self._read_partition()
        self._fingerprint: str | None = None

    def _read_partition(self) -> dict[str, list[str]]:
        splits: dict[str, list[str]] = {"0": [], "1": [], "2": []}
        for n, line in enumerate((self.folder / PARTITION).read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in splits:
                raise DatasetError(
                    f"dataset file {self.folder / PARTITION} line {n} is not '<file> <0|1|2>': "
                    "replace it with the original"
                )
            splits[parts[1]].append(parts[0])
        return splits

    def fingerprint(self) -> str:
        """Every image's name, size and time, walked once per source (~200,000 files)."""
        if self._fingerprint is None:
            from cvae_lightning.data.folder import image_files

            partition = self.folder / PARTITION
            records = [file_record(str(partition), partition.stat())]
            records += [file_record(rel, st) for rel, st in sorted(image_files(self.images))]
            self._fingerprint = fingerprint_of(records)
        return self._fingerprint

    def plan(self, train: bool) -> FilePlan:
        files = self.partition[SPLITS[train]]
        missing = [i for i, f in enumerate(files) if not (self.images / f).is_file()]
        return FilePlan(self.images, files, np.zeros(len(files), np.int64), [], missing)
