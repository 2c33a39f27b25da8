"""What the dataset makers share: the command line (DIR, --n, --size, --seed) and the writing
of DIR/<class>/<index>.png, the classes in turn, every image drawn from one seeded generator."""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable
from pathlib import Path

from PIL import Image


def write_class_folders(
    description: str,
    classes: tuple[str, ...],
    draw: Callable[[str, int, random.Random], Image.Image],
) -> None:
    """Parse the command line, then write `--n` images of `classes` (drawn by
    draw(class, size, rng)) under DIR/<class>/."""
    parser = argparse.ArgumentParser(description=description.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--n", type=int, default=12_000, help="images in all")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    for name in classes:
        (args.out / name).mkdir(parents=True, exist_ok=True)
    for i in range(args.n):
        name = classes[i % len(classes)]
        draw(name, args.size, rng).save(args.out / name / f"{i:06d}.png")
    print(f"wrote {args.n} images of {len(classes)} classes to {args.out}")
