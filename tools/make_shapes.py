"""Write a small colour dataset to try data=folder on, with nothing to download:

    uv run tools/make_shapes.py DIR [--n 12000] [--size 64] [--seed 0]

DIR/<shape>/<index>.png for six shapes (circle, square, triangle, cross, ring, diamond), each
a random colour on a random contrasting background, at a random place, size and angle. Then:
`uv run train.py data=folder data.path=DIR` and `uv run train_classifier.py data=folder
data.path=DIR` (eval.py finds that classifier by itself).
"""

from __future__ import annotations

import colorsys
import math
import random

from PIL import Image, ImageDraw

from class_folders import write_class_folders

SHAPES = ("circle", "square", "triangle", "cross", "ring", "diamond")


def colour(rng: random.Random, lightness: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hls_to_rgb(rng.random(), lightness, rng.uniform(0.5, 1.0))
    return int(r * 255), int(g * 255), int(b * 255)


def polygon(cx, cy, r, corners, angle) -> list[tuple[float, float]]:
    return [
        (cx + r * math.cos(angle + 2 * math.pi * k / corners),
         cy + r * math.sin(angle + 2 * math.pi * k / corners))
        for k in range(corners)
    ]  # fmt: skip


def draw(shape: str, size: int, rng: random.Random) -> Image.Image:
    """One image: a shape of random colour, place, size and angle on a contrasting ground."""
    dark = rng.random() < 0.5
    img = Image.new("RGB", (size, size), colour(rng, 0.2 if dark else 0.8))
    d, fill = ImageDraw.Draw(img), colour(rng, 0.7 if dark else 0.3)
    r = rng.uniform(0.18, 0.32) * size
    cx, cy = (rng.uniform(r + 2, size - r - 2) for _ in range(2))
    angle = rng.uniform(0, 2 * math.pi)
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        d.ellipse(box, fill=fill)
    elif shape == "ring":
        d.ellipse(box, outline=fill, width=max(2, int(r / 3)))
    elif shape == "square":
        d.polygon(polygon(cx, cy, r * 1.2, 4, angle), fill=fill)
    elif shape == "diamond":  # a rhombus: long along one axis
        a, b = r * 1.25, r * 0.6
        pts = [(a, 0), (0, b), (-a, 0), (0, -b)]
        c, s = math.cos(angle), math.sin(angle)
        d.polygon([(cx + x * c - y * s, cy + x * s + y * c) for x, y in pts], fill=fill)
    elif shape == "triangle":
        d.polygon(polygon(cx, cy, r * 1.2, 3, angle), fill=fill)
    else:  # cross: two bars
        w = r / 2.5
        for rot in (angle, angle + math.pi / 2):
            c, s = math.cos(rot), math.sin(rot)
            bar = [(-r, -w), (r, -w), (r, w), (-r, w)]
            d.polygon([(cx + x * c - y * s, cy + x * s + y * c) for x, y in bar], fill=fill)
    return img


if __name__ == "__main__":
    write_class_folders(__doc__, SHAPES, draw)
