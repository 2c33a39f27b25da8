"""The reference recipe's encoder and decoder (the Lux.jl / MLX tutorial's network): three
stride-2 conv stages of max_filters / 4, / 2 and max_filters, BatchNorm and LeakyReLU, linear
heads; nearest upsampling back, a sigmoid out. Plain PyTorch."""

from __future__ import annotations

import torch
from torch import nn

from cvae_lightning.vae.layers import (
    LEAKY_SLOPE,
    LOGVAR_MAX,
    LOGVAR_MIN,
    LabelFilm,
    with_label,
)


def check_architecture(latent: int, max_filters: int, image_size: int, channels: int) -> None:
    """Refuse sizes the architecture cannot take, naming the key and what is allowed."""
    if latent < 1:
        raise ValueError(f"model.latent={latent} is invalid: the latent size must be >= 1")
    if max_filters < 4 or max_filters % 4:
        raise ValueError(
            f"model.max_filters={max_filters} is invalid: it must be a positive multiple of 4"
        )
    if image_size < 8 or image_size % 8:
        raise ValueError(
            f"data.image_size={image_size} is invalid: it must be a positive multiple of 8 "
            "(the encoder halves it three times)"
        )
    if channels < 1:
        raise ValueError(f"model.channels={channels} is invalid: it must be >= 1")


def conv_bn_act(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(LEAKY_SLOPE),
    )


class Encoder(nn.Module):
    """x (B, C, S, S) in [0, 1] -> (mu, logvar), each (B, latent); logvar already clamped.

    With `num_classes` > 0 every stage and the heads also see the one-hot label.
    """

    def __init__(
        self, latent: int, max_filters: int, image_size: int, channels: int, num_classes: int = 0
    ):
        super().__init__()
        f = max_filters
        self.features = nn.Sequential(
            conv_bn_act(channels, f // 4, stride=2),
            conv_bn_act(f // 4, f // 2, stride=2),
            conv_bn_act(f // 2, f, stride=2),
            nn.Flatten(),
        )
        self.label_film = LabelFilm(num_classes, (f // 4, f // 2, f)) if num_classes else None
        flat = f * (image_size // 8) ** 2 + num_classes
        self.mu = nn.Linear(flat, latent)
        self.logvar = nn.Linear(flat, latent)
        # The reference initialises both heads' biases to zero.
        nn.init.zeros_(self.mu.bias)
        nn.init.zeros_(self.logvar.bias)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.label_film is None or y is None:
            h = self.features(x)
        else:
            h = x
            for stage, layer in enumerate(self.features[:-1]):
                h = self.label_film(stage, layer(h), y)
            h = self.features[-1](h)
        h = with_label(h, y)
        return self.mu(h), self.logvar(h).clamp(LOGVAR_MIN, LOGVAR_MAX)


class Decoder(nn.Module):
    """z (B, latent) [+ one-hot label] -> x_rec (B, C, S, S) in (0, 1)."""

    def __init__(
        self, latent: int, max_filters: int, image_size: int, channels: int, num_classes: int = 0
    ):
        super().__init__()
        f, s = max_filters, image_size // 8
        self.shape = (f, s, s)
        self.linear = nn.Linear(latent + num_classes, f * s * s)
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            conv_bn_act(f, f // 2, stride=1),
            nn.Upsample(scale_factor=2, mode="nearest"),
            conv_bn_act(f // 2, f // 4, stride=1),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(f // 4, channels, kernel_size=3, padding=1),
            nn.Sigmoid(),
        )
        self.label_film = LabelFilm(num_classes, (f, f // 2, f // 4)) if num_classes else None

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.linear(with_label(z, y)).view(-1, *self.shape)
        stage = 0
        for layer in self.up:
            h = layer(h)
            if self.label_film is not None and y is not None and isinstance(layer, nn.Upsample):
                h, stage = self.label_film(stage, h, y), stage + 1
        return h
