"""Config validation: every bad value is refused before any work, in one line that names the
key, the value and what is allowed."""

from __future__ import annotations

from omegaconf import DictConfig

from cvae_lightning.datasets import DATASETS
from cvae_lightning.model import check_architecture


class ConfigError(ValueError):
    """A config value the user must change; the message says which and to what."""


def _require(ok: bool, key: str, value, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is invalid: {allowed}")


def check_config(cfg: DictConfig, multirun: bool = False) -> None:
    """Raise ConfigError for the first bad value; `multirun` says Hydra is sweeping."""
    data, model = cfg.data, cfg.model
    _require(data.name in DATASETS, "data.name", data.name, f"choose one of {sorted(DATASETS)}")
    try:
        check_architecture(model.latent, model.max_filters, data.image_size, data.channels)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    _require(data.batch_size >= 1, "data.batch_size", data.batch_size, "it must be >= 1")
    _require(
        data.val_batch_size >= 1, "data.val_batch_size", data.val_batch_size, "it must be >= 1"
    )
    if data.limit is not None:
        _require(
            data.limit >= data.batch_size,
            "data.limit",
            data.limit,
            f"it must be null or >= data.batch_size ({data.batch_size}), "
            "or no full batch is left to train on",
        )
    opt = model.get("optimizer") or {}
    for key in ("lr", "weight_decay"):
        if key in opt:
            _require(opt[key] >= 0, f"model.optimizer.{key}", opt[key], "it must be >= 0")
    _require(
        data.on_device in (True, False, "auto"),
        "data.on_device",
        data.on_device,
        "use true, false or auto",
    )
    epochs = cfg.trainer.get("max_epochs")
    _require(epochs is None or epochs >= 1, "trainer.max_epochs", epochs, "it must be >= 1")
    strategy = str(cfg.trainer.get("strategy", "auto"))
    _require(
        not (multirun and strategy.startswith("ddp") and "spawn" not in strategy),
        "trainer.strategy",
        strategy,
        "a Hydra multirun cannot use it (DDP's child processes would re-run the whole sweep): "
        "use trainer.strategy=ddp_spawn, or start each run without -m",
    )
