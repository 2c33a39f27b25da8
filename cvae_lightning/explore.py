"""Looking inside a trained CVAE: samples, interpolations, traversals, the 2-D manifold.

Plain PyTorch and torchvision: used by the end-of-training callback and by sample.py. Every
function puts the model in eval mode and returns image grids (C, H, W) in [0, 1] on the CPU.
"""

from __future__ import annotations

import torch
from torchvision.utils import make_grid

from cvae_lightning.latent_prior import FittedPrior
from cvae_lightning.model import CVAE


def _device(model: CVAE) -> torch.device:
    return next(model.parameters()).device


def _grid(images: torch.Tensor, nrow: int) -> torch.Tensor:
    return make_grid(images.float().cpu(), nrow=nrow, padding=2, pad_value=0.5)


@torch.no_grad()
def posterior_means(
    model: CVAE, x: torch.Tensor, y: torch.Tensor | None = None, batch: int = 512
) -> torch.Tensor:
    """mu of q(z|x[,y]) for images (N, C, S, S) -> (N, latent), a batch at a time."""
    model.eval()
    device = _device(model)
    ys = [None] * len(x.split(batch)) if y is None else y.to(device).split(batch)
    return torch.cat(
        [
            model.encoder(xb.to(device), model.one_hot(yb, len(xb)))[0]
            for xb, yb in zip(x.split(batch), ys, strict=True)
        ]
    )


def fit_prior(model: CVAE, x: torch.Tensor, y: torch.Tensor, batch: int = 512) -> FittedPrior:
    """The fitted prior of latent_prior.py from training images (per class if conditional)."""
    labels = y if model.num_classes else None
    mu = posterior_means(model, x, labels, batch).cpu()
    return FittedPrior.fit(mu, labels, model.num_classes)


@torch.no_grad()
def generate(
    model: CVAE,
    n: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    y: torch.Tensor | None = None,
    prior: FittedPrior | None = None,
) -> torch.Tensor:
    """n images from z ~ N(0, temperature^2 I), or from a fitted prior if one is given."""
    model.eval()
    if prior is None:
        return model.sample(n, temperature, generator=generator, y=y)
    z = prior.sample(n, y, temperature, generator).to(_device(model))
    return model.decode(z, None if y is None else y.to(z.device))


@torch.no_grad()
def sample_grid(
    model: CVAE,
    n: int,
    nrow: int = 8,
    temperature: float = 1.0,
    seed: int = 0,
    digit: int | None = None,
    prior: FittedPrior | None = None,
) -> torch.Tensor:
    """n images decoded from z ~ N(0, temperature^2 I) (or the fitted prior); `digit` picks the
    class if conditional."""
    y = None
    if model.num_classes:
        # One row per class unless a digit is asked for (as the per-epoch grid shows them).
        if digit is not None:
            y = torch.full((n,), digit)
        else:
            nrow = -(-n // model.num_classes)
            y = (torch.arange(n) // nrow).clamp(max=model.num_classes - 1)
    elif digit is not None:
        raise ValueError("digit=... needs a conditional model (model.conditional=true)")
    g = torch.Generator().manual_seed(seed)
    return _grid(generate(model, n, temperature, g, y, prior), nrow)


@torch.no_grad()
def interpolate(
    model: CVAE,
    x_a: torch.Tensor,
    x_b: torch.Tensor,
    steps: int = 10,
    y_a: torch.Tensor | None = None,
    y_b: torch.Tensor | None = None,
) -> torch.Tensor:
    """A strip from image a to image b through the latent space (posterior means, linearly)."""
    mu = posterior_means(model, torch.stack([x_a, x_b]), _pair(y_a, y_b))
    t = torch.linspace(0, 1, steps, device=mu.device)[:, None]
    z = (1 - t) * mu[0] + t * mu[1]
    y = None
    if model.num_classes:  # blend the one-hot labels along with z
        ends = model.one_hot(_pair(y_a, y_b).to(mu.device), 2)
        y = (1 - t) * ends[0] + t * ends[1]
    return _grid(model.decode(z, y), nrow=steps)


def _pair(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    return None if a is None else torch.stack([torch.as_tensor(a), torch.as_tensor(b)])


@torch.no_grad()
def traverse(
    model: CVAE, x: torch.Tensor, y: torch.Tensor | None = None, steps: int = 11, span: float = 3.0
) -> torch.Tensor:
    """One row per latent dimension: that dimension swept over [-span, span], the others held
    at the posterior mean of image x."""
    ys = None if y is None else torch.as_tensor(y).view(1)
    mu = posterior_means(model, x[None], ys)[0]
    values = torch.linspace(-span, span, steps, device=mu.device)
    z = mu.repeat(model.latent, steps, 1)  # (latent, steps, latent)
    for d in range(model.latent):
        z[d, :, d] = values
    z = z.view(-1, model.latent)
    labels = None if ys is None else ys.expand(len(z))
    return _grid(model.decode(z, labels), nrow=steps)


@torch.no_grad()
def manifold(model: CVAE, n: int = 20, span: float = 3.0, digit: int | None = None) -> torch.Tensor:
    """For a 2-D latent space: images decoded on an n x n grid over [-span, span]^2."""
    if model.latent != 2:
        raise ValueError(
            f"the manifold picture needs model.latent=2 (this model has {model.latent})"
        )
    model.eval()
    axis = torch.linspace(-span, span, n, device=_device(model))
    zy, zx = torch.meshgrid(axis.flip(0), axis, indexing="ij")  # up = larger z_1
    z = torch.stack([zx, zy], dim=-1).view(-1, 2)
    y = torch.full((len(z),), digit if digit is not None else 0) if model.num_classes else None
    return _grid(model.decode(z, y), nrow=n)
