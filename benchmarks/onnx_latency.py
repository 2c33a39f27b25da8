"""Decode latency of the exported decoder: onnxruntime against PyTorch eager, in one run.

    uv run --extra export benchmarks/onnx_latency.py [--model DIR] [--repeats 200]

Exports the model (default: the shipped one) with export.py's code into a temporary folder,
then times decoding a batch of z at batch sizes 1 and 128: PyTorch eager (fp32, inference
mode, the model as load_pretrained gives it, and in channels_last) and onnxruntime's CPU
provider on decoder.onnx, all with this machine's default threads. Prints the median and 95th
percentile of each and the ratio.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

from cvae_lightning.inference.onnx import export  # noqa: E402
from cvae_lightning.inference.pretrained import load_pretrained  # noqa: E402
from cvae_lightning.paths import SHIPPED  # noqa: E402


def timed(fn, repeats: int) -> list[float]:
    for _ in range(10):  # warm-up: allocations, onnxruntime's first-run graph work
        fn()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return seconds


def summary(seconds: list[float]) -> tuple[float, float]:
    ms = sorted(s * 1e3 for s in seconds)
    return statistics.median(ms), ms[int(0.95 * (len(ms) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(SHIPPED))
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 128])
    args = parser.parse_args()
    vae = load_pretrained(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        export(args.model, Path(tmp), pt2=False)
        session = ort.InferenceSession(
            str(Path(tmp) / "decoder.onnx"), providers=["CPUExecutionProvider"]
        )
    print(
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime "
        f"{ort.__version__}; decoder of {args.model}; median / p95 of {args.repeats} calls"
    )
    # The same weights in channels_last, the memory format training uses.
    channels_last = copy.deepcopy(vae.model).to(memory_format=torch.channels_last)
    print("| batch | PyTorch eager | eager, channels_last | onnxruntime | eager / onnxruntime |")
    print("|---|---|---|---|---|")
    for n in args.batch_sizes:
        z = torch.randn(n, vae.latent, generator=torch.Generator().manual_seed(0))
        y = torch.zeros(n, dtype=torch.long) if vae.classes else None
        feed = {"z": z.numpy()} | ({"label": y.numpy()} if y is not None else {})

        def eager(z=z, y=y, model=vae.model):
            with torch.inference_mode():
                model.decode(z, y)

        def onnx(feed=feed):
            session.run(None, feed)

        e = summary(timed(eager, args.repeats))
        c = summary(timed(lambda: eager(model=channels_last), args.repeats))
        o = summary(timed(onnx, args.repeats))
        print(f"| {n} | {e[0]:.2f} / {e[1]:.2f} ms | {c[0]:.2f} / {c[1]:.2f} ms | "
              f"{o[0]:.2f} / {o[1]:.2f} ms | {e[0] / o[0]:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
