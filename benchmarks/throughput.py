"""Training throughput of the project against a plain PyTorch loop, in one run, same device.

    uv run benchmarks/throughput.py                       # CPU (or the GPU, if there is one)
    uv run benchmarks/throughput.py --batch-sizes 128 1024 -- trainer=gpu model.compile=true

The project side is the real thing: Hydra config -> DataModule, LightningModule, Trainer with the
TensorBoard logger, console lines and progress bar on. The plain side is the same CVAE and AdamW
in a bare loop over the same uint8 tensor, timed over the same number of steps after warm-up.
Hydra overrides after `--` apply to the project side; the plain side copies its precision,
channels_last and data placement. Each batch size runs in each of `--precisions` (default: fp32
and the default, `auto`, which is bf16 on CPUs with AMX/AVX512-BF16), and every row also says
how the project compares with the plain fp32 loop.
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cvae_lightning.data import load_split, source_from  # noqa: E402
from cvae_lightning.losses import kl_divergence, reconstruction_loss  # noqa: E402
from cvae_lightning.model import CVAE  # noqa: E402
from cvae_lightning.precision import AUTO, choose_precision  # noqa: E402
from cvae_lightning.runs import register_resolvers  # noqa: E402
from cvae_lightning.training import train  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepClock(L.Callback):
    """Times training steps [warmup, end) of the project run; syncs only at those two points."""

    def __init__(self, warmup: int):
        self.warmup, self.start, self.end, self.images = warmup, None, None, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if batch_idx == self.warmup:
            sync(pl_module.device)
            self.start = time.perf_counter()
        if batch_idx >= self.warmup:
            self.images += batch[0].shape[0]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        # The clock stops at the last step: epoch-end work (image grids) is not per-step cost.
        if batch_idx + 1 == trainer.num_training_batches:
            sync(pl_module.device)
            self.end = time.perf_counter()


def compose_project(batch: int, steps: int, out: Path, overrides: list[str]):
    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"data.batch_size={batch}",
                "trainer.max_epochs=1",
                f"trainer.limit_train_batches={steps}",
                "trainer.limit_val_batches=0",
                "callbacks.checkpoint=null",
                "callbacks.last_checkpoint=null",
                "callbacks.densities=null",
                *overrides,
            ],
        )
    with open_dict(cfg):
        cfg.paths.output = str(out)
    if cfg.trainer.precision == AUTO:  # resolve it here, so the plain loop copies the choice
        cfg.trainer.precision, _ = choose_precision(str(cfg.trainer.accelerator))
    return cfg


def run_project(cfg, warmup: int) -> float:
    clock = StepClock(warmup)
    train(cfg, extra_callbacks=[clock])
    return clock.images / (clock.end - clock.start)


def run_plain(cfg, device: torch.device, warmup: int, steps: int) -> float:
    """The same model and optimizer in a bare loop (what a careful user writes by hand)."""
    d, m = cfg.data, cfg.model
    images = load_split(source_from(d), True, d.image_size, d.channels, d.cache_dir).images
    if d.limit:
        images = images[: d.limit]
    on_device = d.on_device is True or (d.on_device == "auto" and device.type == "cuda")
    images = images.to(device if on_device else "cpu")
    torch.manual_seed(0)
    model = CVAE(m.latent, m.max_filters, d.image_size, images.shape[1]).to(device)
    fmt = torch.channels_last if m.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-5)
    bf16 = str(cfg.trainer.precision).startswith("bf16")
    batch = d.batch_size
    order = torch.randperm(len(images)).to(images.device)
    for i in range(warmup + steps):
        if i == warmup:
            sync(device)
            start = time.perf_counter()
        j = (i * batch) % (len(images) - batch + 1)
        x = images[order[j : j + batch]].to(device, non_blocking=True).float().div_(255)
        x = x.contiguous(memory_format=fmt)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            x_rec, mu, logvar = model(x)
        loss = reconstruction_loss(x_rec, x) + kl_divergence(mu, logvar)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(device)
    return steps * batch / (time.perf_counter() - start)


def startup_seconds(overrides: list[str]) -> float:
    """Seconds from `python train.py` starting to its first training step (cache present)."""
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run(
            [sys.executable, str(ROOT / "train.py"), "trainer.max_steps=1",
             "trainer.limit_val_batches=0", "callbacks.checkpoint=null",
             "callbacks.last_checkpoint=null", "callbacks.images=null", "callbacks.latent=null",
             "callbacks.densities=null",
             f"hydra.run.dir={out}", *overrides],
            capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
    found = re.search(r"First training step ([\d.]+)s after", proc.stdout + proc.stderr)
    if not found:
        raise RuntimeError(f"train.py did not reach a training step:\n{proc.stderr[-2000:]}")
    return float(found.group(1))


def import_seconds() -> float:
    """Wall time of a bare `python -c "import lightning, torchvision, hydra"`: the libraries'
    share of the start-up, which no project code can shorten."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import lightning, torchvision, hydra"], check=True)
    return time.perf_counter() - start


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # whole process, Linux KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 1024])
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default by device)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first")
    parser.add_argument("--precisions", nargs="+", default=["32-true", "auto"])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for the project run")
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not any(o.startswith("trainer") for o in args.overrides) and device.type == "cuda":
        args.overrides.append("trainer=gpu")
    cpu = f"CPU, {torch.get_num_threads()} threads"
    name = torch.cuda.get_device_name() if device.type == "cuda" else cpu
    print(f"device: {name}; torch {torch.__version__}; overrides: {args.overrides or 'none'}")

    start, imports = startup_seconds(args.overrides), import_seconds()
    print(
        f"start to first training step (train.py, cache present): {start:.2f} s, of which "
        f"{imports:.2f} s is importing lightning, torchvision and hydra"
    )
    rows = []
    for batch in args.batch_sizes:
        big = device.type == "cuda"
        steps = args.steps or (300 if big else max(4, 4096 // batch))
        warmup = args.warmup if args.warmup is not None else (50 if big else 2)
        for asked in args.precisions:
            overrides = [*args.overrides, f"trainer.precision={asked}"]
            with tempfile.TemporaryDirectory() as out:
                cfg = compose_project(batch, warmup + steps, Path(out), overrides)
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                plain = run_plain(cfg, device, warmup, steps)
                project = run_project(cfg, warmup)
                used = cfg.trainer.precision
                label = f"{asked} ({used})" if asked != used else used
                rows.append((batch, label, steps, plain, project, peak_memory_mb(device)))
    fp32 = {batch: plain for batch, label, _, plain, _, _ in rows if label == "32-true"}
    print(f"\n{'batch':>6} {'precision':>22} {'steps':>6} {'plain im/s':>11} "
          f"{'project im/s':>13} {'ratio':>6} {'vs plain fp32':>14} {'peak MiB':>9}")  # fmt: skip
    for batch, label, steps, plain, project, peak in rows:
        vs_fp32 = f"{project / fp32[batch]:.2f}" if batch in fp32 else "-"
        print(f"{batch:>6} {label:>22} {steps:>6} {plain:>11.1f} {project:>13.1f} "
              f"{project / plain:>6.3f} {vs_fp32:>14} {peak:>9.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
