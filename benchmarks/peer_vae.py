"""A peer's VAE beside this project's, on the same labelled image folder, for the same budget of
training time, judged by the same code:

    uv run benchmarks/peer_vae.py DIR [--minutes 10] [--models cvae vanilla resnet] [--out OUT]

- vanilla: PyTorch-VAE's VanillaVAE and its published recipe, in plain PyTorch (vanilla_vae.py);
- resnet: this project, `model=resnet data.batch_size=64` (train.py's own training: Lightning,
  Hydra, callbacks);
- cvae: this project, `model=cvae model.latent=16` (the reference network, colour run's latent).

Every model trains on the folder's training split at 64 px, in bf16 with channels_last (what
this CPU runs fastest), for --minutes of training time (Lightning's max_time, which also counts
its validation and per-epoch pictures; the peer's clock counts its steps only). Then, for each,
on the test split: the squared error of the posterior-mean reconstructions summed per image,
SSIM and PSNR; and 5,000 samples from z ~ N(0, I) (the peer's own way) and from a 50-component
Gaussian mixture fitted to its training codes (the project's way), judged in the feature space
of a classifier trained on the folder (train_classifier.py; trained first if OUT has none): FID
and KID against the test images, the share the classifier reads with p > 0.9. Prints the table,
writes OUT/results.json and OUT/compare.png (test images, reconstructions, samples per model).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict
from torchvision.utils import make_grid, save_image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cvae_lightning.cli.runs import register_resolvers  # noqa: E402
from cvae_lightning.data import load_split, source_from  # noqa: E402
from cvae_lightning.densities.gmm import GaussianMixture  # noqa: E402
from cvae_lightning.densities.standard import StandardNormal  # noqa: E402
from cvae_lightning.densities.store import fit_for_model  # noqa: E402
from cvae_lightning.evaluation.classifier import load_classifier  # noqa: E402
from cvae_lightning.evaluation.reconstruction import ReconstructionQuality  # noqa: E402
from cvae_lightning.evaluation.samples import sample_quality  # noqa: E402
from cvae_lightning.evaluation.train_classifier import fit_classifier  # noqa: E402
from cvae_lightning.inference.captions import title_parts  # noqa: E402
from cvae_lightning.inference.checkpoint import load_model, resolve_checkpoint  # noqa: E402
from cvae_lightning.inference.draw import sample_grid  # noqa: E402
from cvae_lightning.training.train import train  # noqa: E402
from cvae_lightning.vae.latent import posterior_means  # noqa: E402
from cvae_lightning.vae.model import count_parameters  # noqa: E402

from vanilla_vae import train_vanilla  # noqa: E402

# The project's two networks: resnet at the batch its defaults were chosen with (the peer's
# too), the reference network at its recipe's batch with the latent of the README's colour run.
PROJECT = {
    "resnet": ["model=resnet", "data.batch_size=64"],
    "cvae": ["model=cvae", "model.latent=16"],
}
log = logging.getLogger("peer_vae")


def compose_cfg(name: str, overrides: list[str]):
    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(name, overrides=overrides)


def classifier_for(data: list[str], out: Path):
    """The folder's classifier (OUT/classifier.pt), trained first if missing."""
    path = out / "classifier.pt"
    if not path.is_file():
        cfg = compose_cfg("classifier", [*data, f"out={path}", "epochs=4", "min_accuracy=0.9"])
        fit_classifier(cfg)
    return load_classifier(path)[0]


def clock(seconds: float) -> str:
    """Seconds as Lightning's max_time string, DD:HH:MM:SS."""
    s = round(seconds)
    return f"{s // 86400:02d}:{s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def train_project(
    name: str, data: list[str], minutes: float, out: Path, seed: int, overrides: list[str]
):
    """train.py's training of model `name` for `minutes` -> (its CVAE, a record)."""
    cfg = compose_cfg("train", [
        *data, *PROJECT[name], *overrides, f"seed={seed}", "trainer.max_epochs=100000",
        f"trainer.max_time={clock(minutes * 60)}", "callbacks.densities=null",
        "callbacks.latent=null", "callbacks.checkpoint=null", "callbacks.progress_bar=null",
        "trainer.enable_progress_bar=false",
    ])  # fmt: skip
    with open_dict(cfg):
        cfg.paths.output = str(out / name)
    start = time.perf_counter()
    train(cfg)
    seconds = time.perf_counter() - start
    model, ckpt = load_model(resolve_checkpoint(out / name))
    steps = ckpt["global_step"]
    images = steps * cfg.data.batch_size
    return model, {"epochs": ckpt["epoch"] + 1, "steps": steps, "images_seen": images,
                   "seconds": seconds, "images_per_second": images / (minutes * 60)}  # fmt: skip


