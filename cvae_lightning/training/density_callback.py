"""The callback that fits the latent densities at the end of training and shows what they draw."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from cvae_lightning.densities.base import Fitter, draw_temperature
from cvae_lightning.densities.store import best_density, fit_for_model, save_densities
from cvae_lightning.inference.draw import standard_vs_density
from cvae_lightning.training.callbacks import emit_image
from cvae_lightning.training.loggers import log_scalars

log = logging.getLogger(__name__)


class FitLatentDensities(L.Callback):
    """At the end of training: fit each density on the codes of (at most `images` of) the
    training images the run used, log each fit's time and its log-likelihood of the test
    images' codes, save them all to `path`, and write a sample grid from the best density (at
    `temperature`) beside N(0, I) samples of the same seed (PNG and TensorBoard)."""

    def __init__(
        self,
        path: str,
        images_dir: str,
        fitters: dict[str, Fitter],
        codes: str = "mean",
        images: int | None = None,
        seed: int = 0,
        temperature: float = 1.0,
        n: int = 64,
        rows: int = 8,
    ):
        self.path, self.images_dir = Path(path), Path(images_dir)
        self.fitters, self.codes, self.images = dict(fitters), codes, images
        self.seed, self.n, self.rows, self.temperature = seed, n, rows, temperature

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.fast_dev_run or not self.fitters:
            return
        model, data = pl_module.model, trainer.datamodule
        was_training = model.training
        train_x, train_y = data.train_data
        train = (train_x[: self.images], train_y[: self.images])
        densities, record = fit_for_model(
            model, self.fitters, train, data.val_data, codes=self.codes, seed=self.seed
        )
        save_densities(self.path, densities, model, trainer.global_step, record)
        for name, r in record["report"].items():
            log.info(
                f"density {name}: fitted on {record['images']} codes in {r['fit_seconds']:.1f}s, "
                f"test-code log-likelihood {r['test_log_likelihood']:.3f}"
            )
            log_scalars(trainer, {f"density/{name}/{key}": value for key, value in r.items()})
        best, why = best_density(record)
        log.info(f"wrote {self.path}; best density: {best} ({why})")
        self._pictures(trainer, model, densities, best)
        model.train(was_training)

    def _pictures(self, trainer, model, densities: dict, best: str) -> None:
        t = draw_temperature(densities[best], None, self.temperature)
        fitted, side_by_side = standard_vs_density(
            model, densities[best], best, t, self.n, self.n // self.rows, self.seed
        )
        emit_image(trainer, self.images_dir, "images/samples_fitted", fitted, f"samples_{best}.png")
        emit_image(
            trainer, self.images_dir, "images/standard_vs_fitted", side_by_side,
            f"samples_standard_vs_{best}.png",
        )  # fmt: skip
