"""The trained model that ships in weights/: exported from a run in the Hub layout (weights
only, under 1 MB, with its fitted latent densities), and the README's pictures drawn from it.
Plain PyTorch."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image

from cvae_lightning.densities.base import FITTED_TEMPERATURE
from cvae_lightning.densities.store import density_path
from cvae_lightning.errors import CheckpointError
from cvae_lightning.files import atomic_write
from cvae_lightning.inference.draw import standard_vs_density
from cvae_lightning.inference.pretrained import PretrainedVAE
from cvae_lightning.inference.run_data import DataSource, checkpoint_images
from cvae_lightning.paths import PROJECT_ROOT, SHIPPED, project_relative
from cvae_lightning.vae.latent import posterior_means

log = logging.getLogger(__name__)


def with_densities(run: str | Path) -> PretrainedVAE:
    """A run's model with its stored densities (on the CPU); a run without any is refused."""
    vae = PretrainedVAE.load(run, device="cpu")
    if not vae.stored:
        raise CheckpointError(
            f"{density_path(vae.path)} does not exist: use a run that fitted its densities "
            f"(or fit them: `uv run tools/fit_densities.py {run}`)"
        )
    return vae


def export_model(run: str | Path, out: Path = SHIPPED) -> Path:
    """Write the run's last checkpoint with its fitted densities to `out` in the Hub layout
    (weights only: the optimizer and loop state are for resuming), recording the best density
    (by the run's eval/metrics.json if eval has run)."""
    vae = with_densities(run)
    vae.save_pretrained(out)
    size = sum(p.stat().st_size for p in out.glob("*.safetensors")) / 1e6
    log.info(f"wrote {out} ({size:.2f} MB of weights and densities); best density: {vae.best}")
    return out


def readme_pictures(
    ckpt: str | Path = SHIPPED,
    out: Path = PROJECT_ROOT / "docs",
    seed: int = 0,
    temperature: float = FITTED_TEMPERATURE,
) -> list[Path]:
    """reconstructions.png (test images over their reconstructions) and standard_vs_fitted.png
    (64 samples of z ~ N(0, I) beside 64 of the best stored density, at `temperature`)."""
    vae = with_densities(ckpt)
    model = vae.model
    x, _ = checkpoint_images(DataSource(), vae.ckpt, train=False, n=32)
    x = x.float().div(255)
    recon = model.decode(posterior_means(model, x)).clamp(0, 1)
    rows = torch.stack([x.view(2, 16, *x.shape[1:]), recon.view(2, 16, *x.shape[1:])], 1)
    _, side_by_side = standard_vs_density(model, vae.density(), vae.best, temperature, seed=seed)
    pictures = {
        "reconstructions.png": make_grid(rows.flatten(0, 2), nrow=16, padding=2, pad_value=0.5),
        "standard_vs_fitted.png": side_by_side,
    }
    for name, image in pictures.items():
        atomic_write(out / name, lambda f, image=image: save_image(image, f, format="png"))
    made = {"checkpoint": project_relative(vae.path), "density": vae.best,
            "temperature": temperature, "seed": seed}  # fmt: skip
    (out / "pictures.json").write_text(json.dumps(made, indent=1))
    return [out / name for name in pictures]
