"""Training entry logic: build everything from a composed Hydra config, fit, return the metrics."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from torch.multiprocessing import ProcessRaisedException
from torch.utils.tensorboard.summary import hparams

from cvae_lightning import errors
from cvae_lightning.checkpointing import SaveOnInterrupt, latest_checkpoint
from cvae_lightning.cuda_graph import choose_cuda_graph
from cvae_lightning.data import resolve_channels, source_from
from cvae_lightning.errors import ConfigError, Interrupted
from cvae_lightning.evaluation import evaluate
from cvae_lightning.loading import (
    ARCHITECTURE,
    DataSource,
    check_architecture_matches,
    read_checkpoint,
    resolve_checkpoint,
)
from cvae_lightning.precision import AUTO, choose_precision
from cvae_lightning.runs import is_multirun, parallel_jobs
from cvae_lightning.threads import available_cores, share_cores
from cvae_lightning.trackers import (
    build_loggers,
    log_config,
    log_run_end,
    log_scalars,
    tensorboard_writers,
)
from cvae_lightning.validation import check_config

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


def flat_hparams(cfg: DictConfig) -> dict[str, float | int | str | bool]:
    """model/data/trainer/seed as TensorBoard HParams values (dotted keys, plain scalars)."""
    flat: dict = {"seed": cfg.seed}

    def walk(node, prefix: str) -> None:
        for key, value in node.items():
            if key in ("_target_", "_partial_", "plugins", "default_root_dir", "root", "cache_dir"):
                continue
            if isinstance(value, DictConfig):
                walk(value, f"{prefix}{key}.")
            elif value is None or isinstance(value, int | float | str | bool):
                flat[f"{prefix}{key}"] = "null" if value is None else value

    for group in ("model", "data", "trainer"):
        walk(cfg[group], f"{group}.")
    return flat


def log_hparams(trainer: L.Trainer, cfg: DictConfig, metrics: dict[str, float]) -> None:
    """Fill TensorBoard's HParams tab: this run's values beside its final metrics.

    The tab reads each metric from the run's scalar series of the same tag, so the final
    val/* and train/* values show up without writing any extra point into those curves.
    """
    shown = {k: v for k, v in metrics.items() if k.split("/")[0] in ("train", "val", "test")}
    if not shown:
        return
    for writer in tensorboard_writers(trainer):
        file_writer = writer._get_file_writer()
        for summary in hparams(flat_hparams(cfg), shown):
            file_writer.add_summary(summary)
        file_writer.flush()


def save_resolved_config(cfg: DictConfig) -> None:
    out = Path(cfg.paths.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))


def train(cfg: DictConfig, extra_callbacks: list[L.Callback] | None = None) -> dict[str, float]:
    """Fit the model described by `cfg` (and test it if cfg.test); return the final metrics.

    `extra_callbacks` join those of the config (benchmarks and tests use it to look inside).
    """
    check_config(cfg, multirun=is_multirun())
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
    cores = available_cores()
    log.info(share_cores(parallel_jobs(cores), cores))
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
