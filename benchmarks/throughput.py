"""Training throughput of the project against a plain PyTorch loop, in one run, same device.

    uv run benchmarks/throughput.py                       # CPU (or the GPU, if there is one)
    uv run benchmarks/throughput.py --batch-sizes 128 1024 -- trainer=gpu model.compile=true

The project side is the real thing: Hydra config -> DataModule, LightningModule, Trainer with the
TensorBoard logger, console lines and progress bar on. The plain side is the same CVAE and AdamW
in a bare loop over the same uint8 tensor. On a GPU a second baseline is the same loop with the
whole step captured in one CUDA graph (the hardware's limit for this model). Every side times
the same steps after the same warm-up, at every batch size. Hydra overrides after `--` apply to
the project side; the plain side copies its precision, channels_last and data placement. Each
batch size runs in each of `--precisions` (default: fp32 and the default, `auto`, which is bf16
on CPUs with AMX/AVX512-BF16), and every row also says how the project compares with the plain
fp32 loop.
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

from cvae_lightning.cli.runs import register_resolvers  # noqa: E402
from cvae_lightning.data import load_split, source_from  # noqa: E402
from cvae_lightning.training.precision import AUTO, choose_precision  # noqa: E402
from cvae_lightning.training.train import train  # noqa: E402
from cvae_lightning.vae.losses import kl_divergence  # noqa: E402
from cvae_lightning.vae.model import CVAE, model_kwargs  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepClock(L.Callback):
    """Times training steps [warmup, warmup + steps) of the project run, counted by step, not
    by epoch (an epoch of large batches can be shorter than the warm-up). The clock pauses at
    epoch ends (their pictures are not per-step cost) and syncs only where it starts or stops.
    """

    def __init__(self, warmup: int, steps: int):
        self.warmup, self.end_step = warmup, warmup + steps
        self.seconds, self.images, self.started = 0.0, 0, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self.started is None and self.warmup <= trainer.global_step < self.end_step:
            sync(pl_module.device)
            self.started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self.started is None:
            return
        self.images += batch[0].shape[0]
        epoch_ends = batch_idx + 1 == trainer.num_training_batches
        if epoch_ends or trainer.global_step == self.end_step:
            sync(pl_module.device)
            self.seconds += time.perf_counter() - self.started
            self.started = None


def compose_project(batch: int, steps: int, out: Path, overrides: list[str]):
    register_resolvers()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"data.batch_size={batch}",
                "trainer.max_epochs=1000",  # max_steps ends it
                f"trainer.max_steps={steps}",
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


def run_project(cfg, warmup: int, steps: int) -> float:
    clock = StepClock(warmup, steps)
    train(cfg, extra_callbacks=[clock])
    return clock.images / clock.seconds


def run_plain(cfg, device: torch.device, warmup: int, steps: int, graph: bool = False) -> float:
    """The same model and optimizer in a bare loop (what a careful user writes by hand); with
    `graph`, the loop a CUDA expert writes: the whole step (uint8 -> float, forward, loss,
    backward, capturable AdamW) captured once in a CUDA graph and replayed per batch."""
    d, m = cfg.data, cfg.model
    images = load_split(source_from(d), True, d.image_size, d.channels, d.cache_dir).images
    if d.limit:
        images = images[: d.limit]
    on_device = d.on_device is True or (d.on_device == "auto" and device.type == "cuda")
    images = images.to(device if on_device else "cpu")
    torch.manual_seed(0)
    sizes = {**m, "image_size": d.image_size, "channels": images.shape[1]}
    model = CVAE(**model_kwargs(sizes)).to(device)
    fmt = torch.channels_last if m.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-5, capturable=graph)
    bf16 = str(cfg.trainer.precision).startswith("bf16")
    batch = d.batch_size
    order = torch.randperm(len(images)).to(images.device)

    def step(pixels: torch.Tensor) -> None:
        x = pixels.to(device, non_blocking=True).float().div_(255)
        x = x.contiguous(memory_format=fmt)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            x_rec, mu, logvar = model(x)
        loss = model.likelihood(x_rec, x) + kl_divergence(mu, logvar)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    static, captured = None, None
    for i in range(warmup + steps):
        if i == warmup:
            sync(device)
            start = time.perf_counter()
        j = (i * batch) % (len(images) - batch + 1)
        pixels = images[order[j : j + batch]]
        if not graph:
            step(pixels)
        elif captured is not None:
            static.copy_(pixels, non_blocking=True)
            captured.replay()
        elif i < warmup - 1 or i == 0:  # warm-up on a side stream, as capture requires
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                step(pixels)
            torch.cuda.current_stream().wait_stream(side)
        else:
            static, captured = pixels.to(device).clone(), torch.cuda.CUDAGraph()
            with torch.cuda.graph(captured):
                step(static)
            captured.replay()
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
    graphs = device.type == "cuda"
    for batch in args.batch_sizes:
        steps = args.steps or (300 if graphs else max(4, 4096 // batch))
        warmup = args.warmup if args.warmup is not None else (50 if graphs else 2)
        for asked in args.precisions:
            overrides = [*args.overrides, f"trainer.precision={asked}"]
            with tempfile.TemporaryDirectory() as out:
                cfg = compose_project(batch, warmup + steps, Path(out), overrides)
                if graphs:
                    torch.cuda.reset_peak_memory_stats()
                plain = run_plain(cfg, device, warmup, steps)
                graphed = run_plain(cfg, device, warmup, steps, graph=True) if graphs else None
                project = run_project(cfg, warmup, steps)
                used = cfg.trainer.precision
                label = f"{asked} ({used})" if asked != used else used
                rows.append((batch, label, steps, plain, graphed, project, peak_memory_mb(device)))
    fp32 = {row[0]: row[3] for row in rows if row[1] == "32-true"}
    print(f"\n{'batch':>6} {'precision':>22} {'steps':>6} {'plain im/s':>11} {'graph im/s':>11} "
          f"{'project im/s':>13} {'vs plain':>9} {'vs graph':>9} {'vs plain fp32':>14} "
          f"{'peak MiB':>9}")  # fmt: skip
    for batch, label, steps, plain, graphed, project, peak in rows:
        vs_fp32 = f"{project / fp32[batch]:.2f}" if batch in fp32 else "-"
        graph_cols = (f"{graphed:>11.1f}", f"{project / graphed:>9.3f}") if graphed else ("-", "-")
        print(f"{batch:>6} {label:>22} {steps:>6} {plain:>11.1f} {graph_cols[0]:>11} "
              f"{project:>13.1f} {project / plain:>9.3f} {graph_cols[1]:>9} {vs_fp32:>14} "
              f"{peak:>9.0f}")  # fmt: skip
    if not graphs:
        print("(no CUDA device: the graph-captured baseline needs one)")


if __name__ == "__main__":
    main()
