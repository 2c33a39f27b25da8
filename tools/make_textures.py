"""Write a labelled colour dataset of textures (more texture, less shape than make_shapes.py),
with nothing to download:

    uv run tools/make_textures.py DIR [--n 12000] [--size 64] [--seed 0]

DIR/<texture>/<index>.png for six textures (stripes, checks, dots, waves, rings, bricks), each
in a random pair of contrasting colours, at a random scale, angle and phase, under a soft
random lighting gradient with a little film grain; drawn at twice the size and downsampled, so
edges are anti-aliased. Then `uv run train.py data=folder data.path=DIR` and
`uv run train_classifier.py data=folder data.path=DIR` (eval.py finds that classifier).
"""

from __future__ import annotations

import colorsys
import math
import random

import numpy as np
from PIL import Image

from class_folders import write_class_folders

TEXTURES = ("stripes", "checks", "dots", "waves", "rings", "bricks")
SUPERSAMPLE = 2


def palette(rng: random.Random) -> tuple[np.ndarray, np.ndarray]:
    """Two colours of different hue and lightness, so the pattern always shows."""
    hue = rng.random()
    light = rng.uniform(0.15, 0.35)

    def rgb(h: float, lightness: float) -> np.ndarray:
        return np.array(colorsys.hls_to_rgb(h % 1.0, lightness, rng.uniform(0.4, 1.0)))

    return rgb(hue, light), rgb(hue + rng.uniform(0.15, 0.85), light + rng.uniform(0.35, 0.55))


def pattern(texture: str, u: np.ndarray, v: np.ndarray, rng: random.Random) -> np.ndarray:
    """A mask in [0, 1] over the rotated, scaled coordinates (u, v) (one period ~ 1 unit)."""
    phase = rng.random()
    if texture == "stripes":
        duty = rng.uniform(0.3, 0.7)
        return ((u + phase) % 1.0 < duty).astype(float)
    if texture == "checks":
        return (np.floor(u + phase) + np.floor(v + phase)) % 2
    if texture == "dots":
        r = rng.uniform(0.2, 0.4)
        du, dv = (u + phase) % 1.0 - 0.5, (v + phase) % 1.0 - 0.5
        return (du**2 + dv**2 < r**2).astype(float)
    if texture == "waves":
        amp, freq = rng.uniform(0.15, 0.35), rng.uniform(0.3, 0.7)
        return (np.sin(2 * math.pi * (u + amp * np.sin(2 * math.pi * freq * v) + phase)) > 0) * 1.0
    if texture == "rings":
        cu, cv = rng.uniform(-1.5, 1.5), rng.uniform(-1.5, 1.5)
        return (np.sin(2 * math.pi * (np.hypot(u - cu, v - cv) + phase)) > 0) * 1.0
    # bricks: rows of bricks twice as long as high, every other row offset by half a brick
    row = np.floor(2 * v + phase)
    along = (u + 0.5 * (row % 2) + phase) % 1.0
    across = (2 * v + phase) % 1.0
    mortar = rng.uniform(0.06, 0.12)
    return ((along > mortar) & (across > 2 * mortar)).astype(float)


def draw(texture: str, size: int, rng: random.Random) -> Image.Image:
    """One image of `texture`: two colours, a random period (3 to 8 per image), angle and
    phase, a lighting gradient and grain."""
    n = size * SUPERSAMPLE
    ys, xs = np.mgrid[0:n, 0:n] / n - 0.5  # the image spans [-0.5, 0.5)
    angle, periods = rng.uniform(0, math.pi), rng.uniform(3.0, 8.0)
    c, s = math.cos(angle), math.sin(angle)
    u, v = periods * (c * xs + s * ys), periods * (-s * xs + c * ys)
    mask = pattern(texture, u, v, rng)[..., None]
    dark, light = palette(rng)
    if rng.random() < 0.5:
        dark, light = light, dark
    image = dark * (1 - mask) + light * mask
    lit = rng.uniform(0, 2 * math.pi)
    gradient = 1 + rng.uniform(0.0, 0.35) * (math.cos(lit) * xs + math.sin(lit) * ys)
    image = np.clip(image * gradient[..., None], 0, 1)
    picture = Image.fromarray((image * 255).round().astype(np.uint8)).resize(
        (size, size), Image.Resampling.BOX
    )
    grain = np.random.default_rng(rng.getrandbits(32)).normal(0, 3.0, (size, size, 3))
    pixels = np.clip(np.asarray(picture, float) + grain, 0, 255).round().astype(np.uint8)
    return Image.fromarray(pixels)


if __name__ == "__main__":
    write_class_folders(__doc__, TEXTURES, draw)
