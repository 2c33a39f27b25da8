"""eval.py's logic: per-image quality of a checkpoint on the test split and of the samples of
every latent density, to JSON and TensorBoard."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

import torch
from hydra.utils import instantiate
from torch.utils.tensorboard import SummaryWriter
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure
from tqdm import tqdm

from cvae_lightning.classifier import (
    FeatureExtractor,
    ImageClassifier,
    classifier_path,
    load_classifier,
)
from cvae_lightning.density_store import densities_for_checkpoint, eval_dir
from cvae_lightning.errors import ClassifierError
from cvae_lightning.explore import posterior_means
from cvae_lightning.files import atomic_write
from cvae_lightning.judging import ClassifierVerdicts, sample_quality
from cvae_lightning.loading import (
    DataSource,
    checkpoint_source,
    checkpoint_split,
    class_names,
    inference_device,
    load_model,
    resolve_checkpoint,
    run_training_images,
)
from cvae_lightning.losses import loss_terms
from cvae_lightning.metrics import active_units, iwae_loss, knn_accuracy
from cvae_lightning.model import CVAE
from cvae_lightning.runs import project_relative
from cvae_lightning.validation import check_density_settings, check_eval_settings

log = logging.getLogger(__name__)


def find_classifier(
    e: Mapping, source_key: str, classes: list[str], channels: int
) -> tuple[ImageClassifier | None, dict]:
    """The classifier for FID/KID: eval.classifier, else the one trained for the dataset
    (weights/<dataset>_classifier.pt). A path the user names must work and fit the data; a
    missing default, or unlabelled data, only skips the classifier's measures."""
    if e["samples"] == 0:
        return None, {"skipped": "eval.samples=0"}
    path = Path(e["classifier"]) if e["classifier"] else classifier_path(source_key)
    reason = None
    if not classes:
        reason = "the data is unlabelled, so there is no classifier to judge samples with"
    elif not e["classifier"] and not path.is_file():
        reason = (
            f"no classifier for this dataset ({project_relative(path)} is missing): train one with "
            "`uv run train_classifier.py data=...` (the run's data settings) or set eval.classifier"
        )
    if reason:
        log.warning(f"FID/KID and the classifier's measures skipped: {reason}")
        return None, {"skipped": reason}
    model, info = load_classifier(path)
    made_for = info.get("classes", [str(i) for i in range(10)])  # the first files: MNIST
    if list(made_for) != list(classes) or model.channels != channels:
        raise ClassifierError(
            f"classifier {path} was made for other data ({len(made_for)} classes "
            f"{', '.join(made_for[:4])}..., {model.channels} channel(s)) than this model's "
            f"({len(classes)} classes {', '.join(classes[:4])}..., {channels} channel(s)): "
            "train one on the run's data with `uv run train_classifier.py data=...`"
        )
    return model, {**info, "path": project_relative(path)}


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


