"""Fit the latent densities of a run that has none (trained before they existed, or with
callbacks.densities=null) and store them beside its checkpoints, as training does:
`uv run tools/fit_densities.py outputs/<date>/<time> [density overrides ...]`."""

import argparse
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.utils import instantiate  # noqa: E402

from cvae_lightning.cli.main import exit_on_user_error  # noqa: E402
from cvae_lightning.cli.runs import register_resolvers  # noqa: E402
from cvae_lightning.densities.store import density_path, fit_for_model, save_densities  # noqa: E402
from cvae_lightning.errors import DensityFileError  # noqa: E402
from cvae_lightning.inference.checkpoint import load_model, resolve_checkpoint  # noqa: E402
from cvae_lightning.inference.run_data import (  # noqa: E402
    DataSource,
    checkpoint_images,
    run_training_images,
)


def fit_run(run: str, overrides: list[str], force: bool) -> Path:
    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("sample", overrides=["density.images=null", *overrides])
    path = resolve_checkpoint(run)
    out = density_path(path)
    if out.exists() and not force:
        raise DensityFileError(f"{out} exists already: pass --force to replace it")
    model, ckpt = load_model(path)
    source = DataSource.of(cfg.data)
    train = run_training_images(source, ckpt, cfg.density.images)
    test = checkpoint_images(source, ckpt, train=False)
    start = time.perf_counter()
    densities, record = fit_for_model(
        model, dict(instantiate(cfg.density.fitters)), train, test, cfg.density.codes, cfg.seed
    )
    logging.info(f"encoded and fitted in {time.perf_counter() - start:.1f}s")
    for name, r in record["report"].items():
        logging.info(f"{name:10s} fit {r['fit_seconds']:6.1f}s  test-code log-likelihood "
                     f"{r['test_log_likelihood']:.3f}")  # fmt: skip
    return save_densities(out, densities, model, ckpt.get("global_step"), record)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run", help="a run folder or a .ckpt file")
    parser.add_argument("overrides", nargs="*", help="e.g. density.codes=sample")
    parser.add_argument("--force", action="store_true", help="replace an existing densities.pt")
    args = parser.parse_intermixed_args()  # --force may stand anywhere
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(f"wrote {exit_on_user_error(fit_run, args.run, args.overrides, args.force)}")
