"""Where the project's own files are, whatever the working directory: the project root, the
shipped model, paths as results record them, and how to get a shipped file back."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The trained model that ships with the project (weights/, in the Hub layout).
SHIPPED = PROJECT_ROOT / "weights" / "mnist_cvae"


def project_relative(path: str | Path) -> str:
    """A path as recorded in results: relative to the project when inside it."""
    resolved = Path(path).resolve()
    inside = resolved.is_relative_to(PROJECT_ROOT)
    return str(resolved.relative_to(PROJECT_ROOT)) if inside else str(path)


def shipped_fix(path: str | Path) -> str | None:
    """For a file that ships in weights/: how to get it back."""
    weights = PROJECT_ROOT / "weights"
    if Path(path).resolve().is_relative_to(weights):
        return (
            "restore it with `git checkout -- weights/`, or rebuild it as docs/evaluation.md's "
            "'The shipped model' says"
        )
    return None
