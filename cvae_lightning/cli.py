"""What the entry scripts share: user errors become one line and exit code 2."""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig

from cvae_lightning.checks import ConfigError
from cvae_lightning.datasets import DatasetError

USER_ERRORS = (ConfigError, DatasetError)
log = logging.getLogger(__name__)


def _remove_empty_run_dir() -> None:
    """Hydra makes the run dir before we can refuse a config: drop it if it holds nothing else."""
    if not HydraConfig.initialized():
        return
    out = Path(HydraConfig.get().runtime.output_dir)
    if out.is_dir() and {p.name for p in out.iterdir()} <= {".hydra", "train.log"}:
        shutil.rmtree(out, ignore_errors=True)


def exit_on_user_error(fn: Callable, *args):
    """Run fn; a ConfigError or DatasetError prints one line and exits with code 2."""
    try:
        return fn(*args)
    except USER_ERRORS as e:
        logging.shutdown()
        _remove_empty_run_dir()
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
