"""The one resize every source goes through, so the same picture gives the same pixels whether
it came from MNIST's gz files, CIFAR-10's batches or a PNG in a folder."""

from __future__ import annotations

import torch
from torchvision.transforms.v2 import functional as TF


def resize_square(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) uint8 -> (N, C, size, size) uint8: the shorter side scaled to `size`
    (bilinear, antialiased), then centre-cropped."""
    if images.shape[-2:] != (size, size):
        images = TF.resize(images, [size], antialias=True)
        images = TF.center_crop(images, [size, size])
    return images.contiguous()


def to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """(N, 1 or 3, H, W) uint8 -> `channels`: grey repeated into RGB, or RGB to luma with
    Pillow's ITU-R 601-2 weights, in its fixed point (Image.convert("L") to the bit)."""
    have = images.shape[1]
    if have == channels:
        return images
    if channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    weights = torch.tensor([19595, 38470, 7471], dtype=torch.int32).view(1, 3, 1, 1)
    luma = (images.to(torch.int32) * weights).sum(1, keepdim=True)
    return ((luma + 0x8000) >> 16).to(torch.uint8)