@torch.no_grad()
def evaluate(
    ckpt_path: str | Path,
    *,
    settings: Mapping,
    density: Mapping,
    data: DataSource,
    out: str | Path | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """All measures of `settings` (the eval config group) for a checkpoint, the samples of every
    density of `density` (the density group) included; written to <out>/metrics.json (default
    <run>/eval) and TensorBoard. Returns the metrics. The VAE runs on `device` (its batches,
    the IWAE bound's samples, the decoded samples); the classifier and the metrics' sums stay
    on the CPU."""
    check_eval_settings(settings)
    check_density_settings(density)
    e = settings
    torch.manual_seed(seed)
    path = resolve_checkpoint(ckpt_path)
    model, ckpt = load_model(path, device)
    split = checkpoint_split(data, ckpt, train=False)
    classes = class_names(ckpt) if split.classes else []
    source_key = checkpoint_source(data, ckpt).key
    classifier, classifier_info = find_classifier(e, source_key, classes, model.channels)
    test = split.images[: e["images"]], split.labels[: e["images"]]
    log.info(f"evaluating {path} on {len(test[0])} test images (IWAE k={e['iwae_k']}) ...")
    metrics, mu, iwae_n = test_split_metrics(model, test, e, classifier)

    train_x, train_y = run_training_images(data, ckpt)
    knn_x, knn_y = train_x[: e["knn_train"]], train_y[: e["knn_train"]]
    train_mu = posterior_means(model, knn_x, knn_y, e["batch_size"]).cpu()
    metrics["latent/active_units"] = active_units(mu)
    if classes:  # how well the codes separate the classes
        metrics[f"latent/knn{e['knn_k']}_accuracy"] = knn_accuracy(
            train_mu, knn_y, mu, test[1], e["knn_k"]
        )

    shares = {}
    if classifier is not None:
        fitters = instantiate(density["fitters"])
        densities, _ = densities_for_checkpoint(
            model, path, ckpt, list(fitters), fitters,
            lambda: (train_x[: density["images"]], train_y[: density["images"]]),
            codes=density["codes"], seed=seed,
        )  # fmt: skip
        log.info(f"FID/KID, confidence, coverage of {e['samples']} samples of {list(densities)}")
        quality, shares = sample_quality(
            model, classifier, densities, test=(test[0].float().div(255), test[1]),
            train=train_x, n=e["samples"], batch=e["batch_size"], seed=seed,
            kid_subset=e["kid_subset"], temperature=e["temperature"],
            fitted_temperature=density["temperature"],
        )  # fmt: skip
        metrics |= quality
    out = Path(out) if out else eval_dir(path)
    write_results(
        out, metrics, checkpoint=project_relative(path), iwae_k=e["iwae_k"], images=len(test[0]),
        iwae_images=iwae_n, samples=e["samples"], digit_shares=shares, classifier=classifier_info,
    )  # fmt: skip
    return metrics


def write_results(out: Path, metrics: dict[str, float], **details) -> Path:
    """metrics.json (with what produced it) in `out`, the values to TensorBoard and a table of
    the densities' sample metrics to the console."""
    # 7 significant digits: float-summation noise between runs leaves the file as it was.
    rounded = {k: float(f"{v:.7g}") for k, v in metrics.items()}
    record = {"metrics": rounded, **details}
    text = json.dumps(record, indent=2).encode()
    atomic_write(out / "metrics.json", lambda f: f.write(text))
    with SummaryWriter(str(out / "tensorboard")) as writer:
        for key, value in metrics.items():
            writer.add_scalar(f"eval/{key}", value, 0)
    for key, value in metrics.items():
        if not key.startswith("samples/"):
            log.info(f"{key:38s} {value:.4f}")
    log_density_table(metrics)
    log.info(f"wrote {out / 'metrics.json'}")
    return out / "metrics.json"


# The sample metrics shown side by side, with short column names.
TABLE = {"fid": "fid", "kid": "kid", "confident_share": "p>0.9", "digit_evenness": "evenness",
         "rarest_digit_share": "rarest", "precision": "precision", "recall": "recall",
         "train_nn_ratio": "nn_ratio", "class_accuracy": "digit_acc"}  # fmt: skip


def log_density_table(metrics: dict[str, float]) -> None:
    """The samples of each density side by side; the last row is real images: training images
    for fid/kid/precision/recall (the floor), the test images for the classifier's verdicts."""
    names = [k.split("/")[1] for k in metrics if k.startswith("samples/") and k.endswith("/fid")]
    if not names:
        return
    columns = [c for c in TABLE if f"samples/{names[0]}/{c}" in metrics]
    real = {
        "fid": metrics.get("real/fid_train_vs_test"), "kid": metrics.get("real/kid_train_vs_test"),
        "train_nn_ratio": 1.0,
        **{c: metrics[f"real/{c}"] for c in columns if f"real/{c}" in metrics},
    }  # fmt: skip
    log.info(f"{'density':10s}" + "".join(f"{TABLE[c]:>10s}" for c in columns))
    for name in [*names, "real"]:
        row = [real.get(c) if name == "real" else metrics[f"samples/{name}/{c}"] for c in columns]
        log.info(f"{name:10s}" + "".join(f"{'-' if v is None else f'{v:.4f}':>10s}" for v in row))
    for line in LEGEND:
        log.info(line)


# How to read the numbers above (printed under the table).
LEGEND = (
    "lower is better: fid, kid (torchmetrics' unbiased MMD^2 in the classifier's feature space;"
    " like FID, near 0 for real images: the 'real' row);",
    "higher is better: p>0.9 (share the classifier reads with p > 0.9), evenness (1: every class"
    " as often), rarest (the rarest class's share; 1/classes at best), precision, recall,"
    " digit_acc (a conditional model draws the class asked for);",
    "nn_ratio: distance to the nearest training image over that of real test images; below 1,"
    " samples copy training images. test/loss is the objective per image (squared error + KL);"
    " the *_nll_nats bounds add the Gaussian's constant, in nats per image.",
)


def evaluate_config(cfg) -> dict[str, float]:
    """eval.py: the composed config turned into evaluate()'s arguments."""
    return evaluate(
        cfg.ckpt_path, settings=cfg.eval, density=cfg.density, data=DataSource.of(cfg.data),
        out=cfg.out, seed=cfg.seed, device=inference_device(cfg.get("device", "auto")),
    )  # fmt: skip
