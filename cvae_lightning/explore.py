"""Looking inside a trained CVAE: samples, interpolations, traversals, the 2-D manifold.

Plain PyTorch and torchvision: used by the end-of-training callback and by sample.py. Every
function puts the model in eval mode and returns image grids (C, H, W) in [0, 1] on the CPU.
"""

from __future__ import annotations

import torch
from torchvision.utils import make_grid

from cvae_lightning.densities import LatentDensity
from cvae_lightning.model import CVAE, reparameterize


def _device(model: CVAE) -> torch.device:
    return next(model.parameters()).device


def _grid(images: torch.Tensor, nrow: int) -> torch.Tensor:
    return make_grid(images.float().cpu(), nrow=nrow, padding=2, pad_value=0.5)


@torch.no_grad()
def posteriors(
    model: CVAE, x: torch.Tensor, y: torch.Tensor | None = None, batch: int = 512
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar) of q(z|x[,y]) for images (N, C, S, S), floats in [0, 1] or uint8, a batch
    at a time; a plain model ignores y."""
    model.eval()
    device = _device(model)
    ys = [None] * len(x.split(batch)) if y is None else y.to(device).split(batch)
    mus, logvars = [], []
    for xb, yb in zip(x.split(batch), ys, strict=True):
        xb = xb.to(device)
        xb = xb.float().div(255) if xb.dtype == torch.uint8 else xb  # cached uint8 data
        mu, logvar = model.posterior(xb, yb)
        mus.append(mu)
        logvars.append(logvar)
    return torch.cat(mus), torch.cat(logvars)


@torch.no_grad()
def latent_codes(
    model: CVAE,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    batch: int = 512,
    codes: str = "mean",
    seed: int = 0,
) -> torch.Tensor:
    """Codes of images (N, C, S, S), floats in [0, 1] or uint8 -> (N, latent), a batch at a
    time: the posterior means (codes="mean") or one seeded draw z = mu + sigma * eps from each
    posterior ("sample")."""
    if codes not in ("mean", "sample"):
        raise ValueError(f"codes={codes!r} is invalid: use mean or sample")
    mu, logvar = posteriors(model, x, y, batch)
    if codes == "sample":  # one draw per batch, in order: the same stream as ever
        g = torch.Generator().manual_seed(seed)
        eps = torch.cat([torch.randn(m.shape, generator=g) for m in mu.split(batch)])
        mu = reparameterize(mu, logvar, eps.to(mu))
    return mu


def posterior_means(
    model: CVAE, x: torch.Tensor, y: torch.Tensor | None = None, batch: int = 512
) -> torch.Tensor:
    """mu of q(z|x[,y]) for images (N, C, S, S) -> (N, latent), a batch at a time."""
    return latent_codes(model, x, y, batch)


@torch.no_grad()
def generate(
    model: CVAE,
    n: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    y: torch.Tensor | None = None,
    density: LatentDensity | None = None,
) -> torch.Tensor:
    """n images decoded from z drawn from `density` (None: N(0, I)), spread scaled by
    temperature; labels y for a conditional model."""
    model.eval()
    if density is None:
        return model.sample(n, temperature, generator=generator, y=y)
    z = density.sample(n, y, temperature, generator).to(_device(model))
    return model.decode(z, None if y is None else y.to(z.device))


def class_rows(num_classes: int, n: int) -> tuple[torch.Tensor, int]:
    """Labels for a conditional model's sample grid of about n images: one full row per
    class, every row as long (n // num_classes, at least 1); and that row length."""
    per_row = max(1, n // num_classes)
    return torch.arange(num_classes).repeat_interleave(per_row), per_row


@torch.no_grad()
def sample_grid(
    model: CVAE,
    n: int,
    nrow: int = 8,
    temperature: float = 1.0,
    seed: int = 0,
    label: int | None = None,
    density: LatentDensity | None = None,
) -> torch.Tensor:
    """n images decoded from z ~ `density` (None: N(0, I)), spread scaled by temperature;
    `label` picks the class (index) if conditional, else one full row per class."""
    y = None
    if model.num_classes:
        if label is not None:
            y = torch.full((n,), label, device=_device(model))
        else:
            y, nrow = class_rows(model.num_classes, n)
            y, n = y.to(_device(model)), len(y)
    elif label is not None:
        raise ValueError("label=... needs a conditional model (model.conditional=true)")
    g = torch.Generator().manual_seed(seed)
    return _grid(generate(model, n, temperature, g, y, density), nrow)


def interpolate(
    model: CVAE,
    x_a: torch.Tensor,
    x_b: torch.Tensor,
    steps: int = 10,
    y_a: torch.Tensor | None = None,
    y_b: torch.Tensor | None = None,
) -> torch.Tensor:
    """A strip from image a to image b through the latent space (posterior means, linearly)."""
    return _grid(interpolation(model, x_a, x_b, steps, y_a, y_b), nrow=steps)


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
    ys = None if y is None else torch.as_tensor(y).view(1).to(_device(model))
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
    axis = torch.linspace(-span, span, n, device=_device(model))
    zy, zx = torch.meshgrid(axis.flip(0), axis, indexing="ij")  # up = larger z_1
    z = torch.stack([zx, zy], dim=-1).view(-1, 2)
    y = None
    if model.num_classes:
        y = torch.full((len(z),), label if label is not None else 0, device=z.device)
    return _grid(model.decode(z, y), nrow=n)
