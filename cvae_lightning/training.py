"""Training entry logic: build everything from a composed Hydra config, fit, return the metrics."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from cvae_lightning.checks import check_config

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# `${project_root:}` in conf/paths lets the data folder be found from any working directory.
OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT), replace=True)


def short_dirname(name: str, limit: int = 120) -> str:
    """A sweep job's folder name from its overrides, safe as one path component."""
    name = name.replace("/", "_") or "default"
    if len(name) <= limit:
        return name
    return f"{name[: limit - 9]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


OmegaConf.register_new_resolver("dirname", short_dirname, replace=True)
# Metrics are logged per epoch, so Lightning's advice on the step-logging interval does not apply.
warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")


def build_callbacks(cfg: DictConfig) -> list[L.Callback]:
    return [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]


def build_loggers(cfg: DictConfig) -> list:
    return [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]


def save_resolved_config(cfg: DictConfig) -> None:
    out = Path(cfg.paths.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit the model described by `cfg` (and test it if cfg.test); return the final metrics."""
    check_config(cfg)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()  # data problems surface before the run writes anything
    L.seed_everything(cfg.seed, workers=True)
    # TF32 matmuls on Ampere+ GPUs: same results to ~1e-3, much faster; no effect on CPU.
    torch.set_float32_matmul_precision("high")
    model = instantiate(cfg.model)
    trainer = instantiate(cfg.trainer, callbacks=build_callbacks(cfg), logger=build_loggers(cfg))
    save_resolved_config(cfg)

    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if cfg.get("test"):
        best = trainer.checkpoint_callback and trainer.checkpoint_callback.best_model_path
        ckpt = "best" if best else None
        for result in trainer.test(model, datamodule=datamodule, ckpt_path=ckpt):
            metrics.update({k: float(v) for k, v in result.items()})
    return metrics
