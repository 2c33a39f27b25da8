"""Own-image data measured against MNIST's gz files, in one run on one machine:

    uv run benchmarks/image_folders.py --work /tmp/folders

1. MNIST's 70,000 images written as PNG files in class folders (train/<digit>/, test/<digit>/,
   named by index) and cached with data=folder: images/s of the cache build, and whether the
   cached pixels equal data=mnist's.
2. JPEGs of CelebA's size (178x218, made here) cached at 64 px: images/s.
3. Training throughput from data=folder against data=mnist, same size, precision and channels,
   alternated in the same process (the project's real training loop, as benchmarks/throughput.py
   times it): the ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.throughput import compose_project, run_project  # noqa: E402
from cvae_lightning.data import load_split, make_source  # noqa: E402


def write_mnist_pngs(out: Path) -> Path:
    """data/MNIST as PNG files: out/{train,test}/<digit>/<index>.png (once)."""
    done = out / ".complete"
    if done.is_file():
        return out
    mnist = make_source("mnist", ROOT / "data")
    for train, split in ((True, "train"), (False, "test")):
        images, labels = mnist.read(train)
        for d in range(10):
            (out / split / str(d)).mkdir(parents=True, exist_ok=True)
        for i, (x, y) in enumerate(zip(images.numpy(), labels.tolist(), strict=True)):
            Image.fromarray(x).save(out / split / str(y) / f"{i:05d}.png")
    done.touch()
    return out


def write_jpegs(out: Path, n: int) -> Path:
    """n JPEGs of CelebA's aligned size (178x218): smooth colour fields with a face-sized oval."""
    done = out / ".complete"
    if done.is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:218, 0:178]
    for i in range(n):
        base = rng.integers(0, 256, 3)
        a = np.empty((218, 178, 3), np.float32)
        a[:] = base
        a += (xx[..., None] / 178.0) * rng.integers(-80, 80, 3)
        oval = ((xx - 89) / 50.0) ** 2 + ((yy - 115) / 70.0) ** 2 < 1
        a[oval] = rng.integers(100, 240, 3)
        a += rng.normal(0, 6, a.shape)
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(out / f"{i:06d}.jpg", quality=90)
    done.touch()
    return out


def timed_build(source, size: int, cache: Path) -> tuple[float, int]:
    """Seconds to cache both splits from scratch, and how many images they hold."""
    shutil.rmtree(cache, ignore_errors=True)
    start = time.perf_counter()
    n = sum(len(load_split(source, t, size, "auto", cache).images) for t in (True, False))
    return time.perf_counter() - start, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "folders")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--jpegs", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=60, help="timed training steps per turn")
    parser.add_argument("--turns", type=int, default=3, help="alternations mnist/folder")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    print(f"CPU cores: {cores}; torch {torch.__version__}; image size {args.size}")

    pngs = write_mnist_pngs(args.work / "mnist_png")
    folder = make_source("folder", path=pngs)
    seconds, n = timed_build(folder, args.size, args.work / "cache_png")
    print(f"cache build, MNIST as 28px PNGs: {n:,} images in {seconds:.1f}s = {n / seconds:,.0f} "
          "images/s (scan, colour probe, decode, resize, write)")  # fmt: skip
    mnist = make_source("mnist", ROOT / "data")
    same = all(
        torch.equal(
            load_split(folder, t, args.size, "auto", args.work / "cache_png").images,
            load_split(mnist, t, args.size, "auto", args.work / "cache_mnist").images,
        )
        and torch.equal(
            load_split(folder, t, args.size, "auto", args.work / "cache_png").labels,
            load_split(mnist, t, args.size, "auto", args.work / "cache_mnist").labels,
        )
        for t in (True, False)
    )
    print(f"data=folder cached pixels and labels equal data=mnist's: {same}")

    jpegs = write_jpegs(args.work / "jpeg_178x218" / "all", args.jpegs)
    seconds, n = timed_build(make_source("folder", path=jpegs.parent), args.size, args.work / "c")
    print(f"cache build, 178x218 JPEGs: {n:,} images in {seconds:.1f}s = {n / seconds:,.0f} "
          "images/s")  # fmt: skip

    common = [
        f"data.image_size={args.size}",
        "callbacks.progress_bar=null",
        "callbacks.latent=null",
    ]
    sides = {
        "mnist": [*common, f"data.cache_dir={args.work / 'cache_mnist'}"],
        "folder": [*common, "data=folder", f"data.path={pngs}",
                   f"data.cache_dir={args.work / 'cache_png'}"],
    }  # fmt: skip
    rates: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(args.turns):
        for name, overrides in sides.items():
            with tempfile.TemporaryDirectory() as out:
                cfg = compose_project(128, 2 + args.steps, Path(out), overrides)
                rates[name].append(run_project(cfg, warmup=2))
    best = {k: max(v) for k, v in rates.items()}
    print(
        f"training, batch 128, {cfg.trainer.precision}, channels_last: "
        + ", ".join(f"{k} {v:,.0f} im/s" for k, v in best.items())
        + f"; folder / mnist = {best['folder'] / best['mnist']:.3f} (best of {args.turns} each)"
    )


if __name__ == "__main__":
    main()
