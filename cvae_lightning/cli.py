"""What the entry scripts share: a user error becomes one line and its exit code."""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig

from cvae_lightning.errors import UserError
from cvae_lightning.runs import is_multirun


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
