"""export.py's logic: a trained model's decoder and encoder as ONNX graphs with a dynamic batch
axis (and as torch.export programs), each checked against PyTorch with onnxruntime before it
is kept. Plain PyTorch; the onnx, onnxscript and onnxruntime packages come with the `export`
extra."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from cvae_lightning.errors import ConfigError, ExportError
from cvae_lightning.inference.checkpoint import load_model, resolve_checkpoint
from cvae_lightning.inference.run_data import class_names
from cvae_lightning.paths import project_relative
from cvae_lightning.vae.model import CVAE

log = logging.getLogger(__name__)
# The exporter's optimiser logs each graph rewrite at INFO: nothing a user acts on.
for name in ("onnxscript", "onnx_ir", "torch.onnx"):
    logging.getLogger(name).setLevel(logging.WARNING)


class DecoderGraph(nn.Module):
    """z (N, latent) [+ label (N,) int64 class indices] -> image (N, C, S, S) in [0, 1]."""

    def __init__(self, model: CVAE):
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
        return self.model.decode(z, label)


class EncoderGraph(nn.Module):
    """image (N, C, S, S) in [0, 1] [+ label (N,) int64] -> (mu, logvar), each (N, latent)."""

    def __init__(self, model: CVAE):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, label: torch.Tensor | None = None):
        return self.model.posterior(image, label)


def example_inputs(model: CVAE, part: str, n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random inputs of batch size n for the decoder or the encoder (with labels if the model
    is conditional)."""
    g = torch.Generator().manual_seed(seed)
    if part == "decoder":
        inputs = {"z": torch.randn(n, model.latent, generator=g)}
    else:
        size = model.image_size
        inputs = {"image": torch.rand(n, model.channels, size, size, generator=g)}
    if model.num_classes:
        inputs["label"] = torch.randint(model.num_classes, (n,), generator=g)
    return inputs


OUTPUTS = {"decoder": ["image"], "encoder": ["mu", "logvar"]}
GRAPHS = {"decoder": DecoderGraph, "encoder": EncoderGraph}


def require_packages() -> None:
    missing = [p for p in ("onnx", "onnxscript", "onnxruntime") if not _importable(p)]
    if missing:
        raise ConfigError(
            f"export.py needs {', '.join(missing)}, which is not installed: add the 'export' "
            "extra (`uv sync --extra export`, or `uv run --extra export export.py ...`)"
        )


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def export_part(model: CVAE, part: str, folder: Path, opset: int, pt2: bool) -> list[Path]:
    """Write <part>.onnx (and <part>.pt2) into folder; returns the files written."""
    graph = GRAPHS[part](model).eval()
    inputs = example_inputs(model, part, 2)
    batch = torch.export.Dim("batch", min=1)
    dynamic = {name: {0: batch} for name in inputs}
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        # The exporter's progress lines, and its note that z and label share one batch axis.
        warnings.filterwarnings("ignore", ".*shares the same shape constraints.*")
        program = torch.onnx.export(
            graph, tuple(inputs.values()), folder / f"{part}.onnx", dynamo=True,
            input_names=list(inputs), output_names=OUTPUTS[part], dynamic_shapes=dynamic,
            opset_version=opset, external_data=False,
        )  # fmt: skip
    written = [folder / f"{part}.onnx"]
    if pt2:
        torch.export.save(program.exported_program, folder / f"{part}.pt2")
        written.append(folder / f"{part}.pt2")
    return written


@torch.no_grad()
def check_part(
    model: CVAE, part: str, folder: Path, batches: list[int], pt2: bool
) -> dict[str, float]:
    """Largest |difference| from eager PyTorch of the ONNX graph (onnxruntime, CPU) and the
    torch.export program, at each batch size, on random inputs."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(folder / f"{part}.onnx"), providers=["CPUExecutionProvider"])
    program = torch.export.load(folder / f"{part}.pt2").module() if pt2 else None
    graph = GRAPHS[part](model).eval()
    diffs = {}
    for n in batches:
        inputs = example_inputs(model, part, n, seed=n)
        expected = graph(*inputs.values())
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = session.run(None, {k: v.numpy() for k, v in inputs.items()})
        diffs[f"onnxruntime, batch {n}"] = max(
            float((torch.from_numpy(g) - e).abs().max()) for g, e in zip(got, expected, strict=True)
        )
        if program is not None:
            out = program(*inputs.values())
            out = out if isinstance(out, tuple | list) else (out,)
            diffs[f"torch.export, batch {n}"] = max(
                float((o - e).abs().max()) for o, e in zip(out, expected, strict=True)
            )
    return diffs


def export(
    ckpt_path: str | Path, out: str | Path, opset: int = 18, pt2: bool = True,
    batches: tuple[int, ...] = (1, 64), tolerance: float = 1e-4,
) -> dict:  # fmt: skip
    """Export a checkpoint's decoder and encoder into `out`, check them, and write
    export.json describing the inputs and outputs. The files appear in `out` only once every
    check passed; a failure leaves `out` as it was."""
    require_packages()
    path = resolve_checkpoint(ckpt_path)
    model, ckpt = load_model(path)  # an unusable checkpoint stops here: nothing written
    model = model.float().eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        staging = Path(tmp)
        files, checks = [], {}
        for part in GRAPHS:
            files += export_part(model, part, staging, opset, pt2)
            checks[part] = check_part(model, part, staging, list(batches), pt2)
            worst = max(checks[part].values())
            if worst > tolerance:
                raise ExportError(
                    f"the exported {part} differs from PyTorch by {worst:.2e} (> tolerance "
                    f"{tolerance:g}): nothing was written to {out}; report it with the versions "
                    "of torch and onnxruntime"
                )
        import onnxruntime

        size = int(ckpt["hyper_parameters"]["image_size"])
        label = {"label": "(batch,) int64 class index"} if model.num_classes else {}
        image = f"(batch, {model.channels}, {size}, {size}) float32 in [0, 1]"
        code = f"(batch, {model.latent}) float32"
        manifest = {
            "checkpoint": project_relative(path),
            "latent": model.latent, "channels": model.channels, "image_size": size,
            "classes": class_names(ckpt)[: model.num_classes] if model.num_classes else [],
            "decoder": {"inputs": {"z": code, **label}, "outputs": {"image": image}},
            "encoder": {
                "inputs": {"image": image, **label}, "outputs": {"mu": code, "logvar": code}
            },
            "opset": opset, "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "max_abs_diff": checks,
        }  # fmt: skip
        (staging / "export.json").write_text(json.dumps(manifest, indent=1))
        files.append(staging / "export.json")
        out.mkdir(exist_ok=True)
        for f in files:  # each file replaced in one step
            shutil.move(f, out / f.name)
    for part, diffs in checks.items():
        log.info(f"{part}: max |onnx - torch| {max(diffs.values()):.1e} at batch sizes {batches}")
    log.info(f"wrote {', '.join(f.name for f in files)} to {out}")
    return manifest


def export_config(cfg) -> dict:
    """export.py: the composed config turned into export()'s arguments."""
    return export(cfg.ckpt_path, cfg.out, cfg.opset, cfg.pt2, tuple(cfg.batches), cfg.tolerance)
