"""Where images come from: one module per source (MNIST-style gz files, CIFAR-10, CelebA, any
image folder), all resized once into the shared memory-mapped cache (cache.py)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from cvae_lightning.data.cache import Split, cache_folder, load_cached
from cvae_lightning.data.source import Source
from cvae_lightning.errors import DatasetError, require
from cvae_lightning.files import atomic_write

# data.name -> the module and class that read it, imported on first use. A new source is one
# module (a Source subclass with `from_settings`), one line here and its conf/data/<name>.yaml.
SOURCES = {
    "mnist": "mnist.GzDataset",
    "fashion_mnist": "mnist.GzDataset",
    "kmnist": "mnist.GzDataset",
    "cifar10": "cifar10.Cifar10",
    "celeba": "celeba.CelebA",
    "folder": "folder.ImageFolder",
}
CHANNELS = ("auto", 1, 3)


def source_from(data) -> Source:
    """The source a data config (or a run's saved data settings) describes, checked to exist
    (one DatasetError naming the fix if not)."""
    name = data["name"]
    if name not in SOURCES:
        raise DatasetError(f"data.name={name!r} is invalid: choose one of {', '.join(SOURCES)}")
    fraction = data.get("val_fraction", 0.1)  # a folder's held-out share
    require(0 < fraction < 1, "data.val_fraction", fraction, "it must be between 0 and 1")
    module, cls = SOURCES[name].rsplit(".", 1)
    reader = getattr(importlib.import_module(f"cvae_lightning.data.{module}"), cls)
    root = data.get("root")
    return reader.from_settings(
        name=name, root=Path(root).expanduser() if root is not None else None,  # data.root=~/..
        path=data.get("path"), verify=data.get("verify", True),
        val_fraction=fraction,
    )  # fmt: skip


def make_source(
    name: str, root: str | Path | None = None, path: str | Path | None = None,
    verify: bool = True, val_fraction: float = 0.1,
) -> Source:  # fmt: skip
    """source_from, for code that names the settings (tests, benchmarks)."""
    settings = {"root": root, "path": path, "verify": verify, "val_fraction": val_fraction}
    return source_from({"name": name, **settings})


def resolve_channels(source: Source, channels: int | str, cache_dir=None) -> int:
    """data.channels as a number: auto is 3 where the source has colour, else 1. A folder's
    answer needs its files' headers, so it is remembered beside the cache per fingerprint."""
    if channels not in CHANNELS:
        raise DatasetError(f"data.channels={channels!r} is invalid: use auto, 1 or 3")
    if channels != "auto":
        return channels
    if source.colour is not None:
        return 3 if source.colour else 1
    memo = Path(cache_dir) / f"{source.key}-colour.json" if cache_dir else None
    fingerprint = source.fingerprint()
    try:
        seen = json.loads(memo.read_text()) if memo else {}
        if seen.get("fingerprint") == fingerprint:
            return seen["channels"]
    except (OSError, ValueError, KeyError):
        pass  # no memo yet, or an unreadable one: look again
    found = 3 if source.probe_colour() else 1
    if memo:
        text = json.dumps({"fingerprint": fingerprint, "channels": found}).encode()
        atomic_write(memo, lambda f: f.write(text))
    return found


def load_split(
    source: Source, train: bool, size: int, channels: int | str = "auto", cache_dir=None
) -> Split:
    """The training (True) or test split at `size` px with `channels` (auto: 3 where the
    source has colour, else 1), from the cache in cache_dir (built there when missing or
    stale; in memory when cache_dir is None)."""
    cache_dir = Path(cache_dir).expanduser() if cache_dir else None
    c = resolve_channels(source, channels, cache_dir)
    folder = cache_folder(cache_dir, source.key, train, size, c) if cache_dir else None
    return load_cached(folder, source.fingerprint(), lambda: source.plan(train), c, size)
