"""OmegaConf resolvers used by conf/: registered on import (every entry script imports this)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from omegaconf import OmegaConf

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
