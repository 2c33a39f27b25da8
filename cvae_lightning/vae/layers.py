"""Pieces every architecture shares (plain PyTorch): the logvar clamp, the activation's slope,
the label as FiLM and beside features, and the reparameterisation."""

from __future__ import annotations

import torch
from torch import nn

# The reference clamps logvar so exp() neither overflows nor collapses to zero.
LOGVAR_MIN, LOGVAR_MAX = -20.0, 10.0
LEAKY_SLOPE = 0.01


def with_label(h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """Append the label to features: y is (B,) class indices or (B, K) one-hot/soft labels."""
    return h if y is None else torch.cat([h, y.to(h.dtype)], dim=1)


class LabelFilm(nn.Module):
    """The label as a per-channel scale and shift (FiLM) at each stage of a conditional network.

    Fed only through one layer, the label gets ignored in favour of z: the encoder leaves the
    digit's identity in z and the decoder reads it from there, so `digit=7` draws other digits.
    At every stage the encoder can take the class out of z, and the decoder put it back.
    """

    def __init__(self, num_classes: int, channels: tuple[int, ...]):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(num_classes, 2 * c) for c in channels)

    def forward(self, stage: int, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        scale, shift = self.layers[stage](y.to(h.dtype))[:, :, None, None].chunk(2, dim=1)
        return h * (1 + scale) + shift


def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None
) -> torch.Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I) (drawn here unless given), differentiable in mu
    and logvar."""
    eps = torch.randn_like(mu) if eps is None else eps
    return mu + torch.exp(0.5 * logvar) * eps
