"""export.py: ONNX graphs that compute what the model does, at any batch size."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch

from cvae_lightning import load_pretrained
from cvae_lightning.errors import ConfigError
from cvae_lightning.inference.onnx import export
from cvae_lightning.paths import PROJECT_ROOT

from conftest import user_error


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def shipped_export(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "mnist"
    export(PROJECT_ROOT / "weights" / "mnist_cvae", out)
    return out


@pytest.mark.parametrize("n", [3, 128])
def test_the_onnx_decoder_and_encoder_agree_with_pytorch_at_any_batch_size(shipped_export, n):
    vae = load_pretrained()
    g = torch.Generator().manual_seed(n)
    z = torch.randn(n, vae.latent, generator=g)
    (image,) = session(shipped_export / "decoder.onnx").run(None, {"z": z.numpy()})
    assert image.shape == (n, 1, 64, 64)
    assert np.abs(image - vae.decode(z).numpy()).max() < 1e-4
    x = vae.generate(n, seed=n)
    mu, logvar = session(shipped_export / "encoder.onnx").run(None, {"image": x.numpy()})
    expected_mu, expected_logvar = vae.encode(x)
    assert np.abs(mu - expected_mu.numpy()).max() < 1e-4
    assert np.abs(logvar - expected_logvar.numpy()).max() < 1e-4
    # The torch.export program computes the same.
    program = torch.export.load(shipped_export / "decoder.pt2").module()
    assert (program(z) - vae.decode(z)).abs().max() < 1e-5


def test_export_json_describes_the_graphs_and_records_the_check(shipped_export):
    manifest = json.loads((shipped_export / "export.json").read_text())
    assert manifest["checkpoint"] == "weights/mnist_cvae/model.safetensors"
    assert manifest["decoder"]["inputs"] == {"z": "(batch, 8) float32"}
    assert set(manifest["encoder"]["outputs"]) == {"mu", "logvar"}
    diffs = [d for part in manifest["max_abs_diff"].values() for d in part.values()]
    assert len(diffs) == 8 and max(diffs) < 1e-4  # 2 graphs x 2 batch sizes x onnx/pt2


def test_a_conditional_export_takes_the_label(colour_run, tmp_path):
    base, _, _ = colour_run
    vae = load_pretrained(base / "run")
    manifest = export(base / "run", tmp_path / "out", pt2=False)
    assert manifest["classes"] == ["blue", "green", "red"]
    assert "label" in manifest["decoder"]["inputs"] and "label" in manifest["encoder"]["inputs"]
    z = torch.randn(6, vae.latent, generator=torch.Generator().manual_seed(0))
    label = torch.tensor([0, 1, 2, 0, 1, 2])
    decoder = session(tmp_path / "out" / "decoder.onnx")
    (image,) = decoder.run(None, {"z": z.numpy(), "label": label.numpy()})
    assert np.abs(image - vae.decode(z, label).numpy()).max() < 1e-4
    (other,) = decoder.run(None, {"z": z.numpy(), "label": ((label + 1) % 3).numpy()})
    assert np.abs(image - other).mean() > 0.01  # the label changes the image
    mu, _ = session(tmp_path / "out" / "encoder.onnx").run(
        None, {"image": image, "label": label.numpy()}
    )
    assert np.abs(mu - vae.encode(torch.from_numpy(image), label)[0].numpy()).max() < 1e-4


def test_a_corrupt_checkpoint_is_one_line_and_nothing_is_written(tmp_path, capsys):
    bad = tmp_path / "model.ckpt"
    bad.write_bytes(b"not a checkpoint")
    code, err = user_error(capsys, export, bad, tmp_path / "out")
    assert code == 2 and len(err) == 1 and "cannot be read" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.ckpt"]


def test_missing_export_packages_name_the_extra(monkeypatch, tmp_path):
    import cvae_lightning.inference.onnx as onnx_export

    monkeypatch.setattr(onnx_export, "_importable", lambda name: name != "onnxscript")
    with pytest.raises(ConfigError, match="needs onnxscript.*uv sync --extra export"):
        export(PROJECT_ROOT / "weights" / "mnist_cvae", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "args,message",
    [
        (["ckpt_path={bad}", "out={out}"], "checkpoint {bad} cannot be read"),
        (["outt={out}"], "outt is not a config key: did you mean out?"),
    ],
)
def test_the_export_script_exits_2_with_one_line(tmp_path, args, message):
    bad = tmp_path / "model.ckpt"
    bad.write_bytes(b"not a checkpoint")
    values = {"bad": bad, "out": tmp_path / "out"}
    proc = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "export.py"), *(a.format(**values) for a in args)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert message.format(**values) in lines[0]
    assert not (tmp_path / "out").exists()
