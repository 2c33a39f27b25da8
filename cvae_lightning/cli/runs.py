"""Where runs live: the OmegaConf resolvers conf/ uses, run and sweep folders, and finding the
newest run to resume (`ckpt_path=last`). No Lightning here: every entry script imports this
before Hydra composes its config."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf

from cvae_lightning.errors import CheckpointError, require
from cvae_lightning.paths import PROJECT_ROOT, project_relative

# Where train.py puts single runs (conf/hydra/default.yaml), relative to the working directory.
RUNS_DIR = Path("outputs")


def short_dirname(name: str, limit: int = 120) -> str:
    """A sweep job's folder name from its overrides, safe as one path component."""
    name = name.replace("/", "_") or "default"
    if len(name) <= limit:
        return name
    return f"{name[: limit - 9]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def register_resolvers() -> None:
    """`${project_root:}` (conf/paths) finds the data from any working directory;
    `${dirname:...}` names sweep job folders; `${relative:PATH}` is a path as results record it
    (trackers name their runs by the run folder). Entry scripts and tests call this once."""
    OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT), replace=True)
    OmegaConf.register_new_resolver("dirname", short_dirname, replace=True)
    OmegaConf.register_new_resolver("relative", project_relative, replace=True)


def is_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def check_sweep(cfg, multirun: bool) -> None:
    """What a Hydra multirun cannot do: DDP's child processes would re-run the whole sweep."""
    strategy = str(cfg.trainer.get("strategy", "auto"))
    ddp = strategy.startswith("ddp") and "spawn" not in strategy
    require(not (multirun and ddp), "trainer.strategy", strategy,
            "a Hydra multirun cannot use it (DDP's child processes would re-run the whole "
            "sweep): use trainer.strategy=ddp_spawn, or start each run without -m")  # fmt: skip


def parallel_jobs(cores: int) -> int:
    """How many jobs of this sweep run at once on this machine: the joblib launcher's n_jobs
    (-1: one per core, as joblib counts), 1 for every other launcher and outside a sweep."""
    if not is_multirun():
        return 1
    launcher = HydraConfig.get().launcher
    if "JoblibLauncher" not in str(launcher.get("_target_", "")):
        return 1
    n_jobs = int(launcher.get("n_jobs") or 1)
    return max(1, n_jobs if n_jobs > 0 else cores + 1 + n_jobs)


def newest_run(runs_dir: Path = RUNS_DIR) -> Path:
    """The run folder under runs_dir whose checkpoints/last.ckpt was written last."""
    found = list(runs_dir.glob("*/*/checkpoints/last.ckpt")) + list(
        runs_dir.glob("*/checkpoints/last.ckpt")
    )
    if not found:
        raise CheckpointError(
            f"ckpt_path=last found no run to resume: no {runs_dir}/<date>/<time>/checkpoints/"
            "last.ckpt under this folder; start a run first, or pass ckpt_path=<run folder>"
        )
    return max(found, key=lambda p: p.stat().st_mtime_ns).parent.parent


def resume_overrides(args: list[str], runs_dir: Path = RUNS_DIR) -> list[str]:
    """Command-line overrides with `ckpt_path=last` expanded: the newest run's overrides first
    (so it resumes the same recipe), then the user's, its last.ckpt, and its folder as the run
    folder, so the resumed run keeps writing where it left off."""
    if "ckpt_path=last" not in args:
        return args
    run = newest_run(runs_dir)
    saved = run / ".hydra" / "overrides.yaml"
    before = yaml.safe_load(saved.read_text()) if saved.is_file() else []
    before = [a for a in before or [] if not a.startswith(("ckpt_path=", "hydra.run.dir="))]
    rest = [a for a in args if a != "ckpt_path=last"]
    last = run / "checkpoints" / "last.ckpt"
    return [*before, *rest, f"ckpt_path={last}", f"hydra.run.dir={run}"]
