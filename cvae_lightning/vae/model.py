"""The CVAE: the container every architecture shares (encode, decode, sample, the likelihood),
which network it holds, and the checks of its settings. Plain PyTorch (no Lightning, no Hydra)."""

from __future__ import annotations

import torch
from torch import nn

from cvae_lightning.vae.layers import reparameterize
from cvae_lightning.vae.likelihood import KINDS as LIKELIHOODS
from cvae_lightning.vae.likelihood import GaussianLikelihood
from cvae_lightning.vae.reference import Decoder, Encoder, check_architecture
from cvae_lightning.vae.resnet import ResDecoder, ResEncoder, check_resnet

# Each architecture's own keys, with their defaults: the reference's (reference.py) and the
# deeper one for colour and larger images (resnet.py).
ARCHITECTURES = {
    "reference": {"max_filters": 64},
    "resnet": {
        "width": 16, "max_width": 256, "blocks": 1, "norm": "batch", "bottom": 4, "latent_map": 0,
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
