"""The resized-image cache every source shares: decoded and resized once into a uint8 file,
memory-mapped for training (a dataset larger than RAM still trains), rebuilt by itself when the
source's files change, published atomically (two runs building it at once both succeed).

A cache is a folder `<cache_dir>/<source>-<split>-<size>px-<channels>ch/` holding
`images.u8` (N, C, S, S) raw bytes, `labels.npy`, `info.json` (what it holds and the source's
fingerprint) and, when files were skipped, `skipped.txt`.
"""

from __future__ import annotations

import errno
import json
import logging
import multiprocessing
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from cvae_lightning.data.resize import resize_square, to_channels
from cvae_lightning.errors import DatasetError, DiskFullError

FORMAT = 2
log = logging.getLogger(__name__)


@dataclass
class Split:
    """One split, ready to train on: images (N, C, S, S) uint8 (memory-mapped when cached),
    labels (N,) int64, the class names ([] when unlabelled) and the files skipped as unreadable."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    skipped: int = 0
    where: Path | None = None

    @property
    def channels(self) -> int:
        return self.images.shape[1]


@dataclass
class ArrayPlan:
    """A split a source holds in memory already (MNIST, CIFAR-10): (N, C, H, W) uint8."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]


@dataclass
class FilePlan:
    """A split as image files under `root` (a folder, CelebA), decoded on all cores."""

    root: Path
    files: list[str]
    labels: np.ndarray
    classes: list[str]
    missing: list[int] = field(default_factory=list)  # listed by the source but not on disk


def cache_folder(cache_dir: str | Path, key: str, train: bool, size: int, channels) -> Path:
    return Path(cache_dir) / f"{key}-{'train' if train else 'test'}-{size}px-{channels}ch"


def read_cache(folder: Path, fingerprint: str) -> Split | None:
    """The cached split, or None when there is none or its source has changed since. A cache
    that cannot be read is said so and rebuilt."""
    info_file = folder / "info.json"
    if not info_file.is_file():
        return None
    try:
        info = json.loads(info_file.read_text())
        if info.get("format") != FORMAT or info.get("fingerprint") != fingerprint:
            log.info(f"{folder.name}: the source files changed since it was cached; rebuilding")
            return None
        shape = (info["count"], info["channels"], info["size"], info["size"])
        if (folder / "images.u8").stat().st_size != int(np.prod(shape)):
            raise ValueError("images.u8 has the wrong size")
        # Copy-on-write: torch gets a writable array, the file is never changed.
        images = np.memmap(folder / "images.u8", np.uint8, mode="c", shape=shape)
        labels = torch.from_numpy(np.load(folder / "labels.npy"))
        if len(labels) != shape[0]:
            raise ValueError("labels.npy does not match images.u8")
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning(f"the data cache {folder} is unreadable ({e}); rebuilding it")
        return None
    return Split(torch.from_numpy(images), labels, info["classes"], info["skipped"], folder)


def load_cached(
    folder: Path | None,
    fingerprint: str,
    plan: Callable[[], ArrayPlan | FilePlan],
    channels: int,
    size: int,
) -> Split:
    """The split cached in `folder` (built from `plan()` when missing or stale); with no folder,
    built in memory."""
    if folder is None:
        return _build_in_memory(plan(), channels, size)
    for _ in range(3):  # another run may replace the cache while we read it
        split = read_cache(folder, fingerprint)
        if split is not None:
            return split
        _build(folder, fingerprint, plan(), channels, size)
    raise DatasetError(f"the data cache {folder} keeps changing: is another run rebuilding it?")


def _build_in_memory(plan, channels: int, size: int) -> Split:
    images = np.empty((_count(plan), channels, size, size), np.uint8)
    bad = _fill(images, plan, channels, size, None)
    keep = _compact(images, bad)
    labels = np.delete(np.asarray(plan.labels), [i for i, _ in bad])
    return Split(torch.from_numpy(images[:keep]), torch.from_numpy(labels), plan.classes, len(bad))


def _count(plan) -> int:
    return len(plan.images) if isinstance(plan, ArrayPlan) else len(plan.files)