@torch.no_grad()
def measure(model, train_split, test_split, classifier, samples: int, seed: int) -> dict:
    """Reconstructions of the test split and samples of N(0, I) and a fitted mixture."""
    model.eval()
    test_x = test_split.images.float().div(255)
    quality = ReconstructionQuality()
    for x in test_x.split(256):
        quality.update(model.decode(posterior_means(model, x)).clamp(0, 1), x)
    metrics = quality.compute()
    fitters = {"standard": StandardNormal.fit,
               "gmm": lambda c: GaussianMixture.fit(c, components=50, seed=seed)}  # fmt: skip
    densities, _ = fit_for_model(model, fitters, (train_split.images, train_split.labels))
    quality, _ = sample_quality(
        model, classifier, densities, test=(test_x, test_split.labels), train=train_split.images,
        n=samples, batch=256, seed=seed, kid_subset=1000, fitted_temperature=1.0,
    )  # fmt: skip
    metrics |= {k: v for k, v in quality.items() if k.split("/")[-1] in KEPT}
    return metrics, densities


KEPT = ("fid", "kid", "confident_share", "fid_train_vs_test", "kid_train_vs_test")


def picture(models: dict, densities: dict, test_x: torch.Tensor) -> torch.Tensor:
    """Per model, side by side: 8 test images over their reconstructions, then 32 samples of
    the fitted mixture, titled with the model's name."""
    parts, titles, x = [], [], test_x[:8].float().div(255)
    for name, model in models.items():
        rec = model.decode(posterior_means(model, x)).clamp(0, 1).float().cpu()
        top = make_grid(torch.cat([x, rec]), nrow=8, padding=2, pad_value=1.0)
        drawn = sample_grid(model, densities[name]["gmm"], 32, 8, 1.0, 0)
        block = torch.cat([top, torch.ones(3, 8, top.shape[2]), drawn], dim=1)
        titles.append(name)
        parts += [block, torch.ones(3, block.shape[1], 12)]
    image = torch.cat(parts[:-1], dim=2)
    width, spans, left = parts[0].shape[2], [], 0
    for name in titles:
        spans.append((left, left + width, name))
        left += width + 12
    return title_parts(image, spans)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a labelled image folder (class subfolders)")
    parser.add_argument("--minutes", type=float, default=10.0, help="training time per model")
    parser.add_argument("--models", nargs="+", default=["cvae", "vanilla", "resnet"])
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="default: outputs/peer_vae/<folder>")
    parser.add_argument("-o", "--override", nargs="*", default=[], help="for the project models")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s")
    out = args.out or ROOT / "outputs" / "peer_vae" / args.folder.name
    out.mkdir(parents=True, exist_ok=True)
    data = ["data=folder", f"data.path={args.folder.resolve()}", "data.image_size=64",
            "data.channels=3"]  # fmt: skip
    d = compose_cfg("train", data).data
    source = source_from(d)
    train_split = load_split(source, True, 64, 3, d.cache_dir)
    test_split = load_split(source, False, 64, 3, d.cache_dir)
    classifier = classifier_for(data, out)
    cpu = f"{torch.get_num_threads()} CPU thread(s), torch {torch.__version__}"
    log.info(f"{args.folder}: {len(train_split.images)} training, {len(test_split.images)} test "
             f"images; {args.minutes:g} min per model; {cpu}")  # fmt: skip
    results, models, densities = {}, {}, {}
    for name in args.models:
        log.info(f"training {name} for {args.minutes:g} min")
        if name == "vanilla":
            model, record = train_vanilla(train_split.images, args.minutes * 60, args.seed,
                                          log=log.info)  # fmt: skip
            torch.save(model.state_dict(), out / "vanilla.pt")  # its weights, to look at later
        else:
            model, record = train_project(name, data, args.minutes, out, args.seed, args.override)
        record["parameters"] = count_parameters(model)
        metrics, densities[name] = measure(model, train_split, test_split, classifier,
                                           args.samples, args.seed)  # fmt: skip
        results[name], models[name] = {**record, **metrics}, model
        log.info(f"{name}: {json.dumps(results[name])}")
    (out / "results.json").write_text(json.dumps(results, indent=1))
    save_image(picture(models, densities, test_split.images), out / "compare.png")
    print_table(results)


def print_table(results: dict) -> None:
    cols = [("parameters", "params", ".0f"), ("images_per_second", "im/s", ".0f"),
            ("epochs", "epochs", "d"), ("test/recon_sse", "recon SSE", ".1f"),
            ("test/ssim", "SSIM", ".3f"), ("test/psnr", "PSNR dB", ".2f"),
            ("samples/standard/fid", "FID N(0,I)", ".2f"), ("samples/gmm/fid", "FID gmm", ".2f"),
            ("samples/standard/kid", "KID N(0,I)", ".4f"), ("samples/gmm/kid", "KID gmm", ".4f"),
            ("samples/gmm/confident_share", "p>0.9 gmm", ".3f")]  # fmt: skip
    print(f"{'model':10s}" + "".join(f"{title:>12s}" for _, title, _ in cols))
    for name, r in results.items():
        print(f"{name:10s}" + "".join(f"{r[key]:>12{fmt}}" for key, _, fmt in cols))
    floor = next(iter(results.values())).get("real/fid_train_vs_test")
    print(f"FID of real training vs test images (the floor): {floor:.2f}")


if __name__ == "__main__":
    main()
