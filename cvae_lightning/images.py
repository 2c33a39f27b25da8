"""Images between their forms: a (C, H, W) float tensor in [0, 1] (what the models and
torchvision draw) as uint8 pixels, a numpy array or a Pillow image, and back. One rounding
rule for every picture the project writes, shows or sends."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """(C, H, W) floats in [0, 1] -> (C, H, W) uint8 on the CPU (clamped, rounded)."""
    return image.detach().float().cpu().clamp(0, 1).mul(255).round().to(torch.uint8)


def to_array(image: torch.Tensor, rgb: bool = False) -> np.ndarray:
    """(C, H, W) floats in [0, 1] -> (H, W, C) uint8; a grey image as (H, W), or as three equal
    channels with `rgb`."""
    pixels = to_uint8(image)
    if pixels.shape[0] == 1:
        if not rgb:
            return pixels[0].numpy()
        pixels = pixels.expand(3, -1, -1)
    return pixels.permute(1, 2, 0).contiguous().numpy()


def to_pil(image: torch.Tensor) -> Image.Image:
    """(C, H, W) floats in [0, 1] -> an RGB Pillow image."""
    return Image.fromarray(to_array(image, rgb=True))


def from_pil(image: Image.Image) -> torch.Tensor:
    """A Pillow image -> (3, H, W) floats in [0, 1]."""
    pixels = torch.from_numpy(np.asarray(image.convert("RGB")).copy())
    return pixels.permute(2, 0, 1).float() / 255
