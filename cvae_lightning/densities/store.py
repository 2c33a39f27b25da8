"""Latent densities for a trained model: fitted on its training codes, kept in the run folder
beside the checkpoints (`checkpoints/densities.pt`), loaded back safely, and the best one picked.

The file holds tensors and plain values only, so it loads with `torch.load(weights_only=True)`.
It records the model it was fitted for (latent size, classes, training step), and a file that
does not match its checkpoint is refused, never silently refitted over.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch

from cvae_lightning.densities import KINDS
from cvae_lightning.densities.base import Codes, Fitter, LatentDensity, fit_all
from cvae_lightning.densities.layout import DENSITIES, read_densities, write_densities
from cvae_lightning.errors import CheckpointError, ConfigError, DensityFileError, require
from cvae_lightning.files import atomic_write
from cvae_lightning.paths import shipped_fix
from cvae_lightning.vae.latent import latent_codes
from cvae_lightning.vae.model import CVAE

FORMAT = "cvae-lightning-densities/1"
FILENAME = "densities.pt"

log = logging.getLogger(__name__)


CODES = ("mean", "sample")


def check_density_settings(codes: str, images: int | None, temperature: float) -> None:
    """The density group's values besides its fitters (which check their own as they are
    built): what codes the densities are fitted on, how many images, the drawing spread."""
    require(codes in CODES, "density.codes", codes, "use mean or sample")
    require(temperature > 0, "density.temperature", temperature, "it must be > 0")
    require(images is None or images >= 1, "density.images", images, "it must be null or >= 1")


def density_path(ckpt: str | Path) -> Path:
    """Where a checkpoint's densities live: densities.pt in the same folder (a Hub-layout
    model's model.safetensors: densities.safetensors)."""
    ckpt = Path(ckpt)
    return ckpt.parent / (DENSITIES if ckpt.suffix == ".safetensors" else FILENAME)


def eval_dir(ckpt: str | Path) -> Path:
    """Where eval.py writes a checkpoint's results: <run>/eval for a run's checkpoints/ file,
    else eval/ beside the checkpoint (the shipped model's)."""
    folder = Path(ckpt).parent
    return (folder.parent if folder.name == "checkpoints" else folder) / "eval"


def fit_for_model(
    model: CVAE,
    fitters: dict[str, Fitter],
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
    codes: str = "mean",
    seed: int = 0,
) -> tuple[dict[str, LatentDensity], dict]:
    """Fit every density on the codes of the training images (x in [0, 1], labels); with test
    images, also each density's log-likelihood of their codes. -> (densities, record)."""

    def encode(x, y) -> Codes:
        z = latent_codes(model, x, y, codes=codes, seed=seed).cpu().float()
        labels = y.cpu() if model.num_classes else None  # labels only split a conditional fit
        return Codes(z, labels, model.num_classes)

    fitted_on = encode(*train)
    held_out = encode(*test) if test is not None else None
    densities, report = fit_all(fitters, fitted_on, held_out)
    record = {"codes": codes, "images": len(fitted_on.z), "report": report}
    return densities, record


def save_densities(
    path: str | Path, densities: dict[str, LatentDensity], model: CVAE, step: int, record: dict
) -> Path:
    """Write densities.pt atomically: the old file stays whole if anything fails."""
    blob = {
        "format": FORMAT, "latent": model.latent, "num_classes": model.num_classes,
        "step": step, **record,
        "densities": {name: d.state() for name, d in densities.items()},
    }  # fmt: skip
    if Path(path).suffix == ".safetensors":
        return write_densities(path, blob)
    atomic_write(Path(path), lambda f: torch.save(blob, f))
    return Path(path)


def load_densities(
    path: str | Path, model: CVAE, step: int | None = None
) -> tuple[dict[str, LatentDensity], dict]:
    """The densities of a file fitted for `model` (weights_only load) and the file's record.

    A step that differs from the file's is only logged: the codes of the same run move little
    between its last and best checkpoint. Anything else that does not fit is refused.
    """
    path = Path(path)
    fix = shipped_fix(path) or (
        f"delete {path} to have it fitted anew, or restore the file that came with the run"
    )
    try:
        if path.suffix == ".safetensors":
            blob = read_densities(path)
        else:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        assert isinstance(blob, dict) and blob.get("format") == FORMAT, "not a densities file"
        densities = {n: KINDS[s["kind"]].from_state(s) for n, s in blob["densities"].items()}
    except Exception as e:  # any unusable file is the same problem for the user
        raise DensityFileError(
            f"density file {path} is corrupt or not a cvae-lightning densities file "
            f"({type(e).__name__}): {fix}"
        ) from None
    fitted_for = (blob["latent"], blob["num_classes"])
    if fitted_for != (model.latent, model.num_classes):
        raise DensityFileError(
            f"density file {path} was fitted for latent={fitted_for[0]} and "
            f"{fitted_for[1]} classes, but the checkpoint has latent={model.latent} and "
            f"{model.num_classes} classes: pass the checkpoint of the run it belongs to, or {fix}"
        )
    if step is not None and blob.get("step") != step:
        log.info(f"{path} was fitted at step {blob.get('step')}, the checkpoint is at {step}")
    record = {k: v for k, v in blob.items() if k != "densities"}
    return densities, record


