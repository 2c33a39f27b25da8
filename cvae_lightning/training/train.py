"""train.py's command: build everything from a composed Hydra config, fit, return the metrics."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from torch.multiprocessing import ProcessRaisedException

from cvae_lightning import errors
from cvae_lightning.data import resolve_channels, source_from
from cvae_lightning.errors import ConfigError, Interrupted, require
from cvae_lightning.evaluation.evaluate import evaluate
from cvae_lightning.inference.checkpoint import (
    ARCHITECTURE,
    check_architecture_matches,
    read_checkpoint,
    resolve_checkpoint,
)
from cvae_lightning.inference.run_data import DataSource
from cvae_lightning.inference.sample import build_fitters
from cvae_lightning.training.checkpointing import SaveOnInterrupt, latest_checkpoint
from cvae_lightning.training.cuda_graph import choose_cuda_graph
from cvae_lightning.training.datamodule import check_data_settings
from cvae_lightning.training.loggers import (
    EXTRA,
    PACKAGES,
    check_reachable,
    flat_hparams,
    log_config,
    log_hparams,
    log_run_end,
    log_scalars,
)
from cvae_lightning.training.module import check_model_settings
from cvae_lightning.training.precision import AUTO, choose_precision
from cvae_lightning.training.threads import share_cores

# What the user cannot act on stays off the console: Lightning's advice on the step-logging
# interval (metrics are logged per epoch), its pytree deprecation (its own code), the model
# summary's note that it sizes bf16 weights as fp32, and its adverts for cloud services.
warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
warnings.filterwarnings("ignore", r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")
warnings.filterwarnings("ignore", ".*is not supported by the model summary.*")
# The per-epoch means are summed across processes before they are logged (module.py).
warnings.filterwarnings("ignore", ".*recommended to use `self.log.*sync_dist=True`.*")
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
    lambda record: not str(record.msg).startswith("💡 Tip")
)
log = logging.getLogger(__name__)


def build_callbacks(cfg: DictConfig) -> list[L.Callback]:
    return [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]


def build_loggers(cfg: DictConfig) -> list:
    """The configured loggers; a missing package or an unusable tracker is one clear line."""
    loggers = []
    for name, conf in (cfg.get("logger") or {}).items():
        if conf is None:
            continue
        check_reachable(name, conf)
        try:
            loggers.append(instantiate(conf))
        except InstantiationException as e:  # Hydra wraps what the logger's __init__ raised
            # Lightning checks for the tracker's package as the logger is made.
            if isinstance(e.__cause__, ImportError):
                raise ConfigError(missing_package(name, conf._target_)) from None
            raise
    return loggers


def missing_package(name: str, target: str) -> str:
    package = PACKAGES.get(target.rsplit(".", 1)[-1], target.split(".")[0])
    return (
        f"logger.{name} needs the {package} package, which is not installed: add the "
        f"'{EXTRA}' extra (`uv sync --extra {EXTRA}`, or `uv run --extra {EXTRA} train.py ...`), "
        f"or choose another logger (logger=tensorboard)"
    )


def save_resolved_config(cfg: DictConfig) -> None:
    out = Path(cfg.paths.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))


def check_settings(cfg: DictConfig) -> None:
    """Every value of the run's config, before any work: each group's own check, and the
    densities the run will fit."""
    check_model_settings(cfg.model, cfg.data.image_size, cfg.data.channels)
    check_data_settings(cfg.data)
    if cfg.get("density") and (cfg.get("callbacks") or {}).get("densities"):
        build_fitters(cfg.density)
    epochs = cfg.trainer.get("max_epochs")
    require(epochs is None or epochs >= 1, "trainer.max_epochs", epochs, "it must be >= 1")


def train(
    cfg: DictConfig, extra_callbacks: list[L.Callback] | None = None, jobs: int = 1
) -> dict[str, float]:
    """Fit the model described by `cfg` (and test it if cfg.test); return the final metrics.

    `extra_callbacks` join those of the config (benchmarks and tests use it to look inside);
    `jobs` runs of a sweep train at once on this machine (each takes its share of the cores).
    """
    check_settings(cfg)
    # A missing tracker package or an unreachable server fails here, before any other work
    # (the loggers start their runs lazily, on the first thing logged).
    loggers = build_loggers(cfg)
    adopt_data(cfg)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()  # data problems surface before the run writes anything
    ckpt_path = resolve_checkpoint(cfg.ckpt_path) if cfg.get("ckpt_path") else None
    if ckpt_path is not None:
        architecture = {k: OmegaConf.select(cfg, key) for k, key in ARCHITECTURE.items()}
        check_architecture_matches(read_checkpoint(ckpt_path), ckpt_path, architecture)
    if cfg.trainer.get("precision") == AUTO:
        cfg.trainer.precision, why = choose_precision(str(cfg.trainer.accelerator))
        log.info(f"trainer.precision=auto chose {cfg.trainer.precision}: {why}")
    choose_step(cfg)
    log.info(share_cores(jobs))
    L.seed_everything(cfg.seed, workers=True)
    # TF32 matmuls on Ampere+ GPUs: same results to ~1e-3, much faster; no effect on CPU.
    torch.set_float32_matmul_precision("high")
    model = instantiate(cfg.model)
    callbacks = build_callbacks(cfg) + list(extra_callbacks or [])
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)
    save_resolved_config(cfg)
    if trainer.is_global_zero:
        log_config(trainer, flat_hparams(cfg))

    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except SystemExit:  # Lightning exits 1 after a KeyboardInterrupt
        raise_if_interrupted(trainer)
        raise
    except ProcessRaisedException as e:  # ddp_spawn: a worker's error, as its traceback text
        raise worker_error(e) from None
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    best = trainer.checkpoint_callback and trainer.checkpoint_callback.best_model_path
    if cfg.get("test"):
        ckpt = "best" if best else None
        for result in trainer.test(model, datamodule=datamodule, ckpt_path=ckpt, weights_only=True):
            metrics.update({k: float(v) for k, v in result.items()})
    if trainer.is_global_zero:
        log_hparams(trainer, cfg, metrics)
        if cfg.get("test") and cfg.get("eval") and best:
            # eval's own numbers go under eval/: trainer.test owns test/* (the HParams tab's).
            results = evaluate(
                best, settings=cfg.eval, density=cfg.density, data=DataSource.of(cfg.data),
                out=Path(cfg.paths.output) / "eval", seed=cfg.seed,
                device=trainer.strategy.root_device,  # where it trained
            )  # fmt: skip
            metrics.update({f"eval/{k}": v for k, v in results.items()})
            log_scalars(trainer, {k: v for k, v in metrics.items() if k.startswith("eval/")})
        log_run_end(trainer, metrics, Path(cfg.paths.output))
    return metrics


def choose_step(cfg: DictConfig) -> None:
    """model.cuda_graph (true, false, auto) becomes true or false for this machine and trainer;
    where a graph was asked for and cannot be had, the console says why in one line."""
    t = cfg.trainer
    graph, why_not = choose_cuda_graph(
        cfg.model.get("cuda_graph", False), t.accelerator, t.devices, t.strategy, t.precision,
        t.get("gradient_clip_val"), t.get("accumulate_grad_batches", 1), cfg.model.get("compile"),
    )  # fmt: skip
    if why_not:
        log.info(f"model.cuda_graph: training eagerly, as {why_not}")
    elif graph:
        log.info("model.cuda_graph: each training step is one CUDA graph, captured once")
    with open_dict(cfg):
        cfg.model.cuda_graph = graph


def adopt_data(cfg: DictConfig) -> None:
    """What the data says goes into the config before anything is built: data.channels=auto
    becomes the number, and the model learns the classes (their count for a conditional
    model, their names for pictures and `sample.py label=...`). A conditional model needs
    labelled data."""
    source = source_from(cfg.data)
    classes = source.classes
    with open_dict(cfg):
        cfg.data.channels = resolve_channels(source, cfg.data.channels, cfg.data.cache_dir)
    if cfg.model.get("conditional") and not classes:
        raise ConfigError(
            f"model.conditional=true needs labelled images, and {source.described} has no "
            "classes: put "
            "the images in class subfolders (DIR/<class>/...), or set model.conditional=false"
        )
    with open_dict(cfg):
        cfg.model.num_classes = max(len(classes), 1)
        cfg.model.classes = list(classes)


def worker_error(e: ProcessRaisedException) -> Exception:
    """The error a ddp_spawn worker raised, as the parent can report it: a user error (the last
    line of its traceback) as that error, anything else as it came."""
    name, _, message = str(e).strip().splitlines()[-1].partition(": ")
    cls = getattr(errors, name.rsplit(".", 1)[-1], None)
    if isinstance(cls, type) and issubclass(cls, errors.UserError):
        return cls(message)
    return e


def raise_if_interrupted(trainer: L.Trainer) -> None:
    """After a second Ctrl-C (which stops at once, saving nothing): one line naming the last
    checkpoint. The first Ctrl-C saves and raises its own line (SaveOnInterrupt)."""
    for cb in trainer.callbacks:
        if isinstance(cb, SaveOnInterrupt) and cb.requested and cb.saved is None:
            where = f"epoch {trainer.current_epoch + 1}, step {trainer.global_step}"
            last = latest_checkpoint(trainer) or "none yet"
            raise Interrupted(f"training stopped at {where}; last checkpoint: {last}")
