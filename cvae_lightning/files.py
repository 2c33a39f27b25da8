"""Writing files so that a crash or a full disk never leaves half a file where a good one was;
reading safetensors files (tensors without pickle)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import torch
from safetensors import safe_open

from cvae_lightning.errors import DiskFullError


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Write through a temporary file in the same folder, flushed to disk, then rename it over
    `path` in one step: readers see the old file or the new one, never a truncated one.

    A write that fails for want of space or permission removes the temporary file and raises
    DiskFullError naming the file and the cause; whatever was at `path` stays as it was.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        cause = _os_error(e)
        if cause is None:
            raise
        kept = f"the previous {path} is intact" if path.exists() else "nothing was written"
        raise DiskFullError(
            f"could not write {path} ({cause.strerror or cause}): {kept}; free some space "
            "(or fix the folder's permissions) and run again"
        ) from e
    return path


def _os_error(e: BaseException) -> OSError | None:
    """The OSError behind a failed write: raised directly, or wrapped by a library (torch.save
    turns some into RuntimeError)."""
    while e is not None:
        if isinstance(e, OSError):
            return e
        e = e.__cause__ or e.__context__
    return None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A safetensors file's tensors (on the CPU) and its metadata."""
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}  # noqa: SIM118
