"""sample.py's logic: load a checkpoint safely, draw or explore, write one PNG."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig
from torchvision.utils import save_image

from cvae_lightning import explore
from cvae_lightning.checkpoints import CheckpointError, read_checkpoint, resolve_checkpoint
from cvae_lightning.checks import ConfigError
from cvae_lightning.datasets import load_resized
from cvae_lightning.model import CVAE

MODES = ("samples", "interpolate", "traverse", "manifold")
PRIORS = ("auto", "standard", "fitted")


def load_model(path: str | Path) -> tuple[CVAE, dict]:
    """The CVAE of a training checkpoint (weights_only load), in eval mode, and the checkpoint."""
    path = resolve_checkpoint(path)
    ckpt = read_checkpoint(path)
    hp = ckpt["hyper_parameters"]
    num_classes = hp.get("num_classes", 10) if hp.get("conditional") else 0
    model = CVAE(hp["latent"], hp["max_filters"], hp["image_size"], hp["channels"], num_classes)
    weights = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
    weights = {k: v for k, v in weights.items() if k.split(".")[0] in ("encoder", "decoder")}
    try:
        result = model.load_state_dict(weights, strict=False)
        problems = [f"missing {k}" for k in result.missing_keys]
        problems += [f"unexpected {k}" for k in result.unexpected_keys]
    except RuntimeError as e:  # a tensor of the wrong shape
        problems = [str(e).splitlines()[-1].strip()]
    if problems:
        more = f" and {len(problems) - 2} more" if len(problems) > 2 else ""
        raise CheckpointError(
            f"checkpoint {path} does not fit its own hyperparameters ({'; '.join(problems[:2])}"
            f"{more}): it was written by another version of cvae-lightning; retrain it"
        )
    return model.eval(), ckpt


def checkpoint_dataset(cfg: DictConfig, ckpt: dict) -> str:
    """cfg.data.name if set, else the dataset the checkpoint was trained on."""
    return cfg.data.name or ckpt.get("datamodule_hyper_parameters", {}).get("name", "mnist")


def checkpoint_images(
    cfg: DictConfig, ckpt: dict, train: bool, n: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n images (all if None) of a split of the checkpoint's dataset (or cfg.data.name),
    at its image size, in [0, 1], with their labels."""
    name, size = checkpoint_dataset(cfg, ckpt), ckpt["hyper_parameters"]["image_size"]
    images, labels = load_resized(cfg.data.root, name, train, size, cfg.data.cache_dir)
    return images[:n].float().div(255), labels[:n]


def render(cfg: DictConfig) -> Path:
    """Draw what cfg.mode asks for from cfg.ckpt_path and save it to cfg.out; returns the path."""
    if cfg.mode not in MODES:
        raise ConfigError(f"mode={cfg.mode!r} is invalid: choose one of {', '.join(MODES)}")
    if cfg.n < 1:
        raise ConfigError(f"n={cfg.n} is invalid: it must be >= 1")
    if cfg.prior not in PRIORS:
        raise ConfigError(f"prior={cfg.prior!r} is invalid: choose one of {', '.join(PRIORS)}")
    model, ckpt = load_model(cfg.ckpt_path)
    if cfg.digit is not None and not (model.num_classes and 0 <= cfg.digit < model.num_classes):
        allowed = f"0..{model.num_classes - 1}" if model.num_classes else "null (unconditional)"
        raise ConfigError(f"digit={cfg.digit} is invalid for this checkpoint: use {allowed}")
    if cfg.mode == "samples":
        prior = None
        if cfg.prior == "fitted" or (cfg.prior == "auto" and model.num_classes):
            x, y = checkpoint_images(cfg, ckpt, train=True, n=cfg.prior_images)
            prior = explore.fit_prior(model, x, y)
        image = explore.sample_grid(
            model, cfg.n, cfg.nrow, cfg.temperature, cfg.seed, cfg.digit, prior
        )
    elif cfg.mode == "manifold":
        if model.latent != 2:
            raise ConfigError(
                f"mode=manifold needs a checkpoint with model.latent=2, not {model.latent}"
            )
        image = explore.manifold(model, n=cfg.steps, digit=cfg.digit)
    else:
        last = max(cfg.a, cfg.b, cfg.index)
        x, y = checkpoint_images(cfg, ckpt, train=False, n=last + 1)
        labels = (lambda i: y[i]) if model.num_classes else (lambda i: None)
        if cfg.mode == "interpolate":
            image = explore.interpolate(
                model, x[cfg.a], x[cfg.b], cfg.steps, labels(cfg.a), labels(cfg.b)
            )
        else:
            image = explore.traverse(model, x[cfg.index], labels(cfg.index), steps=cfg.steps)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image(image, out)
    return out
