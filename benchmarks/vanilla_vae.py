"""The peer baseline: PyTorch-VAE's VanillaVAE and its published training recipe, reimplemented in
plain PyTorch from its description (AntixK/PyTorch-VAE: models/vanilla_vae.py, configs/vae.yaml,
experiment.py, dataset.py; Apache-2.0). Nothing of its code is copied; its choices are:

- encoder: five 3x3 stride-2 convs of 32, 64, 128, 256, 512 channels, each with BatchNorm and
  LeakyReLU (slope 0.01), 64 px -> 2 px; two linear heads (2048 -> 128) for mu and log-variance;
- decoder: a linear layer to 512 x 2 x 2, four 3x3 stride-2 transposed convs (512 -> 32
  channels) with BatchNorm and LeakyReLU, a last transposed conv 32 -> 32 to 64 px, BatchNorm,
  LeakyReLU, a 3x3 conv to 3 channels and tanh (its images are in [0, 1], as here: ToTensor
  without normalisation, so tanh's lower half goes unused; reconstructions are clamped to [0, 1]);
- loss: the pixel mean of the squared error + 0.00025 x the KL divergence (summed over the latent,
  averaged over the batch);
- Adam, lr 0.005, no weight decay, lr x 0.95 after every epoch, batch 64, random horizontal flips.

The class offers what the project's measures call on a model (posterior, decode, sample), so the
same code judges it and the project's own models.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn

HIDDEN = (32, 64, 128, 256, 512)
LATENT = 128
RECIPE = {"lr": 0.005, "weight_decay": 0.0, "gamma": 0.95, "kld_weight": 0.00025, "batch": 64}


def _bn_act(module: nn.Module, channels: int) -> nn.Sequential:
    return nn.Sequential(module, nn.BatchNorm2d(channels), nn.LeakyReLU())


class VanillaVAE(nn.Module):
    """VanillaVAE for 64 px images: x (B, C, 64, 64) in [0, 1] -> (x_rec, mu, logvar)."""

    num_classes = 0

    def __init__(self, channels: int = 3, latent: int = LATENT, image_size: int = 64):
        super().__init__()
        if image_size != 64:
            raise ValueError("VanillaVAE's published network is for 64 px images")
        self.latent, self.channels, self.image_size = latent, channels, image_size
        layers, c = [], channels
        for h in HIDDEN:
            layers.append(_bn_act(nn.Conv2d(c, h, 3, stride=2, padding=1), h))
            c = h
        self.encoder = nn.Sequential(*layers, nn.Flatten())
        self.fc_mu = nn.Linear(HIDDEN[-1] * 4, latent)
        self.fc_var = nn.Linear(HIDDEN[-1] * 4, latent)
        self.decoder_input = nn.Linear(latent, HIDDEN[-1] * 4)
        back = HIDDEN[::-1]
        up = [
            _bn_act(nn.ConvTranspose2d(a, b, 3, stride=2, padding=1, output_padding=1), b)
            for a, b in zip(back, back[1:], strict=False)
        ]
        last = back[-1]
        self.decoder = nn.Sequential(
            *up,
            _bn_act(nn.ConvTranspose2d(last, last, 3, stride=2, padding=1, output_padding=1), last),
            nn.Conv2d(last, channels, 3, padding=1),
            nn.Tanh(),
        )

    def posterior(self, x: torch.Tensor, y=None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_var(h)

    def decode(self, z: torch.Tensor, y=None) -> torch.Tensor:
        h = self.decoder_input(z).view(-1, HIDDEN[-1], 2, 2)
        return self.decoder(h)

    @torch.no_grad()
    def sample(self, n, temperature=1.0, generator=None, y=None) -> torch.Tensor:
        """Its own way to sample: z ~ N(0, I) (drawn as the project's CVAE draws it)."""
        z = torch.randn(n, self.latent, generator=generator) * temperature
        return self.decode(z.to(next(self.parameters()).device))

    def forward(self, x: torch.Tensor):
        mu, logvar = self.posterior(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


def recipe_loss(x_rec, x, mu, logvar, kld_weight: float = RECIPE["kld_weight"]) -> torch.Tensor:
    recon = F.mse_loss(x_rec.float(), x.float())
    kl = (-0.5 * (1 + logvar.float() - mu.float() ** 2 - logvar.float().exp()).sum(1)).mean()
    return recon + kld_weight * kl


def train_vanilla(
    images: torch.Tensor, seconds: float, seed: int = 0, bf16: bool = True, log=print
) -> tuple[VanillaVAE, dict]:
    """Train on uint8 images (N, C, 64, 64) for `seconds` of training time (the clock runs
    only inside the loop), in epochs as its recipe does. -> (model in eval mode, record)."""
    torch.manual_seed(seed)
    model = VanillaVAE(images.shape[1]).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=RECIPE["lr"], weight_decay=RECIPE["weight_decay"])
    schedule = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=RECIPE["gamma"])
    g = torch.Generator().manual_seed(seed)
    batch, steps, spent, epoch = RECIPE["batch"], 0, 0.0, 0
    model.train()
    while spent < seconds:
        epoch += 1
        order = torch.randperm(len(images), generator=g)
        start = time.perf_counter()
        for i in range(len(images) // batch):  # the last partial batch dropped
            x = images[order[i * batch : (i + 1) * batch]].float().div(255)
            flip = torch.rand(len(x), generator=g) < 0.5  # RandomHorizontalFlip
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                x_rec, mu, logvar = model(x)
            loss = recipe_loss(x_rec, x, mu, logvar)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
            if spent + time.perf_counter() - start >= seconds:
                break
        spent += time.perf_counter() - start
        schedule.step()
        lr = schedule.get_last_lr()[0]
        log(f"vanilla: epoch {epoch}, {steps} steps, {spent:.0f}s of training, lr now {lr:.5f}")
    record = {"epochs": epoch, "steps": steps, "images_seen": steps * batch, "seconds": spent}
    record["images_per_second"] = record["images_seen"] / spent if spent else math.nan
    return model.eval(), record
