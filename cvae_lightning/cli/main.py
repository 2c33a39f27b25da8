"""What the entry scripts share: the steps before Hydra composes a config, and a user error
as one line and its exit code, never a traceback."""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from cvae_lightning.cli.overrides import check_overrides
from cvae_lightning.cli.runs import (
    check_sweep,
    is_multirun,
    parallel_jobs,
    register_resolvers,
    resume_overrides,
)
from cvae_lightning.errors import UserError


def _remove_empty_run_dir() -> None:
    """Hydra makes the run dir before we can refuse a config: drop it if it holds nothing else."""
    if not HydraConfig.initialized():
        return
    out = Path(HydraConfig.get().runtime.output_dir)
    if out.is_dir() and {p.name for p in out.iterdir()} <= {".hydra", "train.log"}:
        shutil.rmtree(out, ignore_errors=True)


def exit_on_user_error(fn: Callable, *args):
    """Run fn; a problem the user can act on prints one line and exits with its code.

    In a multirun the error propagates instead, so Hydra marks just this job failed, runs the
    others, and the SweepReport callback lists it at the end.
    """
    try:
        return fn(*args)
    except UserError as e:
        if is_multirun():
            raise
        for handler in logging.getLogger().handlers:  # train.log gets every line before exit
            handler.flush()
        _remove_empty_run_dir()
        print(f"error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)


def prepare(config_name: str, resume: bool = False) -> None:
    """What every entry script does before Hydra composes its config: register the resolvers
    conf/ uses, refuse a misspelt key in one line, and (train.py) expand `ckpt_path=last`."""
    register_resolvers()
    exit_on_user_error(check_overrides, config_name, sys.argv[1:])
    if resume:
        sys.argv[1:] = exit_on_user_error(resume_overrides, sys.argv[1:])


def train_command(cfg: DictConfig) -> float | None:
    """train.py: a run (one job of a sweep, perhaps), and the metric sweepers optimise."""
    from cvae_lightning.training.threads import available_cores
    from cvae_lightning.training.train import train  # Lightning: only where training happens

    def run() -> dict[str, float]:
        check_sweep(cfg, is_multirun())
        return train(cfg, jobs=parallel_jobs(available_cores()))

    return exit_on_user_error(run).get(cfg.get("optimized_metric"))
