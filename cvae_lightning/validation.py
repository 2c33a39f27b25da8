"""Config validation: every bad value is refused before any work, in one line that names the
key, the value and what is allowed."""

from __future__ import annotations

from omegaconf import DictConfig

from cvae_lightning.data import CHANNELS, SOURCES
from cvae_lightning.errors import ConfigError
from cvae_lightning.model import check_model, model_kwargs


def _require(ok: bool, key: str, value, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is invalid: {allowed}")


def check_config(cfg: DictConfig, multirun: bool = False) -> None:
    """Raise ConfigError for the first bad value; `multirun` says Hydra is sweeping."""
    data, model = cfg.data, cfg.model
    _require(data.name in SOURCES, "data.name", data.name, f"choose one of {', '.join(SOURCES)}")
    _require(data.channels in CHANNELS, "data.channels", data.channels, "use auto, 1 or 3")
    fraction = data.get("val_fraction", 0.1)
    _require(0 < fraction < 1, "data.val_fraction", fraction, "it must be between 0 and 1")
    channels = 1 if data.channels == "auto" else data.channels  # auto: the data decides later
    try:
        check_model(**model_kwargs({**model, "image_size": data.image_size, "channels": channels}))
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
    _require(model.get("beta", 1.0) >= 0, "model.beta", model.get("beta"), "it must be >= 0")
    warmup = model.get("kl_warmup_epochs", 0)
    _require(warmup >= 0, "model.kl_warmup_epochs", warmup, "it must be >= 0 (0: no warm-up)")
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
    if cfg.get("density") and (cfg.get("callbacks") or {}).get("densities"):
        check_density_settings(cfg.density)
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


def check_eval_settings(e) -> None:
    """The eval group (eval.py, and train.py with test=true)."""
    for key in ("iwae_k", "batch_size", "knn_k", "kid_subset"):
        _require(e[key] >= 1, f"eval.{key}", e[key], "it must be >= 1")
    _require(e["samples"] >= 0, "eval.samples", e["samples"], "it must be >= 0 (0 skips FID/KID)")
    t = e["temperature"]
    _require(t is None or t > 0, "eval.temperature", t, "it must be null or > 0")


SAMPLE_MODES = ("samples", "interpolate", "traverse", "manifold")


def check_sample_config(cfg) -> None:
    """sample.py's config; the densities are the keys of density.fitters."""
    _require(cfg.mode in SAMPLE_MODES, "mode", cfg.mode, f"choose one of {', '.join(SAMPLE_MODES)}")
    for key in ("n", "nrow", "steps"):
        _require(cfg[key] >= 1, key, cfg[key], "it must be >= 1")
    names = list(cfg.density.fitters)
    _require(
        cfg.prior in ("auto", *names),
        "prior",
        cfg.prior,
        f"choose one of {', '.join(['auto', *names])}",
    )
    _require(cfg.auto_fit in names, "auto_fit", cfg.auto_fit, f"choose one of {', '.join(names)}")
    t = cfg.temperature
    _require(t is None or t >= 0, "temperature", t, "it must be null or >= 0")
    pair = list(cfg.interpolate)
    _require(
        len(pair) == 2 and min(pair) >= 0,
        "interpolate",
        pair,
        "give two test-image indices, e.g. [0, 1]",
    )
    _require(cfg.traverse >= 0, "traverse", cfg.traverse, "it must be a test-image index >= 0")


# Density settings that must be positive whole numbers, and those that must be above zero.
DENSITY_COUNTS = ("components", "transforms", "steps", "batch_size")


def check_density_settings(density) -> None:
    """The density group, before any work: counts >= 1, lr > 0, known codes. (A mixture with
    more components than a class has codes is fitted with fewer, and says so.)"""
    _require(
        density.codes in ("mean", "sample"), "density.codes", density.codes, "use mean or sample"
    )
    images, t = density.images, density.temperature
    _require(t > 0, "density.temperature", t, "it must be > 0")
    _require(images is None or images >= 1, "density.images", images, "it must be null or >= 1")
    for name, fitter in density.fitters.items():
        for key in DENSITY_COUNTS:
            if key in fitter:
                _require(
                    fitter[key] >= 1,
                    f"density.fitters.{name}.{key}",
                    fitter[key],
                    "it must be >= 1",
                )
        if "lr" in fitter:
            _require(fitter.lr > 0, f"density.fitters.{name}.lr", fitter.lr, "it must be > 0")


def check_classifier_config(cfg) -> None:
    """train_classifier.py's config."""
    for key in ("epochs", "batch_size"):
        _require(cfg[key] >= 1, key, cfg[key], "it must be >= 1")
    _require(cfg.lr > 0, "lr", cfg.lr, "it must be > 0")
