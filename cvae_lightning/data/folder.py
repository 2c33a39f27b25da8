"""Any folder of images: found recursively, class subfolders as labels (torchvision
ImageFolder's convention), DIR/train + DIR/val (or DIR/test) as the splits when present, else a
held-out share chosen from the file names alone, so every run on the same files agrees."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cvae_lightning.data.cache import FilePlan
from cvae_lightning.data.decode import has_colour, is_image_file
from cvae_lightning.data.source import Source, file_record, fingerprint_of
from cvae_lightning.errors import DatasetError

log = logging.getLogger(__name__)
VAL_FOLDERS = ("val", "test")


@dataclass
class Found:
    """The image files under one folder: relative paths, their class (-1: none), and the
    (path, size, mtime) records the fingerprint hashes."""

    files: list[str]
    labels: list[int]
    stats: list[str]


def image_files(folder: Path) -> list[tuple[str, os.stat_result]]:
    """(path relative to folder, stat) of every image file below it, links followed."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            path = Path(dirpath) / name
            if not name.startswith(".") and is_image_file(path):
                try:
                    out.append((str(path.relative_to(folder)), path.stat()))
                except OSError:
                    continue  # a dangling link: not an image we can read
    return out


def _order(rel: str) -> tuple[str, str]:
    # By file name first: files named by index keep their order across class folders.
    return (Path(rel).name, rel)


def _held_out(rel: str) -> str:
    """A fixed pseudo-random key per file name: the held-out share depends on nothing else."""
    return hashlib.sha1(f"cvae-lightning/val/{rel}".encode()).hexdigest()


class ImageFolder(Source):
    """Images under `path`; `val_fraction` of each class is held out for validation when the
    folder has no train/ + val/ (or test/) subfolders."""

    colour = None

    @classmethod
    def from_settings(cls, name, root, path, verify, val_fraction):
        return cls(path, val_fraction)

    def __init__(self, path: str | Path | None, val_fraction: float = 0.1):
        if path is None:
            raise DatasetError(
                "data.path is not set: data=folder needs data.path=DIR, a folder of images "
                "(class subfolders become labels)"
            )
        self.path, self.val_fraction = Path(path).expanduser(), val_fraction
        self.described = f"data.path={path}"
        if not self.path.is_dir():
            raise DatasetError(
                f"data.path={self.path} does not exist or is not a folder: point data.path at a "
                "folder of images"
            )
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.path.resolve().name)[:40]
        digest = hashlib.sha1(str(self.path.resolve()).encode()).hexdigest()[:8]
        self.key = f"folder-{slug}-{digest}"
        self._scan()

    def _scan(self) -> None:
        val = next((self.path / v for v in VAL_FOLDERS if (self.path / v).is_dir()), None)
        train = self.path / "train"
        if val is not None and train.is_dir():
            self.layout = f"{train.name}/ and {val.name}/"
            self.roots = {True: train, False: val}
            self.classes = self._classes(train)
            self.train, self.test = self._find(train), self._find(val)
        else:
            self.layout = f"a held-out {self.val_fraction:.0%} of each class"
            self.roots = {True: self.path, False: self.path}
            self.classes = self._classes(self.path)
            self.train, self.test = self._split(self._find(self.path))
        if not self.train.files:
            raise DatasetError(
                f"data.path={self.path} holds no image files (PNG, JPEG, BMP, WebP, GIF, TIFF) "
                "for training: put images there (in class subfolders for labels)"
            )
        if not self.test.files:
            raise DatasetError(
                f"data.path={self.path}: no image is left for validation ({self.layout}): add "
                "images, or raise data.val_fraction"
            )

    def _classes(self, folder: Path) -> list[str]:
        """The subfolders that hold images, sorted: ImageFolder's classes; [] if none do."""
        subdirs = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
        return [d.name for d in subdirs if any(is_image_file(Path(f)) for f in _walk(d))]

    def _find(self, folder: Path) -> Found:
        index = {c: i for i, c in enumerate(self.classes)}
        found, ignored = [], 0
        for rel, st in image_files(folder):
            top = Path(rel).parts[0] if len(Path(rel).parts) > 1 else None
            if self.classes and top not in index:
                ignored += 1  # outside every class folder
                continue
            label = index[top] if self.classes else -1
            found.append((_order(rel), rel, label, file_record(rel, st)))
        if ignored:
            log.warning(
                f"{ignored} image file(s) in {folder} are outside the class folders "
                f"({', '.join(self.classes[:5])}{', ...' if len(self.classes) > 5 else ''}) "
                "and were left out"
            )
        found.sort()
        return Found([f[1] for f in found], [f[2] for f in found], [f[3] for f in found])

    def _split(self, every: Found) -> tuple[Found, Found]:
        """Hold out `val_fraction` of each class (at least one image of a class with two or
        more), picked by a fixed hash of the file name."""
        by_class: dict[int, list[int]] = {}
        for i, label in enumerate(every.labels):
            by_class.setdefault(label, []).append(i)
        held = set()
        for members in by_class.values():
            k = round(len(members) * self.val_fraction)
            k = min(max(k, 1 if self.val_fraction > 0 else 0), len(members) - 1)
            held.update(sorted(members, key=lambda i: _held_out(every.files[i]))[:k])

        def pick(keep: bool) -> Found:
            idx = [i for i in range(len(every.files)) if (i in held) != keep]
            return Found(
                *([getattr(every, f)[i] for i in idx] for f in ("files", "labels", "stats"))
            )

        return pick(True), pick(False)

    def fingerprint(self) -> str:
        records = [*self.train.stats, "--", *self.test.stats]
        return fingerprint_of(records, "folder", self.layout, self.val_fraction)

    def plan(self, train: bool) -> FilePlan:
        part = self.train if train else self.test
        labels = np.maximum(np.asarray(part.labels, np.int64), 0)  # unlabelled: all 0
        return FilePlan(self.roots[train], part.files, labels, self.classes)

    def probe_colour(self) -> bool:
        """Whether any image has colour, from the headers; stops at the first that does."""
        for part, train in ((self.train, True), (self.test, False)):
            for rel in part.files:
                try:
                    if has_colour(self.roots[train] / rel):
                        return True
                except Exception:
                    continue  # unreadable: the cache build will skip and name it
        return False


def _walk(folder: Path):
    for dirpath, _, filenames in os.walk(folder, followlinks=True):
        for name in filenames:
            yield os.path.join(dirpath, name)
