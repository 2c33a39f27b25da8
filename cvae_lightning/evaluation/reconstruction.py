"""How well a model keeps its test images: the ELBO's terms and the IWAE bound in its own
likelihood's units (nats with its constant), the quality of the posterior means'
reconstructions (squared error, SSIM, PSNR, the classifier's verdicts), and what the codes hold
(active units, a k-NN probe). Plain PyTorch and torchmetrics."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure
from tqdm import tqdm

from cvae_lightning.evaluation.classifier import FeatureExtractor, ImageClassifier
from cvae_lightning.evaluation.samples import ClassifierVerdicts
from cvae_lightning.vae.layers import reparameterize
from cvae_lightning.vae.losses import loss_terms
from cvae_lightning.vae.model import CVAE


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(logvar)) summed over the last dim."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)


@torch.no_grad()
def iwae_loss(model: CVAE, x: torch.Tensor, k: int, y: torch.Tensor | None = None) -> torch.Tensor:
    """Per image, in the loss's units: -log (1/k sum_i p(x|z_i) p(z_i) / q(z_i|x)) - constant
    (the likelihood's: 0 for a calibrated one, D/2 log(pi) for the fixed one).

    For k=1 its expectation is the per-image loss (recon + KL); it can only fall as k grows,
    towards -log p(x) - constant.
    """
    model.eval()
    mu, logvar = model.posterior(x, y)
    log_w = []
    for _ in range(k):
        z = reparameterize(mu, logvar)
        x_rec = model.decode(z, y)
        log_px_z = -model.likelihood(x_rec, x, per_image=True)
        log_pz = _log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
        log_qz = _log_normal(z, mu, logvar)
        log_w.append(log_px_z + log_pz - log_qz)
    return -(torch.logsumexp(torch.stack(log_w), dim=0) - math.log(k))


def active_units(mu: torch.Tensor, threshold: float = 0.01) -> int:
    """Latent dims whose posterior mean varies across images by more than `threshold`."""
    return int((mu.var(dim=0) > threshold).sum())


def knn_accuracy(
    train_z: torch.Tensor, train_y: torch.Tensor, test_z: torch.Tensor, test_y: torch.Tensor,
    k: int = 5, chunk: int = 1024,
) -> float:  # fmt: skip
    """Accuracy of a k-nearest-neighbour vote (Euclidean) from train codes to test codes."""
    correct = 0
    for start in range(0, len(test_z), chunk):
        d = torch.cdist(test_z[start : start + chunk], train_z)
        votes = train_y[d.topk(k, largest=False).indices]
        pred = torch.mode(votes, dim=1).values
        correct += int((pred == test_y[start : start + chunk]).sum())
    return correct / len(test_z)


class ReconstructionQuality:
    """Running measures of reconstructions against their originals (both (B, C, S, S) in
    [0, 1], on the host): the squared error summed per image, SSIM, PSNR, and, given a
    classifier, whether a reconstruction still shows its original's class, clearly."""

    def __init__(self, classifier: ImageClassifier | None = None):
        self.ssim = StructuralSimilarityIndexMeasure(data_range=1.0)
        self.psnr = PeakSignalNoiseRatio(data_range=1.0)
        self.verdicts = classifier and ClassifierVerdicts(FeatureExtractor(classifier))
        self.sse, self.images = 0.0, 0

    def update(self, x_rec: torch.Tensor, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        self.ssim.update(x_rec, x)
        self.psnr.update(x_rec, x)
        self.sse += (x_rec - x).pow(2).sum().item()
        self.images += len(x)
        if self.verdicts:
            self.verdicts.update(x_rec, y)

    def compute(self) -> dict[str, float]:
        metrics = {
            # Whatever the likelihood: the squared error summed over an image's pixels and
            # channels (what the fixed likelihood's recon term is).
            "test/recon_sse": self.sse / max(self.images, 1),
            "test/ssim": float(self.ssim.compute()),
            "test/psnr": float(self.psnr.compute()),
        }
        if self.verdicts:
            # Does a reconstruction still show the same class, and clearly? (The classifier's
            # own verdicts on the originals are real/...)
            recon = self.verdicts.summary("recon")
            metrics["test/recon_class_accuracy"] = recon["recon/class_accuracy"]
            metrics["test/recon_confident_share"] = recon["recon/confident_share"]
        return metrics


@torch.no_grad()
def test_split_metrics(
    model: CVAE, test: tuple[torch.Tensor, torch.Tensor], e: Mapping,
    classifier: ImageClassifier | None,
) -> tuple[dict[str, float], torch.Tensor, int]:  # fmt: skip
    """ELBO terms, IWAE bound and the quality of the posterior means' reconstructions of the
    test images (uint8, labels); also their posterior means and the IWAE bound's count."""
    images, labels = test
    sums = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "iwae": 0.0}
    quality = ReconstructionQuality(classifier)
    mus, iwae_n, batch = [], min(e["iwae_images"] or len(images), len(images)), e["batch_size"]
    device = next(model.parameters()).device
    for start in tqdm(range(0, len(images), batch), desc="test images", unit="batch",
                      disable=None, leave=False):  # fmt: skip
        x = images[start : start + batch].to(device).float().div(255)
        y = labels[start : start + batch].to(device)
        z, mu, logvar = model.encode(x, y)  # a plain model ignores the labels
        terms = loss_terms(model.decode(z, y), x, mu, logvar, likelihood=model.likelihood)
        for key in ("loss", "recon", "kl"):
            sums[key] += terms[key].item()
        quality.update(model.decode(mu, y).clamp(0, 1).cpu(), x.cpu(), y.cpu())
        mus.append(mu.cpu())
        m = max(0, min(len(x), iwae_n - start))
        if m:
            sums["iwae"] += iwae_loss(model, x[:m], e["iwae_k"], y[:m]).sum().item()
    n, const, k = len(images), model.likelihood.constant(images[0].numel()), e["iwae_k"]
    metrics = {
        "test/loss": sums["loss"] / n,
        "test/recon": sums["recon"] / n,
        "test/kl": sums["kl"] / n,
        "test/neg_elbo_nats": sums["loss"] / n + const,
        f"test/iwae{k}_loss": sums["iwae"] / iwae_n,
        f"test/iwae{k}_nll_nats": sums["iwae"] / iwae_n + const,
        **quality.compute(),
    }
    return metrics, torch.cat(mus), iwae_n
