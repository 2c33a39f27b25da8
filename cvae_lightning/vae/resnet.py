"""A deeper, wider encoder and decoder for colour images and larger sizes (`model=resnet`), in
plain PyTorch: the same interface as the reference's (reference.py), so everything that takes a
CVAE takes this one.

Encoder: a stem conv at full size, then one stage per halving, down to `bottom` px (4 or 8):
a stride-2 conv to the stage's width, then `blocks` residual blocks. The widths double from
`width` up to `max_width`. The head is either a vector latent (flatten, two linear heads, as
the reference) or, with `latent_map` > 0, a small spatial map of `latent_map` channels at
`bottom` px (1x1 conv heads), flattened to one vector of latent_map * bottom^2 values, so the
densities, the explorer and the exports see a vector either way. The decoder mirrors it with
nearest upsampling + conv per stage and a sigmoid output. A conditional model gets the label as
FiLM at every stage (as the reference's) and beside the heads.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cvae_lightning.vae.layers import LEAKY_SLOPE, LOGVAR_MAX, LOGVAR_MIN, LabelFilm, with_label

NORMS = ("batch", "group")


def norm_layer(kind: str, channels: int) -> nn.Module:
    # 8 channels a group at most 32 groups: GroupNorm's usual shape, independent of the batch.
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.GroupNorm(min(32, max(1, channels // 8)), channels)


def conv_norm_act(c_in: int, c_out: int, norm: str, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        norm_layer(norm, c_out),
        nn.LeakyReLU(LEAKY_SLOPE),
    )


class ResidualBlock(nn.Module):
    """x + norm(conv(act(norm(conv(x))))), then the activation."""

    def __init__(self, channels: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(
            conv_norm_act(channels, channels, norm),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            norm_layer(norm, channels),
        )
        self.act = nn.LeakyReLU(LEAKY_SLOPE)
        # The residual starts at zero (Goyal et al. 2017): each block begins as the identity,
        # so a deep network trains from the start like a shallow one.
        nn.init.zeros_(self.body[-1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


def stage_widths(image_size: int, bottom: int, width: int, max_width: int) -> list[int]:
    """The width after the stem and after each halving: [stem, stage 1, ..., stage n]."""
    stages = int(math.log2(image_size // bottom))
    return [min(width * 2**i, max_width) for i in range(stages + 1)]


def check_resnet(
    latent: int, image_size: int, channels: int, width: int, max_width: int, blocks: int,
    norm: str, bottom: int, latent_map: int,
) -> None:  # fmt: skip
    """Refuse sizes this architecture cannot take, naming the key and what is allowed."""
    if bottom not in (4, 8):
        raise ValueError(f"model.bottom={bottom} is invalid: use 4 or 8 (the smallest feature map)")
    halvings = image_size // bottom
    if image_size < bottom * 2 or image_size % bottom or halvings & (halvings - 1):
        raise ValueError(
            f"data.image_size={image_size} is invalid for model=resnet: it must be {bottom} "
            f"times a power of 2 (>= {2 * bottom}), e.g. 32, 64 or 128"
        )
    least = {"latent": 1, "width": 8, "blocks": 0, "latent_map": 0, "channels": 1}
    values = {"latent": latent, "width": width, "blocks": blocks, "latent_map": latent_map,
              "channels": channels}  # fmt: skip
    for key, value in values.items():
        if value < least[key]:
            raise ValueError(f"model.{key}={value} is invalid: it must be >= {least[key]}")
    if max_width < width:
        raise ValueError(f"model.max_width={max_width} is invalid: it must be >= model.width")
    if norm not in NORMS:
        raise ValueError(f"model.norm={norm!r} is invalid: use {' or '.join(NORMS)}")
    if latent_map and latent != latent_map * bottom**2:
        raise ValueError(
            f"model.latent={latent} is invalid with model.latent_map={latent_map}: a spatial "
            f"latent has latent_map * bottom^2 = {latent_map * bottom**2} values"
        )


class ResEncoder(nn.Module):
    """x (B, C, S, S) in [0, 1] -> (mu, logvar), each (B, latent); logvar clamped."""

    def __init__(
        self, latent: int, image_size: int, channels: int, num_classes: int, width: int,
        max_width: int, blocks: int, norm: str, bottom: int, latent_map: int,
    ):  # fmt: skip
        super().__init__()
        widths = stage_widths(image_size, bottom, width, max_width)
        self.stem = conv_norm_act(channels, widths[0], norm)
        self.stages = nn.ModuleList(
            nn.Sequential(
                conv_norm_act(c_in, c_out, norm, stride=2),
                *(ResidualBlock(c_out, norm) for _ in range(blocks)),
            )
            for c_in, c_out in zip(widths, widths[1:], strict=False)
        )
        self.label_film = LabelFilm(num_classes, tuple(widths[1:])) if num_classes else None
        self.latent_map = latent_map
        if latent_map:  # a spatial map: 1x1 heads (the label reached it through the FiLMs)
            self.mu = nn.Conv2d(widths[-1], latent_map, 1)
            self.logvar = nn.Conv2d(widths[-1], latent_map, 1)
        else:
            flat = widths[-1] * bottom**2 + num_classes
            self.mu, self.logvar = nn.Linear(flat, latent), nn.Linear(flat, latent)
        nn.init.zeros_(self.mu.bias)
        nn.init.zeros_(self.logvar.bias)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.stem(x)
        for stage, layer in enumerate(self.stages):
            h = layer(h)
            if self.label_film is not None and y is not None:
                h = self.label_film(stage, h, y)
        if self.latent_map:
            mu, logvar = self.mu(h).flatten(1), self.logvar(h).flatten(1)
        else:
            h = with_label(h.flatten(1), y)
            mu, logvar = self.mu(h), self.logvar(h)
        return mu, logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)


class ResDecoder(nn.Module):
    """z (B, latent) [+ one-hot label] -> x_rec (B, C, S, S) in (0, 1)."""

    def __init__(
        self, latent: int, image_size: int, channels: int, num_classes: int, width: int,
        max_width: int, blocks: int, norm: str, bottom: int, latent_map: int,
    ):  # fmt: skip
        super().__init__()
        widths = stage_widths(image_size, bottom, width, max_width)[::-1]
        self.shape = (widths[0], bottom, bottom)
        self.latent_map = latent_map
        if latent_map:
            self.input = nn.Conv2d(latent_map + num_classes, widths[0], 1)
        else:
            self.input = nn.Linear(latent + num_classes, widths[0] * bottom**2)
        self.stages = nn.ModuleList(
            nn.Sequential(
                *(ResidualBlock(c_in, norm) for _ in range(blocks)),
                nn.Upsample(scale_factor=2, mode="nearest"),
                conv_norm_act(c_in, c_out, norm),
            )
            for c_in, c_out in zip(widths, widths[1:], strict=False)
        )
        self.out = nn.Sequential(nn.Conv2d(widths[-1], channels, 3, padding=1), nn.Sigmoid())
        self.label_film = LabelFilm(num_classes, tuple(widths[1:])) if num_classes else None

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.latent_map:
            s = self.shape[1]
            h = z.view(-1, self.latent_map, s, s)
            if y is not None:  # the label as constant maps beside the code
                h = torch.cat([h, y.to(h.dtype)[:, :, None, None].expand(-1, -1, s, s)], 1)
            h = self.input(h)
        else:
            h = self.input(with_label(z, y)).view(-1, *self.shape)
        for stage, layer in enumerate(self.stages):
            h = layer(h)
            if self.label_film is not None and y is not None:
                h = self.label_film(stage, h, y)
        return self.out(h)
