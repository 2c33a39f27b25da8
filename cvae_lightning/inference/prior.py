"""Where a loaded model's z comes from: the densities stored beside its checkpoint, or ones
fitted now on the run's training images (sample.py, eval.py and the explorer ask here)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from cvae_lightning.densities.base import Fitter, LatentDensity
from cvae_lightning.densities.store import density_path, fit_for_model
from cvae_lightning.errors import ConfigError
from cvae_lightning.inference.pretrained import PretrainedVAE
from cvae_lightning.inference.run_data import DataSource, run_training_images

log = logging.getLogger(__name__)


def densities_for(
    vae: PretrainedVAE, names: list[str], fitters: Mapping[str, Fitter], data: DataSource,
    images: int | None = None, codes: str = "mean", seed: int = 0,
) -> dict[str, LatentDensity]:  # fmt: skip
    """The named densities: those stored beside the checkpoint (if fitted on `codes`), the
    others fitted now on (at most `images` of) the run's training images, and said so."""
    unknown = [n for n in names if n not in fitters]
    if unknown:
        raise ConfigError(
            f"density {unknown[0]!r} is unknown: choose one of {', '.join(fitters)} (the keys "
            "of density.fitters)"
        )
    fitted_on = vae.ckpt.get("densities", {}).get("codes")
    have = vae.densities if fitted_on == codes else {}
    missing = [n for n in names if n not in have]
    if missing:
        where = density_path(vae.path)
        why = (
            f"there is no {where}" if not vae.stored
            else f"{where} was fitted on codes={fitted_on}, not codes={codes}"
            if fitted_on != codes else f"{where} does not hold them"
        )  # fmt: skip
        log.info(f"fitting {', '.join(missing)} on the training images now: {why}")
        train = run_training_images(data, vae.ckpt, images)
        chosen = {n: fitters[n] for n in missing}
        have = {**have, **fit_for_model(vae.model, chosen, train, codes=codes, seed=seed)[0]}
    return {n: have[n] for n in names}


def choose(
    vae: PretrainedVAE, prior: str, auto_fit: str, fitters: Mapping[str, Fitter],
    data: DataSource, **fitting,
) -> LatentDensity:  # fmt: skip
    """`prior`'s density: auto is the best stored one, or `auto_fit` fitted now (then kept as
    the best) when none is stored; a name is that density (densities_for)."""
    if prior == "auto" and vae.stored:
        log.info(f"prior=auto: drawing from {vae.best}, the best density in "
                 f"{density_path(vae.path)} ({vae.why})")  # fmt: skip
        return vae.densities[vae.best]
    name = auto_fit if prior == "auto" else prior
    if prior == "auto":
        log.info(f"prior=auto: no stored densities, so drawing from {name}")
    density = densities_for(vae, [name], fitters, data, **fitting)[name]
    if not vae.stored:
        vae.densities[name], vae.best = density, name
    return density
