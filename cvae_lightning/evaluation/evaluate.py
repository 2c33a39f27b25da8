"""eval.py's command: per-image quality of a checkpoint on the test split and of the samples of
every latent density, to JSON and TensorBoard (report.py)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch

from cvae_lightning.densities.store import eval_dir
from cvae_lightning.errors import ClassifierError, require
from cvae_lightning.evaluation.classifier import ImageClassifier, classifier_path, load_classifier
from cvae_lightning.evaluation.reconstruction import active_units, knn_accuracy, test_split_metrics
from cvae_lightning.evaluation.report import write_results
from cvae_lightning.evaluation.samples import sample_quality
from cvae_lightning.inference.pretrained import PretrainedVAE
from cvae_lightning.inference.prior import densities_for
from cvae_lightning.inference.run_data import (
    DataSource,
    checkpoint_source,
    checkpoint_split,
    class_names,
    run_training_images,
)
from cvae_lightning.inference.sample import build_fitters
from cvae_lightning.paths import project_relative
from cvae_lightning.vae.latent import posterior_means

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


def check_eval_settings(e: Mapping) -> None:
    """The eval group (eval.py, and train.py with test=true)."""
    for key in ("iwae_k", "batch_size", "knn_k", "kid_subset"):
        require(e[key] >= 1, f"eval.{key}", e[key], "it must be >= 1")
    require(e["samples"] >= 0, "eval.samples", e["samples"], "it must be >= 0 (0 skips FID/KID)")
    t = e["temperature"]
    require(t is None or t > 0, "eval.temperature", t, "it must be null or > 0")
    sweep = list(e["temperatures"])
    require(all(t > 0 for t in sweep), "eval.temperatures", sweep, "each must be > 0 ([]: none)")


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
    fitters = build_fitters(density)
    e = settings
    torch.manual_seed(seed)  # the posteriors' draws of the ELBO and the IWAE bound
    vae = PretrainedVAE.load(ckpt_path, device=device)
    model, ckpt, path = vae.model, vae.ckpt, vae.path
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
        densities = densities_for(vae, list(fitters), fitters, data, images=density["images"],
                                  codes=density["codes"], seed=seed)  # fmt: skip
        log.info(f"FID/KID, confidence, coverage of {e['samples']} samples of {list(densities)}")
        quality, shares = sample_quality(
            model, classifier, densities, test=(test[0].float().div(255), test[1]),
            train=train_x, n=e["samples"], batch=e["batch_size"], seed=seed,
            kid_subset=e["kid_subset"], temperature=e["temperature"],
            fitted_temperature=density["temperature"], sweep=e["temperatures"],
        )  # fmt: skip
        metrics |= quality
    out = Path(out) if out else eval_dir(path)
    write_results(
        out, metrics, checkpoint=project_relative(path), iwae_k=e["iwae_k"], images=len(test[0]),
        iwae_images=iwae_n, samples=e["samples"], digit_shares=shares, classifier=classifier_info,
    )  # fmt: skip
    return metrics


def evaluate_config(cfg) -> dict[str, float]:
    """eval.py: the composed config turned into evaluate()'s arguments."""
    return evaluate(
        cfg.ckpt_path, settings=cfg.eval, density=cfg.density, data=DataSource.of(cfg.data),
        out=cfg.out, seed=cfg.seed, device=cfg.get("device", "auto"),
    )  # fmt: skip
