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
from cvae_lightning.explore import posterior_means
from cvae_lightning.losses import kl_divergence, reconstruction_loss
from cvae_lightning.metrics import active_units, iwae_loss, knn_accuracy, likelihood_constant
from cvae_lightning.sampling import checkpoint_images, load_model

log = logging.getLogger(__name__)


@torch.no_grad()
def evaluate(cfg: DictConfig) -> dict[str, float]:
    """All metrics of cfg.eval for cfg.ckpt_path; also written to JSON and TensorBoard."""
    e = cfg.eval
    if e.iwae_k < 1 or e.batch_size < 1 or e.knn_k < 1:
        raise ConfigError("eval.iwae_k, eval.batch_size and eval.knn_k must all be >= 1")
    torch.manual_seed(cfg.seed)
    path = resolve_checkpoint(cfg.ckpt_path)
    model, ckpt = load_model(path)
    x_all, y_all = checkpoint_images(cfg, ckpt, train=False, n=e.images)
    conditional = bool(model.num_classes)
    sums = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "iwae": 0.0}
    ssim = StructuralSimilarityIndexMeasure(data_range=1.0)
    psnr = PeakSignalNoiseRatio(data_range=1.0)
    mus, iwae_n = [], min(e.iwae_images or len(x_all), len(x_all))
    for start in range(0, len(x_all), e.batch_size):
        x, y = x_all[start : start + e.batch_size], y_all[start : start + e.batch_size]
        y = y if conditional else None
        z, mu, logvar = model.encode(x, y)
        recon = reconstruction_loss(model.decode(z, y), x).item()
        kl = kl_divergence(mu, logvar).item()
        sums["recon"] += recon
        sums["kl"] += kl
        sums["loss"] += recon + kl
        x_mean = model.decode(mu, y).clamp(0, 1)
        ssim.update(x_mean, x)
        psnr.update(x_mean, x)
        mus.append(mu)
        m = max(0, min(len(x), iwae_n - start))
        if m:
            sums["iwae"] += (
                iwae_loss(model, x[:m], e.iwae_k, None if y is None else y[:m]).sum().item()
            )
    n = len(x_all)
    mu = torch.cat(mus)
    const = likelihood_constant(x_all[0].numel())
    train_x, train_y = checkpoint_images(cfg, ckpt, train=True, n=e.knn_train)
    train_mu = torch.cat(
        [
            posterior_means(model, x, y if conditional else None)
            for x, y in zip(train_x.split(e.batch_size), train_y.split(e.batch_size), strict=True)
        ]
    )
    metrics = {
        "test/loss": sums["loss"] / n,
        "test/recon": sums["recon"] / n,
        "test/kl": sums["kl"] / n,
        "test/neg_elbo_nats": sums["loss"] / n + const,
        f"test/iwae{e.iwae_k}_loss": sums["iwae"] / iwae_n,
        f"test/iwae{e.iwae_k}_nll_nats": sums["iwae"] / iwae_n + const,
        "test/ssim": float(ssim.compute()),
        "test/psnr": float(psnr.compute()),
        "latent/active_units": active_units(mu),
        f"latent/knn{e.knn_k}_accuracy": knn_accuracy(train_mu, train_y, mu, y_all, k=e.knn_k),
    }
    write_results(cfg, path, metrics, images=n, iwae_images=iwae_n)
    return metrics


def write_results(cfg: DictConfig, ckpt: Path, metrics: dict, **counts: int) -> Path:
    """metrics.json (with what produced it) in cfg.out_dir, and the values to TensorBoard."""
    out = Path(cfg.out_dir) if cfg.out_dir else ckpt.parent.parent / "eval"
    out.mkdir(parents=True, exist_ok=True)
    record = {"checkpoint": str(ckpt), "metrics": metrics, **counts, "iwae_k": cfg.eval.iwae_k}
    (out / "metrics.json").write_text(json.dumps(record, indent=2))
    with SummaryWriter(str(out / "tensorboard")) as writer:
        for key, value in metrics.items():
            writer.add_scalar(f"eval/{key}", value, 0)
    for key, value in metrics.items():
        log.info(f"{key:28s} {value:.4f}")
    log.info(f"wrote {out / 'metrics.json'}")
    return out / "metrics.json"
