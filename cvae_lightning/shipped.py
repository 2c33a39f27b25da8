"""The trained model that ships in weights/: exported from a run in the Hub layout (weights
only, under 1 MB, with its fitted latent densities), and the README's pictures drawn from it.
Plain PyTorch."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image

from cvae_lightning.density_store import best_density, density_path, eval_dir, load_densities
from cvae_lightning.errors import CheckpointError
from cvae_lightning.explore import posterior_means, sample_grid
from cvae_lightning.files import atomic_write
from cvae_lightning.loading import (
    DataSource,
    checkpoint_images,
    load_model,
    resolve_checkpoint,
)
from cvae_lightning.pretrained import SHIPPED, fitted_temperature, load_pretrained
from cvae_lightning.runs import PROJECT_ROOT, project_relative

log = logging.getLogger(__name__)


def export_model(run: str | Path, out: Path = SHIPPED) -> Path:
    """Write the run's last checkpoint with its fitted densities to `out` in the Hub layout
    (weights only: the optimizer and loop state are for resuming), recording the best density
    (by the run's eval/metrics.json if eval has run)."""
    ckpt_path = resolve_checkpoint(run)
    if not density_path(ckpt_path).is_file():
        raise CheckpointError(
            f"{density_path(ckpt_path)} does not exist: export a run that fitted its densities"
        )
    vae = load_pretrained(ckpt_path)
    vae.save_pretrained(out)
    size = sum(p.stat().st_size for p in out.glob("*.safetensors")) / 1e6
    log.info(f"wrote {out} ({size:.2f} MB of weights and densities); best density: {vae.best}")
    return out


def readme_pictures(
    ckpt: str | Path = SHIPPED,
    out: Path = PROJECT_ROOT / "docs",
    seed: int = 0,
    temperature: float | None = None,
) -> list[Path]:
    """reconstructions.png (test images over their reconstructions) and standard_vs_fitted.png
    (64 samples of z ~ N(0, I) beside 64 of the best stored density, at `temperature`)."""
    if temperature is None:  # the density group's default, as sample.py uses it
        temperature = fitted_temperature()
    path = resolve_checkpoint(ckpt)
    model, ckpt_dict = load_model(path)
    densities, record = load_densities(density_path(path), model)
    best, _ = best_density(record, eval_dir(path) / "metrics.json")
    x, _ = checkpoint_images(DataSource(), ckpt_dict, train=False, n=32)
    x = x.float().div(255)
    recon = model.decode(posterior_means(model, x)).clamp(0, 1)
    rows = torch.stack([x.view(2, 16, *x.shape[1:]), recon.view(2, 16, *x.shape[1:])], 1)
    standard = sample_grid(model, 64, 8, seed=seed)
    fitted = sample_grid(model, 64, 8, temperature, seed, density=densities[best])
    gap = torch.ones(3, standard.shape[1], 16)
    pictures = {
        "reconstructions.png": make_grid(rows.flatten(0, 2), nrow=16, padding=2, pad_value=0.5),
        "standard_vs_fitted.png": torch.cat([standard, gap, fitted], dim=2),
    }
    for name, image in pictures.items():
        atomic_write(out / name, lambda f, image=image: save_image(image, f, format="png"))
    made = {
        "checkpoint": project_relative(path),
        "density": best,
        "temperature": temperature,
        "seed": seed,
    }
    (out / "pictures.json").write_text(json.dumps(made, indent=1))
    return [out / name for name in pictures]
