"""What every data source tells the cache: its name, classes, colour, a fingerprint of its
files, and each split as arrays or as image files."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from cvae_lightning.data.cache import ArrayPlan, FilePlan


class Source:
    """A dataset on disk. `key` names its caches; `described` names it for messages (the
    config key that chose it); `colour` is None where only the files can tell (a folder);
    `classes` is [] for unlabelled data."""

    key: str
    described: str
    colour: bool | None
    classes: list[str]

    @classmethod
    def from_settings(cls, name: str, root: Path | None, path, verify: bool, val_fraction: float):
        """The source from the data settings (data.name, root, path, verify, val_fraction)."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        """Changes whenever the files a split is made of change."""
        raise NotImplementedError

    def plan(self, train: bool) -> ArrayPlan | FilePlan:
        """The training (True) or test split, to be resized into the cache."""
        raise NotImplementedError

    def probe_colour(self) -> bool:
        """Whether any image has colour (for data.channels=auto when `colour` is None)."""
        return bool(self.colour)


def file_record(name: str, st: os.stat_result) -> str:
    """What a fingerprint knows of one file: its name, size and modification time."""
    return f"{name}\0{st.st_size}\0{st.st_mtime_ns}"


def fingerprint_of(records: Iterable[str], *extra) -> str:
    """A hash of file records (and `extra` settings): changes when any file does."""
    h = hashlib.sha1(repr(extra).encode())
    for record in records:
        h.update(f"{record}\n".encode())
    return h.hexdigest()


def stat_fingerprint(paths: list[Path], *extra) -> str:
    """The fingerprint of a few named files."""
    return fingerprint_of((file_record(p.name, p.stat()) for p in paths), *extra)
