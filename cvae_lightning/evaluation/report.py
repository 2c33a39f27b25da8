"""eval.py's report: metrics.json (written whole or not at all) with what produced it, the
values as TensorBoard scalars, and the console's table of every density's samples."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

from cvae_lightning.files import atomic_write

log = logging.getLogger(__name__)


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