def best_density(record: dict, eval_metrics: Path | None = None) -> tuple[str, str]:
    """(name, why) of the density to draw from: the lowest FID in eval's metrics.json where
    eval has run, else the choice recorded in the file (a shipped model's), else the highest
    log-likelihood of the test images' codes."""
    names = list(record["report"])
    if eval_metrics is not None and eval_metrics.is_file():
        metrics = read_eval_metrics(eval_metrics)
        fids = {n: metrics[f"samples/{n}/fid"] for n in names if f"samples/{n}/fid" in metrics}
        if fids:
            name = min(fids, key=fids.get)
            return name, f"lowest FID in {eval_metrics} ({fids[name]:.2f})"
    if record.get("best") in names:
        return record["best"], "chosen by evaluation when the model was exported"
    liks = {n: r.get("test_log_likelihood") for n, r in record["report"].items()}
    liks = {n: v for n, v in liks.items() if v is not None}
    if not liks:
        return names[0], "the only choice recorded"
    name = max(liks, key=liks.get)
    return name, f"highest test-code log-likelihood ({liks[name]:.2f} nats)"


def corrupt_eval(path: Path, why: str) -> CheckpointError:
    """The one error for an eval.py metrics.json that cannot be used, and its fix."""
    return CheckpointError(
        f"evaluation results {path} are corrupt ({why}): delete the file, or write it anew with "
        "`uv run eval.py ckpt_path=<the run>`"
    )


def read_eval_metrics(path: Path) -> dict[str, float]:
    """The metrics of an eval.py metrics.json; a file that cannot be read is one clear error."""
    try:
        metrics = json.loads(path.read_text())["metrics"]
        assert isinstance(metrics, dict), "no metrics"
        return metrics
    except Exception as e:  # any unusable file is the same problem for the user
        raise corrupt_eval(path, type(e).__name__) from None


def swept_temperature(eval_metrics: Path) -> float | None:
    """The spread at which eval.py's temperature sweep found the lowest FID for the run's best
    fitted density (what its fitted densities draw at by default); None where none ran."""
    if not eval_metrics.is_file():
        return None
    t = read_eval_metrics(eval_metrics).get("sweep/temperature")
    if t is not None and not (isinstance(t, int | float) and t > 0):
        raise corrupt_eval(eval_metrics, f"sweep/temperature={t!r} is not a spread > 0")
    return t


class Stored(NamedTuple):
    densities: dict[str, LatentDensity]
    record: dict
    best: str  # the density to draw from
    why: str  # why it is the best


def stored_densities(ckpt: str | Path, model: CVAE, step: int | None = None) -> Stored | None:
    """The densities stored beside a checkpoint, the file's record and the best one (lowest
    FID where eval.py has run on it, ...: best_density); None when none are stored."""
    path = density_path(ckpt)
    if not path.is_file():
        return None
    densities, record = load_densities(path, model, step)
    return Stored(densities, record, *best_density(record, eval_dir(ckpt) / "metrics.json"))


def densities_for_checkpoint(
    model: CVAE,
    ckpt_path: Path,
    ckpt: dict,
    names: list[str],
    fitters: dict[str, Fitter],
    training_images: Callable[[], tuple[torch.Tensor, torch.Tensor]],
    codes: str = "mean",
    seed: int = 0,
) -> tuple[dict[str, LatentDensity], dict | None]:
    """The named densities for a checkpoint: from the densities.pt beside it where it holds
    them, the others fitted now on `training_images()` (and said so). -> (densities, record of
    the stored file or None)."""
    unknown = [n for n in names if n not in fitters]
    if unknown:
        raise ConfigError(
            f"density {unknown[0]!r} is unknown: choose one of {', '.join(fitters)} "
            "(the keys of density.fitters)"
        )
    path, stored, record = density_path(ckpt_path), {}, None
    if path.is_file():
        stored, record = load_densities(path, model, ckpt.get("global_step"))
        if record["codes"] != codes:  # fitted on other codes: not what was asked for
            stored = {}
    missing = [n for n in names if n not in stored]
    if missing:
        if record is None:
            why = f"there is no {path}"
        elif record["codes"] != codes:
            why = f"{path} was fitted on codes={record['codes']}, not codes={codes}"
        else:
            why = f"{path} does not hold them"
        log.info(f"fitting {', '.join(missing)} on the training images now: {why}")
        fitted, _ = fit_for_model(
            model, {n: fitters[n] for n in missing}, training_images(), codes=codes, seed=seed
        )
        stored |= fitted
    return {n: stored[n] for n in names}, record