def _build(folder: Path, fingerprint: str, plan, channels: int, size: int) -> None:
    n = _count(plan)
    tmp = folder.with_name(f".build-{folder.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    start = time.perf_counter()
    try:
        tmp.mkdir(parents=True)
        data = tmp / "images.u8"
        nbytes = n * channels * size * size
        with open(data, "wb") as f:
            os.posix_fallocate(f.fileno(), 0, max(nbytes, 1))  # a full disk fails here, not later
        images = np.memmap(data, np.uint8, mode="r+", shape=(n, channels, size, size))
        bad = _fill(images, plan, channels, size, data)
        keep = _compact(images, bad)
        images.flush()
        del images
        os.truncate(data, keep * channels * size * size)
        labels = np.delete(np.asarray(plan.labels, dtype=np.int64), [i for i, _ in bad])
        np.save(tmp / "labels.npy", labels)
        skipped = [f"{name}\t{why}" for name, why in _named(plan, bad)]
        if skipped:
            (tmp / "skipped.txt").write_text("\n".join(skipped) + "\n")
        info = {
            "format": FORMAT, "fingerprint": fingerprint, "count": keep, "channels": channels,
            "size": size, "classes": plan.classes, "skipped": len(bad),
            "seconds": round(time.perf_counter() - start, 2),
        }  # fmt: skip
        (tmp / "info.json").write_text(json.dumps(info, indent=1))
        if keep == 0:
            why = f" ({bad[0][1]})" if bad else ""
            raise DatasetError(
                f"none of the {n} image files of {getattr(plan, 'root', folder)} could be read"
                f"{why}: put readable images (PNG, JPEG, ...) there"
            )
        _publish(tmp, folder)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS):
            raise DiskFullError(
                f"could not write the data cache {folder} ({e.strerror}): nothing was written; "
                "free some space (or set data.cache_dir to a folder with room) and run again"
            ) from e
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    seconds = time.perf_counter() - start
    log.info(
        f"cached {keep:,} images ({size}px, {channels} channel{'s' * (channels > 1)}) in "
        f"{folder} ({nbytes / 1e6:,.0f} MB) in {seconds:.1f}s, {n / max(seconds, 1e-9):,.0f} "
        "images/s"
    )
    if bad:
        shown = ", ".join(name for name, _ in _named(plan, bad[:3]))
        log.warning(
            f"skipped {len(bad)} unreadable image file{'s' * (len(bad) > 1)} of {n} ({shown}"
            f"{', ...' if len(bad) > 3 else ''}): all are listed in {folder / 'skipped.txt'}"
        )


def _named(plan, bad: list[tuple[int, str]]) -> list[tuple[str, str]]:
    if isinstance(plan, ArrayPlan):
        return [(f"#{i}", why) for i, why in bad]
    return [(str(plan.root / plan.files[i]), why) for i, why in bad]


def _publish(tmp: Path, folder: Path) -> None:
    """Move the finished cache into place in one rename; a stale one is moved aside first. If
    another run published first, its cache is as good as ours."""
    old = folder.with_name(f".old-{folder.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(folder, old)
    except FileNotFoundError:
        old = None
    try:
        os.rename(tmp, folder)
    except OSError as e:
        if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)  # readers that mapped it keep their pages


def _compact(images: np.ndarray, bad: list[tuple[int, str]]) -> int:
    """Close the gaps the skipped files left; returns how many images remain."""
    if not bad:
        return len(images)
    skip, write = {i for i, _ in bad}, 0
    for read in range(len(images)):
        if read not in skip:
            if read != write:
                images[write] = images[read]
            write += 1
    return write


def _fill(images: np.ndarray, plan, channels: int, size: int, path: Path | None) -> list:
    """Decode and resize the plan into `images`; returns [(index, why)] of unreadable files."""
    if isinstance(plan, ArrayPlan):
        for start in range(0, len(plan.images), 8192):
            batch = to_channels(plan.images[start : start + 8192], channels)
            images[start : start + len(batch)] = resize_square(batch, size).numpy()
        return []
    return _decode_files(images, plan, channels, size, path)


# Files per task sent to a worker, and below how many files the pool is not worth starting.
CHUNK, PARALLEL_FROM = 256, 2048


def _decode_files(images, plan: FilePlan, channels: int, size: int, path: Path | None) -> list:
    n, bad = len(plan.files), [(i, "file not found") for i in plan.missing]
    skip = {i for i, _ in bad}
    tasks = [
        (plan.root, plan.files[s : s + CHUNK], s, skip, channels, size, path, images.shape)
        for s in range(0, n, CHUNK)
    ]
    bar = tqdm(total=n, unit="img", desc="caching images", disable=None, smoothing=0.1)
    workers = min(len(os.sched_getaffinity(0)), len(tasks))
    if path is None or n < PARALLEL_FROM or workers < 2:
        results = (_decode_chunk(t, images) for t in tasks)
        bad += _collect(results, bar)
    else:
        # fork: the workers inherit the imports (a spawned one would pay seconds importing torch).
        with multiprocessing.get_context("fork").Pool(workers, _one_thread) as pool:
            bad += _collect(pool.imap_unordered(_decode_chunk, tasks), bar)
    bar.close()
    return sorted(bad)


def _collect(results, bar) -> list:
    bad = []
    for done, chunk_bad in results:
        bad += chunk_bad
        bar.update(done)
    return bad


def _one_thread() -> None:
    torch.set_num_threads(1)  # one process per core already


def _decode_chunk(task, images: np.ndarray | None = None):
    """Decode one chunk of files into rows [start, start + len) of the cache; (count, bad)."""
    from cvae_lightning.data.decode import decode_resized

    root, files, start, skip, channels, size, path, shape = task
    if images is None:
        images = np.memmap(path, np.uint8, mode="r+", shape=shape)
    bad = []
    for i, name in enumerate(files, start):
        if i in skip:
            continue
        try:
            images[i] = decode_resized(root / name, channels, size).numpy()
        except Exception as e:  # any file Pillow cannot read is skipped and named
            bad.append((i, f"{type(e).__name__}: {e}".replace("\n", " ")))
    if isinstance(images, np.memmap):
        images.flush()
    return len(files), bad
