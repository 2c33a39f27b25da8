"""The run's experiment trackers (Lightning loggers: TensorBoard, CSV, MLflow, W&B): checked
before the run starts, and fed what each can show: images, the config as hyperparameters (and
TensorBoard's HParams tab), and the final metrics. train.py builds them from the logger group."""

from __future__ import annotations

import netrc
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger, WandbLogger
from torch.utils.tensorboard.summary import hparams

from cvae_lightning.errors import ConfigError
from cvae_lightning.images import to_array

# Each tracker's package and the extra that installs it (the base install has TensorBoard/CSV).
PACKAGES = {"MLFlowLogger": "mlflow", "WandbLogger": "wandb"}
EXTRA = "trackers"


def check_reachable(name: str, conf: Mapping) -> None:
    """An MLflow server that does not answer, or W&B online without a login, would retry for
    minutes or wait at a prompt: say so before the run starts."""
    target = str(conf.get("_target_", ""))
    uri = str(conf.get("tracking_uri") or "")
    if target.endswith("MLFlowLogger") and uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5):
                pass
        except (urllib.error.URLError, OSError) as e:
            why = getattr(e, "reason", e)
            raise ConfigError(
                f"logger.{name}.tracking_uri={uri} cannot be reached ({why}): start the server "
                "(`uv run mlflow server --port ...`) or drop the override to log to the local "
                "store under outputs/"
            ) from None
    online = target.endswith("WandbLogger") and not conf.get("offline", False)
    if online and os.environ.get("WANDB_MODE") not in ("offline", "disabled") and not wandb_key():
        raise ConfigError(
            f"logger.{name}.offline=false needs a W&B login: run `uv run wandb login` (or set "
            f"WANDB_API_KEY), or keep logger.{name}.offline=true and `wandb sync` the run later"
        )


def wandb_key() -> bool:
    """Whether a W&B API key is set up (the environment, or ~/.netrc as `wandb login` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        hosts = netrc.netrc().hosts
    except (OSError, netrc.NetrcParseError):
        return False
    return any("wandb" in host for host in hosts)


def flat_hparams(cfg: Mapping) -> dict[str, float | int | str | bool]:
    """model/data/trainer/seed as TensorBoard HParams values (dotted keys, plain scalars)."""
    flat: dict = {"seed": cfg.seed}

    def walk(node, prefix: str) -> None:
        for key, value in node.items():
            if key in ("_target_", "_partial_", "plugins", "default_root_dir", "root", "cache_dir"):
                continue
            if isinstance(value, Mapping):
                walk(value, f"{prefix}{key}.")
            elif value is None or isinstance(value, int | float | str | bool):
                flat[f"{prefix}{key}"] = "null" if value is None else value

    for group in ("model", "data", "trainer"):
        walk(cfg[group], f"{group}.")
    return flat


def log_hparams(trainer: L.Trainer, cfg: Mapping, metrics: dict[str, float]) -> None:
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


def tensorboard_writers(trainer: L.Trainer) -> list:
    """The SummaryWriters of the run's TensorBoard loggers (none when logging is off)."""
    return [lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]


def log_image(trainer: L.Trainer, tag: str, image: torch.Tensor) -> None:
    """Show an image (C, H, W in [0, 1]) in every tracker that has images, at this epoch.
    CSV has none: the run's images/ folder holds the same pictures as PNG."""
    for lg in trainer.loggers:
        if isinstance(lg, TensorBoardLogger):
            lg.experiment.add_image(tag, image, global_step=trainer.current_epoch)
        elif isinstance(lg, MLFlowLogger):
            lg.experiment.log_image(lg.run_id, to_array(image), key=tag, step=trainer.current_epoch)
        elif isinstance(lg, WandbLogger):
            lg.log_image(key=tag, images=[to_array(image)], step=trainer.global_step)


def log_scalars(trainer: L.Trainer, values: Mapping[str, float]) -> None:
    """Metrics computed outside Lightning's logging (densities, eval.py's), to every tracker."""
    for lg in trainer.loggers:
        lg.log_metrics(dict(values), step=trainer.global_step)
        lg.save()


def log_config(trainer: L.Trainer, params: Mapping[str, float | int | str | bool]) -> None:
    """The run's flat config as hyperparameters where the tracker keeps them by run (MLflow's
    params, W&B's config). TensorBoard gets them at the end, beside the final metrics."""
    for lg in trainer.loggers:
        if isinstance(lg, MLFlowLogger | WandbLogger):
            lg.log_hyperparams(dict(params))


def log_run_end(trainer: L.Trainer, final: Mapping[str, float], out: Path) -> None:
    """The run's final metrics where a tracker keeps a summary (W&B), the run's config.yaml and
    eval/metrics.json as MLflow artifacts, then close what stays open (a W&B run)."""
    files = [out / "config.yaml", out / "eval" / "metrics.json"]
    for lg in trainer.loggers:
        if isinstance(lg, MLFlowLogger):
            for path in filter(Path.is_file, files):
                folder = path.parent.relative_to(out).as_posix()
                lg.experiment.log_artifact(lg.run_id, str(path), None if folder == "." else folder)
            # Lightning ends the run after fit; the test and eval.py's results came later.
            lg.experiment.set_terminated(lg.run_id, "FINISHED")
        elif isinstance(lg, WandbLogger):
            lg.experiment.summary.update(dict(final))
            lg.experiment.finish()
