"""Read MNIST-style datasets offline and keep them resized as uint8 tensors, cached on disk.

torchvision's readers stay the source of truth; this module only makes sure the raw files are
present and intact (never letting torchvision try a download) and does the resize once.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import torch
from torchvision.datasets import KMNIST, MNIST, FashionMNIST
from torchvision.datasets.utils import check_md5
from torchvision.transforms.v2 import functional as TF

from cvae_lightning.errors import DatasetError
from cvae_lightning.files import atomic_write

DATASETS = {"mnist": MNIST, "fashion_mnist": FashionMNIST, "kmnist": KMNIST}
CACHE_FORMAT = 1


def dataset_class(name: str) -> type[MNIST]:
    if name not in DATASETS:
        raise DatasetError(
            f"data.name={name!r} is unknown: choose one of {', '.join(sorted(DATASETS))}"
        )
    return DATASETS[name]


def raw_folder(root: str | Path, name: str) -> Path:
    return Path(root) / dataset_class(name).__name__ / "raw"


def unpack_raw(root: str | Path, name: str, verify: bool = True) -> Path:
    """Check the four gz files of `name` under root and unpack them where torchvision reads them."""
    folder = raw_folder(root, name)
    fix = (
        f"put the four original {dataset_class(name).__name__} gz files "
        f"({', '.join(f for f, _ in dataset_class(name).resources)}) in {folder} "
        "or point data.root at a folder holding them"
    )
    if not folder.is_dir():
        raise DatasetError(f"dataset folder {folder} does not exist: {fix}")
    for filename, md5 in dataset_class(name).resources:
        gz, unpacked = folder / filename, folder / filename.removesuffix(".gz")
        if unpacked.is_file() and not gz.is_file():
            continue  # an already unpacked copy is all torchvision needs
        if not gz.is_file():
            raise DatasetError(f"dataset file {gz} is missing: {fix}")
        if verify and not check_md5(str(gz), md5):
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
    return folder


def read_split(
    root: str | Path, name: str, train: bool, verify: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, H, W) uint8 and labels (N,) int64 of one split, read by torchvision."""
    folder = unpack_raw(root, name, verify)
    try:
        ds = dataset_class(name)(str(root), train=train, download=False)
    except (RuntimeError, ValueError, AssertionError) as e:
        raise DatasetError(
            f"torchvision could not read the {name} files in {folder} ({e}): "
            "replace them with the original gz files"
        ) from e
    return ds.data, ds.targets


def resize_images(images: torch.Tensor, size: int, chunk: int = 8192) -> torch.Tensor:
    """(N, H, W) uint8 -> (N, 1, size, size) uint8: bilinear, aspect kept, centre-cropped."""
    out = torch.empty(len(images), 1, size, size, dtype=torch.uint8)
    for start in range(0, len(images), chunk):
        batch = images[start : start + chunk].unsqueeze(1)
        batch = TF.resize(batch, [size], antialias=True)  # shorter side -> size
        out[start : start + chunk] = TF.center_crop(batch, [size, size])
    return out


def cache_path(cache_dir: str | Path, name: str, train: bool, size: int) -> Path:
    return Path(cache_dir) / f"{name}-{'train' if train else 'test'}-{size}px.pt"


def load_resized(
    root: str | Path,
    name: str,
    train: bool,
    size: int,
    cache_dir: str | Path | None = None,
    verify: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resized images (N, 1, size, size) uint8 and labels; built once, then read from the cache."""
    path = cache_path(cache_dir, name, train, size) if cache_dir else None
    if path is not None and path.is_file():
        return _read_cache(path, size)
    return _build(root, name, train, size, path, verify)


def ensure_cached(root: str | Path, name: str, size: int, cache_dir=None, verify=True) -> None:
    """Make sure both splits are cached at `size` (building what is missing) without reading
    them; with no cache_dir, only check the raw files. prepare_data: data problems show early."""
    for train in (True, False):
        path = cache_path(cache_dir, name, train, size) if cache_dir else None
        if path is None:
            unpack_raw(root, name, verify)
        elif not path.is_file():
            _build(root, name, train, size, path, verify)


def _build(root, name, train: bool, size: int, path: Path | None, verify: bool):
    """Read the raw split, resize it, and cache it at `path` (if given)."""
    images, labels = read_split(root, name, train, verify)
    images = resize_images(images, size)
    if path is not None:
        blob = {"format": CACHE_FORMAT, "size": size, "images": images, "labels": labels}
        atomic_write(path, lambda f: torch.save(blob, f))
    return images, labels


def _read_cache(path: Path, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    fix = f"delete {path} and run again to rebuild it"
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        images, labels = blob["images"], blob["labels"]
        ok = (
            blob.get("format") == CACHE_FORMAT
            and blob.get("size") == size
            and images.dtype == torch.uint8
            and images.shape[1:] == (1, size, size)
            and len(images) == len(labels)
        )
    except Exception as e:  # any unreadable file is the same problem for the user
        raise DatasetError(
            f"resized-data cache {path} is corrupt ({type(e).__name__}): {fix}"
        ) from e
    if not ok:
        raise DatasetError(f"resized-data cache {path} does not hold {size}px images: {fix}")
    return images, labels
