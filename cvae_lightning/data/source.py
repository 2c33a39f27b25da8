"""What every data source tells the cache: its name, classes, colour, a fingerprint of its
files, and each split as arrays or as image files."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cvae_lightning.data.cache import ArrayPlan, FilePlan


class Source:
    """A dataset on disk. `key` names its caches; `colour` is None where only the files can
    tell (a folder); `classes` is [] for unlabelled data."""

    key: str
    colour: bool | None
    classes: list[str]

    def fingerprint(self) -> str:
        """Changes whenever the files a split is made of change."""
        raise NotImplementedError

    def plan(self, train: bool) -> ArrayPlan | FilePlan:
        """The training (True) or test split, to be resized into the cache."""
        raise NotImplementedError

    def probe_colour(self) -> bool:
        """Whether any image has colour (for data.channels=auto when `colour` is None)."""
        return bool(self.colour)


def stat_fingerprint(paths: list[Path], *extra) -> str:
    """A hash of the files' names, sizes and modification times (and `extra` settings)."""
    h = hashlib.sha1(repr(extra).encode())
    for p in paths:
        st = p.stat()
        h.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()
