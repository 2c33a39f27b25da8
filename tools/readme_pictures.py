"""Redraw the README's pictures (docs/*.png) from the shipped model, or from another checkpoint:
`uv run tools/readme_pictures.py [--ckpt outputs/<date>/<time>] [--out docs/<name>]`."""

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cvae_lightning.cli.main import exit_on_user_error  # noqa: E402
from cvae_lightning.inference.ship import readme_pictures  # noqa: E402
from cvae_lightning.paths import (
    PROJECT_ROOT,  # noqa: E402
    SHIPPED,  # noqa: E402
)

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ckpt", default=str(SHIPPED), help="a run folder or a .ckpt file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs", help="the folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for path in exit_on_user_error(lambda: readme_pictures(args.ckpt, args.out, seed=args.seed)):
        print(f"wrote {path}")
