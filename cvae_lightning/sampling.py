"""sample.py's logic: load a checkpoint's plain CVAE (no Lightning), draw or explore, write one
PNG. Samples come from the run's best stored latent density unless another is asked for."""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig
from torchvision.utils import save_image

from cvae_lightning import explore
from cvae_lightning.captions import label_rows
from cvae_lightning.densities import LatentDensity, draw_temperature
from cvae_lightning.density_store import (
    densities_for_checkpoint,
    density_path,
    stored_densities,
)
from cvae_lightning.errors import ConfigError
from cvae_lightning.files import atomic_write
from cvae_lightning.loading import (
    DataSource,
    checkpoint_images,
    class_index,
    class_names,
    inference_device,
    load_model,
    resolve_checkpoint,
    run_training_images,
)
from cvae_lightning.model import CVAE
from cvae_lightning.validation import check_sample_config

log = logging.getLogger(__name__)


def choose_density(cfg: DictConfig, model: CVAE, path: Path, ckpt: dict) -> LatentDensity:
    """cfg.prior's density for the checkpoint at `path`: auto takes the best one stored beside
    it (or fits cfg.auto_fit when none is), a name takes that one (fitted now if not stored)."""
    name = cfg.prior
    if name == "auto":
        stored = stored_densities(path, model, ckpt.get("global_step"))
        if stored is not None:
            log.info(
                f"prior=auto: drawing from {stored.best}, the best density in "
                f"{density_path(path)} ({stored.why})"
            )
            return stored.densities[stored.best]
        name = cfg.auto_fit
        log.info(f"prior=auto: no stored densities, so drawing from {name}")

    def training_images():
        return run_training_images(DataSource.of(cfg.data), ckpt, cfg.density.images)

    fitters = instantiate(cfg.density.fitters)
    densities, _ = densities_for_checkpoint(
        model, path, ckpt, [name], fitters, training_images, cfg.density.codes, cfg.seed
    )
    return densities[name]


def render(cfg: DictConfig) -> Path:
    """Draw what cfg.mode asks for from cfg.ckpt_path and save it to cfg.out; returns the path."""
    check_sample_config(cfg)
    path = resolve_checkpoint(cfg.ckpt_path)
    model, ckpt = load_model(path, inference_device(cfg.get("device", "auto")))
    label = class_index(cfg.label, model.num_classes, class_names(ckpt))
    if cfg.mode == "samples":
        density = choose_density(cfg, model, path, ckpt)
        t = draw_temperature(density, cfg.temperature, cfg.density.temperature)
        image = explore.sample_grid(model, cfg.n, cfg.nrow, t, cfg.seed, label, density)
        if model.num_classes and label is None:  # one row per class: name each
            image = label_rows(image, class_names(ckpt)[: model.num_classes])
    elif cfg.mode == "manifold":
        if model.latent != 2:
            raise ConfigError(
                f"mode=manifold needs a checkpoint with model.latent=2, not {model.latent}"
            )
        image = explore.manifold(model, n=cfg.steps, label=label)
    else:
        a, b = cfg.interpolate
        last = max(a, b, cfg.traverse)
        x, y = checkpoint_images(DataSource.of(cfg.data), ckpt, train=False, n=last + 1)
        x = x.float().div(255)  # a plain model ignores the labels y
        if cfg.mode == "interpolate":
            image = explore.interpolate(model, x[a], x[b], cfg.steps, y[a], y[b])
        else:
            image = explore.traverse(model, x[cfg.traverse], y[cfg.traverse], steps=cfg.steps)
            image = label_rows(image, [f"z[{d}]" for d in range(model.latent)])
    return atomic_write(Path(cfg.out), lambda f: save_image(image, f, format="png"))
