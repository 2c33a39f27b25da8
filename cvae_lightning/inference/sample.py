"""sample.py's command: a trained model (no Lightning) draws or explores, into one PNG. Samples
come from the run's best stored latent density unless another is asked for."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig
from torchvision.utils import save_image

from cvae_lightning.densities.base import Fitter, draw_temperature
from cvae_lightning.densities.store import check_density_settings
from cvae_lightning.errors import ConfigError, require
from cvae_lightning.files import atomic_write
from cvae_lightning.inference import draw
from cvae_lightning.inference.captions import label_rows
from cvae_lightning.inference.pretrained import PretrainedVAE
from cvae_lightning.inference.prior import choose
from cvae_lightning.inference.run_data import DataSource, checkpoint_images, class_index

MODES = ("samples", "interpolate", "traverse", "manifold")


def build_fitters(density: Mapping) -> dict[str, Fitter]:
    """The density group's fitters, each built (its settings checked) now, and its other
    values checked: every command that fits densities starts here, before any work."""
    check_density_settings(density["codes"], density["images"], density["temperature"])
    fitters = {}
    for name, node in density["fitters"].items():
        try:
            fitters[name] = instantiate(node)
        except Exception as e:  # Hydra wraps what the fitter raised
            cause = e.__cause__ or e
            if not isinstance(cause, ValueError):
                raise
            raise ConfigError(f"density.fitters.{name}.{cause}") from None
    return fitters


def check_sample_settings(cfg) -> None:
    """sample.py's own keys; the densities are the keys of density.fitters."""
    require(cfg.mode in MODES, "mode", cfg.mode, f"choose one of {', '.join(MODES)}")
    for key in ("n", "nrow", "steps"):
        require(cfg[key] >= 1, key, cfg[key], "it must be >= 1")
    names = ["auto", *cfg.density.fitters]
    require(cfg.prior in names, "prior", cfg.prior, f"choose one of {', '.join(names)}")
    names = names[1:]
    require(cfg.auto_fit in names, "auto_fit", cfg.auto_fit, f"choose one of {', '.join(names)}")
    t = cfg.temperature
    require(t is None or t >= 0, "temperature", t, "it must be null or >= 0")
    pair = list(cfg.interpolate)
    require(len(pair) == 2 and min(pair) >= 0, "interpolate", pair,
            "give two test-image indices, e.g. [0, 1]")  # fmt: skip
    require(cfg.traverse >= 0, "traverse", cfg.traverse, "it must be a test-image index >= 0")


def render(cfg: DictConfig) -> Path:
    """Draw what cfg.mode asks for from cfg.ckpt_path and save it to cfg.out; returns the path."""
    check_sample_settings(cfg)
    fitters = build_fitters(cfg.density)
    vae = PretrainedVAE.load(cfg.ckpt_path, device=cfg.get("device", "auto"))
    model, data = vae.model, DataSource.of(cfg.data)
    label = class_index(cfg.label, model.num_classes, vae.classes)
    if cfg.mode == "samples":
        density = choose(vae, cfg.prior, cfg.auto_fit, fitters, data, images=cfg.density.images,
                         codes=cfg.density.codes, seed=cfg.seed)  # fmt: skip
        fitted = vae.fitted_temperature(cfg.density.temperature, density)
        t = draw_temperature(density, cfg.temperature, fitted)
        image = draw.sample_grid(model, density, cfg.n, cfg.nrow, t, cfg.seed, label)
        if model.num_classes and label is None:  # one row per class: name each
            image = label_rows(image, vae.classes)
    elif cfg.mode == "manifold":
        if model.latent != 2:
            raise ConfigError(
                f"mode=manifold needs a checkpoint with model.latent=2, not {model.latent}"
            )
        image = draw.manifold(model, n=cfg.steps, label=label)
    else:
        a, b = cfg.interpolate
        last = max(a, b, cfg.traverse)
        x, y = checkpoint_images(data, vae.ckpt, train=False, n=last + 1)
        x = x.float().div(255)  # a plain model ignores the labels y
        if cfg.mode == "interpolate":
            image = draw.interpolate(model, x[a], x[b], cfg.steps, y[a], y[b])
        else:
            image = draw.traverse(model, x[cfg.traverse], y[cfg.traverse], steps=cfg.steps)
            image = label_rows(image, [f"z[{d}]" for d in range(model.latent)])
    return atomic_write(Path(cfg.out), lambda f: save_image(image, f, format="png"))
