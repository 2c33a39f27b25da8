"""eval.py's logic: per-image quality of a checkpoint on the test split, to JSON and TensorBoard."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch.utils.tensorboard import SummaryWriter
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from cvae_lightning.checkpoints import resolve_checkpoint
from cvae_lightning.checks import ConfigError
from cvae_lightning.classifier import DigitClassifier, FeatureExtractor, load_classifier
from cvae_lightning.explore import posterior_means
from cvae_lightning.files import atomic_write
from cvae_lightning.latent_prior import FittedPrior
from cvae_lightning.losses import kl_divergence, reconstruction_loss
from cvae_lightning.metrics import active_units, iwae_loss, knn_accuracy, likelihood_constant
from cvae_lightning.model import CVAE
from cvae_lightning.resolvers import PROJECT_ROOT
from cvae_lightning.sample_quality import ClassifierVerdicts, fitted_prior_accuracy, sample_quality
from cvae_lightning.sampling import checkpoint_dataset, checkpoint_images, load_model

log = logging.getLogger(__name__)


def check_eval_config(e: DictConfig) -> None:
    for key in ("iwae_k", "batch_size", "knn_k", "kid_subset"):
        if e[key] < 1:
            raise ConfigError(f"eval.{key}={e[key]} is invalid: it must be >= 1")
    if e.samples < 0 or e.temperature <= 0:
        raise ConfigError(
            f"eval.samples={e.samples}, eval.temperature={e.temperature}: "
            "samples must be >= 0 (0 skips FID/KID) and temperature > 0"
        )


def find_classifier(
    e: DictConfig, dataset: str, channels: int
) -> tuple[DigitClassifier | None, dict]:
    """The classifier for FID/KID: eval.classifier, else the shipped one for the dataset.

    A path the user names must work; a missing default only skips the sample metrics.
    """
    if e.samples == 0:
        return None, {"skipped": "eval.samples=0"}
    if e.classifier:
        model, info = load_classifier(e.classifier)
        return model, {**info, "path": str(e.classifier)}
    path = PROJECT_ROOT / "weights" / f"{dataset}_classifier.pt"
    reason = None
    if channels != 1:
        reason = f"the classifier reads 1-channel images, this model makes {channels}"
    elif not path.is_file():
        reason = (
            f"no classifier for {dataset} ({path} is missing): train one with "
            f"`uv run train_classifier.py data.name={dataset}` or set eval.classifier"
        )
    if reason:
        log.warning(f"FID/KID and sample metrics skipped: {reason}")
        return None, {"skipped": reason}
    model, info = load_classifier(path)
    return model, {**info, "path": str(path)}


@torch.no_grad()
def test_split_metrics(
    model: CVAE, x_all: torch.Tensor, y_all: torch.Tensor, e: DictConfig,
    classifier: DigitClassifier | None,
) -> tuple[dict[str, float], torch.Tensor, int]:  # fmt: skip
    """ELBO terms, IWAE bound, SSIM/PSNR (and the classifier's accuracy) of reconstructions;
    also the posterior means and the number of images the IWAE bound used."""
    conditional = bool(model.num_classes)
    sums = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "iwae": 0.0}
    ssim = StructuralSimilarityIndexMeasure(data_range=1.0)
    psnr = PeakSignalNoiseRatio(data_range=1.0)
    verdicts = None if classifier is None else ClassifierVerdicts(FeatureExtractor(classifier))
    mus, iwae_n = [], min(e.iwae_images or len(x_all), len(x_all))
    for start in range(0, len(x_all), e.batch_size):
        x, y = x_all[start : start + e.batch_size], y_all[start : start + e.batch_size]
        y_in = y if conditional else None
        z, mu, logvar = model.encode(x, y_in)
        recon = reconstruction_loss(model.decode(z, y_in), x).item()
        kl = kl_divergence(mu, logvar).item()
        sums["recon"] += recon
        sums["kl"] += kl
        sums["loss"] += recon + kl
        x_mean = model.decode(mu, y_in).clamp(0, 1)
        ssim.update(x_mean, x)
        psnr.update(x_mean, x)
        if verdicts:
            verdicts.update(x_mean, y)
        mus.append(mu)
        m = max(0, min(len(x), iwae_n - start))
        if m:
            y_m = None if y_in is None else y_in[:m]
            sums["iwae"] += iwae_loss(model, x[:m], e.iwae_k, y_m).sum().item()
    n, const = len(x_all), likelihood_constant(x_all[0].numel())
    metrics = {
        "test/loss": sums["loss"] / n,
        "test/recon": sums["recon"] / n,
        "test/kl": sums["kl"] / n,
        "test/neg_elbo_nats": sums["loss"] / n + const,
        f"test/iwae{e.iwae_k}_loss": sums["iwae"] / iwae_n,
        f"test/iwae{e.iwae_k}_nll_nats": sums["iwae"] / iwae_n + const,
        "test/ssim": float(ssim.compute()),
        "test/psnr": float(psnr.compute()),
    }
    if verdicts:
        # Does a reconstruction still show the same digit? (The classifier's own accuracy on
        # the originals is real/class_accuracy.)
        metrics["test/recon_class_accuracy"] = float(verdicts.accuracy.compute())
    return metrics, torch.cat(mus), iwae_n


@torch.no_grad()
def evaluate(cfg: DictConfig) -> dict[str, float]:
    """All metrics of cfg.eval for cfg.ckpt_path; also written to JSON and TensorBoard."""
    e = cfg.eval
    check_eval_config(e)
    torch.manual_seed(cfg.seed)
    path = resolve_checkpoint(cfg.ckpt_path)
    model, ckpt = load_model(path)
    classifier, classifier_info = find_classifier(e, checkpoint_dataset(cfg, ckpt), model.channels)
    x_all, y_all = checkpoint_images(cfg, ckpt, train=False, n=e.images)
    log.info(f"evaluating {path} on {len(x_all)} test images (IWAE k={e.iwae_k}) ...")
    metrics, mu, iwae_n = test_split_metrics(model, x_all, y_all, e, classifier)

    conditional = bool(model.num_classes)
    train_x, train_y = checkpoint_images(cfg, ckpt, train=True, n=max(e.knn_train, e.samples))
    knn_x, knn_y = train_x[: e.knn_train], train_y[: e.knn_train]
    train_mu = posterior_means(model, knn_x, knn_y if conditional else None, e.batch_size)
    metrics["latent/active_units"] = active_units(mu)
    metrics[f"latent/knn{e.knn_k}_accuracy"] = knn_accuracy(train_mu, knn_y, mu, y_all, e.knn_k)

    shares = {}
    if classifier is not None:
        log.info(f"FID/KID, confidence and digit coverage of {e.samples} samples ...")
        quality, shares = sample_quality(
            model, classifier, x_all, y_all, train_x[: e.samples], e.samples, e.batch_size,
            cfg.seed, e.kid_subset, e.temperature,
        )  # fmt: skip
        metrics |= quality
        if conditional:
            prior = FittedPrior.fit(train_mu, knn_y, model.num_classes)
            metrics["samples/class_accuracy_fitted_prior"] = fitted_prior_accuracy(
                model, classifier, prior, e.samples, e.batch_size, cfg.seed
            )
    write_results(
        cfg, path, metrics, images=len(x_all), iwae_images=iwae_n, samples=e.samples,
        digit_shares=shares, classifier=classifier_info,
    )  # fmt: skip
    return metrics


def write_results(cfg: DictConfig, ckpt: Path, metrics: dict, **details) -> Path:
    """metrics.json (with what produced it) in cfg.out_dir, and the values to TensorBoard."""
    out = Path(cfg.out_dir) if cfg.out_dir else ckpt.parent.parent / "eval"
    out.mkdir(parents=True, exist_ok=True)
    record = {"checkpoint": str(ckpt), "metrics": metrics, "iwae_k": cfg.eval.iwae_k, **details}
    text = json.dumps(record, indent=2).encode()
    atomic_write(out / "metrics.json", lambda f: f.write(text))
    with SummaryWriter(str(out / "tensorboard")) as writer:
        for key, value in metrics.items():
            writer.add_scalar(f"eval/{key}", value, 0)
    for key, value in metrics.items():
        log.info(f"{key:38s} {value:.4f}")
    if "real/fid_train_vs_test" in metrics:
        log.info(
            f"FID {metrics['samples/fid']:.3f} of {cfg.eval.samples} samples vs the test images; "
            f"floor (training images vs test images): {metrics['real/fid_train_vs_test']:.3f}"
        )
    log.info(f"wrote {out / 'metrics.json'}")
    return out / "metrics.json"
