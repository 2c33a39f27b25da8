"""The convolutional VAE: the reference recipe's network and the container every architecture
shares (encode, decode, sample), in plain PyTorch (no Lightning, no Hydra)."""

from __future__ import annotations

import torch
from torch import nn

from cvae_lightning.layers import (
    LEAKY_SLOPE,
    LOGVAR_MAX,
    LOGVAR_MIN,
    LabelFilm,
    reparameterize,
    with_label,
)
from cvae_lightning.likelihood import KINDS as LIKELIHOODS
from cvae_lightning.likelihood import GaussianLikelihood
from cvae_lightning.resnet import ResDecoder, ResEncoder, check_resnet


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


# Each architecture's own keys, with their defaults: the reference's (this file) and the deeper
# one for colour and larger images (resnet.py).
ARCHITECTURES = {
    "reference": {"max_filters": 64},
    "resnet": {
        "width": 16, "max_width": 256, "blocks": 1, "norm": "batch", "bottom": 8, "latent_map": 2,
    },
}  # fmt: skip


def model_kwargs(hp: dict) -> dict:
    """The CVAE arguments among saved hyperparameters (a checkpoint's, a config.json's); what a
    checkpoint written before a key existed lacks gets that key's old value."""
    architecture = hp.get("architecture", "reference")
    keys = ("latent", "image_size", "channels", "likelihood", *ARCHITECTURES.get(architecture, {}))
    return {"architecture": architecture, **{k: hp[k] for k in keys if k in hp}}


def check_model(
    latent: int, image_size: int, channels: int, architecture: str = "reference",
    likelihood: str = "fixed", max_filters: int = 64, **options,
) -> dict:  # fmt: skip
    """Refuse a model the settings cannot make, naming the key and what is allowed; returns
    the architecture's own keys with their defaults filled in."""
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"model.architecture={architecture!r} is invalid: choose one of "
            f"{', '.join(ARCHITECTURES)}"
        )
    if likelihood not in LIKELIHOODS:
        raise ValueError(
            f"model.likelihood={likelihood!r} is invalid: choose one of {', '.join(LIKELIHOODS)}"
        )
    unknown = sorted(set(options) - set(ARCHITECTURES[architecture]))
    if unknown:
        raise ValueError(f"model.{unknown[0]} is not a key of model.architecture={architecture}")
    if architecture == "reference":
        check_architecture(latent, max_filters, image_size, channels)
        return {"max_filters": max_filters}
    shape = {**ARCHITECTURES["resnet"], **options}
    check_resnet(latent, image_size, channels, **shape)
    return shape


class CVAE(nn.Module):
    """Encoder + decoder + the decoder's likelihood; forward returns (x_rec, mu, logvar).

    `architecture`: "reference" (the recipe's three-stage network, `max_filters`) or "resnet"
    (resnet.py; its keys in `options`: width, max_width, blocks, norm, bottom, latent_map).
    `likelihood`: the decoder's Gaussian, "fixed" (the reference) or calibrated
    (likelihood.py). `num_classes` > 0 makes it class-conditional: every method then takes
    labels `y`, either class indices (B,) or one-hot rows (B, num_classes); 0 keeps the
    reference model exactly.
    """

    def __init__(
        self,
        latent: int = 8,
        max_filters: int = 64,
        image_size: int = 64,
        channels: int = 1,
        num_classes: int = 0,
        architecture: str = "reference",
        likelihood: str = "fixed",
        **options,
    ):
        super().__init__()
        shape = check_model(latent, image_size, channels, architecture, likelihood, max_filters,
                            **options)  # fmt: skip
        self.latent, self.num_classes, self.channels = latent, num_classes, channels
        self.image_size, self.architecture = image_size, architecture
        if architecture == "reference":
            self.encoder = Encoder(latent, max_filters, image_size, channels, num_classes)
            self.decoder = Decoder(latent, max_filters, image_size, channels, num_classes)
        else:
            self.encoder = ResEncoder(latent, image_size, channels, num_classes, **shape)
            self.decoder = ResDecoder(latent, image_size, channels, num_classes, **shape)
        self.likelihood = GaussianLikelihood(likelihood, channels)

    def one_hot(self, y: torch.Tensor | None, n: int) -> torch.Tensor | None:
        """Labels as (n, num_classes) rows; None for an unconditional model."""
        if not self.num_classes:
            return None
        if y is None:
            raise ValueError("this model is class-conditional: pass labels y")
        if y.dim() == 1:
            y = nn.functional.one_hot(y.long(), self.num_classes)
        return y.float().expand(n, -1) if y.shape[0] == 1 else y.float()

    def posterior(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z|x[,y]), each (B, latent)."""
        # x.shape[0], not len(x): torch.export (ONNX) keeps the batch size symbolic
        return self.encoder(x, self.one_hot(y, x.shape[0]))

    def encode(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample z from q(z|x[,y]); returns (z, mu, logvar)."""
        mu, logvar = self.posterior(x, y)
        return reparameterize(mu, logvar), mu, logvar

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(z, self.one_hot(y, z.shape[0]))

    @torch.no_grad()
    def sample(
        self,
        n: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        y: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Decode n draws of z ~ N(0, temperature^2 I) (given labels y, if conditional)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent, generator=generator, device="cpu").to(device)
        return self.decode(z * temperature, None if y is None else y.to(device))

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z, mu, logvar = self.encode(x, y)
        return self.decode(z, y), mu, logvar


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
