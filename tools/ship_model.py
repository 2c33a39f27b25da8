"""Make a run the shipped model: its last checkpoint (weights only) and fitted densities go to
weights/mnist_cvae/ and the README's pictures are redrawn:
`uv run tools/ship_model.py outputs/<date>/<time>`, then `uv run eval.py` measures it."""

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cvae_lightning.cli.main import exit_on_user_error  # noqa: E402
from cvae_lightning.inference.ship import export_model, readme_pictures  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run", help="the run folder (or a .ckpt file) to ship")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    shipped = exit_on_user_error(export_model, args.run)
    for path in exit_on_user_error(readme_pictures, shipped):
        print(f"wrote {path}")
