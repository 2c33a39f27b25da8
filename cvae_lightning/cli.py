"""What the entry scripts share: user errors become one line and exit code 2."""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from cvae_lightning.callbacks import NonFiniteLossError
from cvae_lightning.checkpoints import CheckpointError
from cvae_lightning.checks import ConfigError
from cvae_lightning.classifier_training import AccuracyTooLowError
from cvae_lightning.datasets import DatasetError
from cvae_lightning.resolvers import PROJECT_ROOT  # noqa: F401 (registers conf/'s resolvers)

# Problems the user can act on: one line and an exit code each, no traceback.
EXIT_CODES = {
    ConfigError: 2, DatasetError: 2, CheckpointError: 2,  # ClassifierError too (a subclass)
    NonFiniteLossError: 1, AccuracyTooLowError: 1,
}  # fmt: skip


def is_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


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
    except tuple(EXIT_CODES) as e:
        if is_multirun():
            raise
        logging.shutdown()
        _remove_empty_run_dir()
        print(f"error: {e}", file=sys.stderr)
        sys.exit(next(code for cls, code in EXIT_CODES.items() if isinstance(e, cls)))
