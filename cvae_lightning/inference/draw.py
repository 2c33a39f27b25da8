"""Looking inside a trained CVAE: samples, interpolations, traversals, the 2-D manifold.

Plain PyTorch and torchvision: used by the end-of-training callback and by sample.py. Every
function puts the model in eval mode and returns image grids (C, H, W) in [0, 1] on the CPU.
"""

from __future__ import annotations

import torch
from torchvision.utils import make_grid

from cvae_lightning.densities.base import LatentDensity
from cvae_lightning.densities.standard import StandardNormal
from cvae_lightning.inference.captions import title_parts
from cvae_lightning.vae.latent import device_of, posterior_means
from cvae_lightning.vae.model import CVAE


def _grid(images: torch.Tensor, nrow: int) -> torch.Tensor:
    return make_grid(images.float().cpu(), nrow=nrow, padding=2, pad_value=0.5)


@torch.no_grad()
def generate(
    model: CVAE,
    density: LatentDensity,
    n: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    y: torch.Tensor | None = None,
) -> torch.Tensor:
    """n images decoded from z drawn from `density` (N(0, I) too is one: StandardNormal),
    spread scaled by temperature; labels y for a conditional model."""
    model.eval()
    z = density.sample(n, y, temperature, generator).to(device_of(model))
    return model.decode(z, None if y is None else y.to(z.device))


def class_rows(num_classes: int, n: int) -> tuple[torch.Tensor, int]:
    """Labels for a conditional model's sample grid of about n images: one full row per
    class, every row as long (n // num_classes, at least 1); and that row length."""
    per_row = max(1, n // num_classes)
    return torch.arange(num_classes).repeat_interleave(per_row), per_row


@torch.no_grad()
def sample_grid(
    model: CVAE,
    density: LatentDensity,
    n: int,
    nrow: int = 8,
    temperature: float = 1.0,
    seed: int = 0,
    label: int | None = None,
) -> torch.Tensor:
    """n images decoded from z ~ `density`, spread scaled by temperature;
    `label` picks the class (index) if conditional, else one full row per class."""
    y = None
    if model.num_classes:
        if label is not None:
            y = torch.full((n,), label, device=device_of(model))
        else:
            y, nrow = class_rows(model.num_classes, n)
            y, n = y.to(device_of(model)), len(y)
    elif label is not None:
        raise ValueError("label=... needs a conditional model (model.conditional=true)")
    g = torch.Generator().manual_seed(seed)
    return _grid(generate(model, density, n, temperature, g, y), nrow)


def standard_vs_density(
    model: CVAE, density: LatentDensity, name: str, temperature: float, n: int = 64,
    nrow: int = 8, seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """n samples of `density` (called `name`) at `temperature`, and the same beside n samples
    of N(0, I) from the same seed, each half titled: what fitting the density changed."""
    standard = sample_grid(model, StandardNormal.of(model), n, nrow, 1.0, seed)
    fitted = sample_grid(model, density, n, nrow, temperature, seed)
    gap = torch.ones(standard.shape[0], standard.shape[1], 16)  # a white column between
    w = standard.shape[2]
    both = title_parts(torch.cat([standard, gap, fitted], dim=2), [
        (0, w, "z ~ N(0, I), the prior"),
        (w + 16, 2 * w + 16, f"z ~ {name}, temperature {temperature:g}"),
    ])  # fmt: skip
    return fitted, both


def interpolate(model: CVAE, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 10,
                *labels: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
    """A strip from image a to image b through the latent space (posterior means, linearly);
    `labels` (y_a, y_b) for a conditional model."""
    return _grid(interpolation(model, x_a, x_b, steps, *labels), nrow=steps)


@torch.no_grad()
def interpolation(
    model: CVAE,
    x_a: torch.Tensor,
    x_b: torch.Tensor,
    steps: int = 10,
    y_a: torch.Tensor | None = None,
    y_b: torch.Tensor | None = None,
) -> torch.Tensor:
    """The `steps` images (steps, C, S, S) of that strip, on the model's device."""
    mu = posterior_means(model, torch.stack([x_a, x_b]), _pair(y_a, y_b))
    t = torch.linspace(0, 1, steps, device=mu.device)[:, None]
    z = (1 - t) * mu[0] + t * mu[1]
    y = None
    if model.num_classes:  # blend the one-hot labels along with z
        ends = model.one_hot(_pair(y_a, y_b).to(mu.device), 2)
        y = (1 - t) * ends[0] + t * ends[1]
    return model.decode(z, y)


def _pair(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    return None if a is None else torch.stack([torch.as_tensor(a), torch.as_tensor(b)])


@torch.no_grad()
def traverse(
    model: CVAE, x: torch.Tensor, y: torch.Tensor | None = None, steps: int = 11, span: float = 3.0
) -> torch.Tensor:
    """One row per latent dimension: that dimension swept over [-span, span], the others held
    at the posterior mean of image x."""
    ys = None if y is None else torch.as_tensor(y).view(1).to(device_of(model))
    mu = posterior_means(model, x[None], ys)[0]
    values = torch.linspace(-span, span, steps, device=mu.device)
    z = mu.repeat(model.latent, steps, 1)  # (latent, steps, latent)
    for d in range(model.latent):
        z[d, :, d] = values
    z = z.view(-1, model.latent)
    labels = None if ys is None else ys.expand(len(z))
    return _grid(model.decode(z, labels), nrow=steps)


@torch.no_grad()
def manifold(model: CVAE, n: int = 20, span: float = 3.0, label: int | None = None) -> torch.Tensor:
    """For a 2-D latent space: images decoded on an n x n grid over [-span, span]^2."""
    if model.latent != 2:
        raise ValueError(
            f"the manifold picture needs model.latent=2 (this model has {model.latent})"
        )
    model.eval()
    axis = torch.linspace(-span, span, n, device=device_of(model))
    zy, zx = torch.meshgrid(axis.flip(0), axis, indexing="ij")  # up = larger z_1
    z = torch.stack([zx, zy], dim=-1).view(-1, 2)
    y = None
    if model.num_classes:
        y = torch.full((len(z),), label if label is not None else 0, device=z.device)
    return _grid(model.decode(z, y), nrow=n)
