"""Image files to uint8 arrays with Pillow: every mode a user's folder holds (palette, RGBA,
16-bit, CMYK, EXIF-rotated) becomes grey or RGB the way a viewer would show it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from cvae_lightning.data.resize import resize_square

# What counts as an image file (torchvision ImageFolder's list, plus WebP and TIFF); any other
# file in a folder is not an image and is ignored.
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
)
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def has_colour(path: Path) -> bool:
    """Whether the file holds colour, from its header alone (a grey palette counts as grey)."""
    with Image.open(path) as img:
        if img.mode == "P":
            palette = img.getpalette() or []
            palette = np.asarray(palette, np.uint8).reshape(-1, 3)
            return bool((palette != palette[:, :1]).any())
        return img.mode not in GREY_MODES


def _flatten_alpha(img: Image.Image) -> Image.Image:
    """Transparent pixels become white, as a page would show them."""
    rgba = img.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _sixteen_bit_to_grey(img: Image.Image) -> Image.Image:
    """16/32-bit integer and float grey images scaled into 0..255 (Pillow's own convert would
    clip them at 255)."""
    a = np.asarray(img)
    if img.mode == "F":
        a = np.clip(a, 0.0, 1.0) * 255.0 if a.max() <= 1.0 else np.clip(a, 0.0, 255.0)
    else:
        a = a.astype(np.float64) / (65535.0 / 255.0)
    return Image.fromarray(np.rint(a).astype(np.uint8), "L")


def read_image(path: Path, channels: int) -> np.ndarray:
    """The file as (H, W, channels) uint8: EXIF rotation applied, GIF's first frame, palette
    and alpha flattened on white, 16-bit scaled, CMYK to RGB, then grey or RGB."""
    with Image.open(path) as img:
        img.seek(0)
        img = ImageOps.exif_transpose(img)
        img.load()
    return image_array(img, channels)


def image_array(img: Image.Image, channels: int) -> np.ndarray:
    """A Pillow image as (H, W, channels) uint8, as every file is read: palette and alpha
    flattened on white, 16-bit scaled, CMYK to RGB, then grey or RGB."""
    if img.mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        img = _sixteen_bit_to_grey(img)
    if img.mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        img = _flatten_alpha(img)
    img = img.convert("L" if channels == 1 else "RGB")
    a = np.array(img)  # a writable copy: torch takes it as it is
    return a[:, :, None] if a.ndim == 2 else a


def decode_resized(path: Path, channels: int, size: int) -> torch.Tensor:
    """One file as (channels, size, size) uint8, resized like every other source."""
    return resized(read_image(path, channels), size)


def resized(a: np.ndarray, size: int) -> torch.Tensor:
    """(H, W, C) uint8 -> (C, size, size) uint8, resized like every other source."""
    return resize_square(torch.from_numpy(a).permute(2, 0, 1)[None], size)[0]
