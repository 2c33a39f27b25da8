"""The shipped model: small, loadable without any run folder, and what sample.py draws from."""

import json
import shutil

import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

from cvae_lightning.densities.layout import read_densities
from cvae_lightning.densities.store import best_density, load_densities
from cvae_lightning.files import read_tensors
from cvae_lightning.inference.checkpoint import load_model
from cvae_lightning.inference.hub_layout import read_model
from cvae_lightning.inference.sample import render
from cvae_lightning.inference.ship import export_model
from cvae_lightning.paths import PROJECT_ROOT, SHIPPED
from cvae_lightning.vae.model import count_parameters

from conftest import user_error


def sample_config(*overrides: str):
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return compose("sample", overrides=list(overrides))


def test_the_shipped_model_is_small_pickle_free_and_the_reference_architecture():
    files = {p.name for p in SHIPPED.iterdir() if p.is_file()}
    assert files == {"config.json", "model.safetensors", "densities.safetensors", "README.md"}
    assert sum(p.stat().st_size for p in SHIPPED.glob("*.safetensors")) < 1e6
    # Weights only (no optimizer, no loop state), readable by any safetensors reader.
    tensors, _ = read_tensors(SHIPPED / "model.safetensors")
    assert all(k.startswith(("encoder.", "decoder.")) for k in tensors)
    model, ckpt = load_model(SHIPPED / "model.safetensors")
    assert count_parameters(model) == 149_265
    densities, record = load_densities(
        SHIPPED / "densities.safetensors", model, ckpt["global_step"]
    )
    assert best_density(record, SHIPPED / "eval" / "metrics.json")[0] in densities
    assert ckpt["datamodule_hyper_parameters"]["limit"] is None  # all 60,000 training images
    config = json.loads((SHIPPED / "config.json").read_text())
    assert not {"root", "cache_dir", "path"} & set(config["data"])  # no paths of our machine


def test_sample_draws_from_the_shipped_model_with_no_argument(tmp_path, caplog):
    cfg = sample_config(f"out={tmp_path / 'samples.png'}")
    assert cfg.ckpt_path == str(SHIPPED)
    with caplog.at_level("INFO"):
        out = render(cfg)
    assert "prior=auto: drawing from gmm, the best density in" in caplog.text
    with Image.open(out) as im:
        assert im.size == (2 + 8 * 66, 2 + 8 * 66)  # 64 images of 64px, 8 a row


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_a_missing_or_corrupt_shipped_file_says_how_to_restore_it(
    tmp_path, capsys, monkeypatch, damage
):
    """The same check as for the real weights/, on a copy (nothing in the project is touched)."""
    weights = tmp_path / "weights" / "mnist_cvae"
    shutil.copytree(SHIPPED, weights)
    ckpt = weights / "model.safetensors"
    if damage == "missing":
        ckpt.unlink()
    else:
        ckpt.write_bytes(ckpt.read_bytes()[:1000])
    import cvae_lightning.paths as paths

    monkeypatch.setattr(paths, "PROJECT_ROOT", tmp_path)  # the copy stands where weights/ would
    code, lines = user_error(capsys, render, sample_config(f"ckpt_path={weights}"))
    assert code == 2 and len(lines) == 1
    assert "restore it with `git checkout -- weights/`" in lines[0] and str(weights) in lines[0]


def test_export_keeps_weights_and_densities_only(trained_run, tmp_path):
    out = export_model(trained_run[2], tmp_path / "shipped")
    last = trained_run[2] / "checkpoints" / "last.ckpt"
    full = torch.load(last, weights_only=True)
    slim = read_model(out / "model.safetensors")
    assert (out / "model.safetensors").stat().st_size < last.stat().st_size / 2
    assert slim["global_step"] == full["global_step"]
    model_weights = {k: v for k, v in full["state_dict"].items() if k.startswith("model.")}
    assert slim["state_dict"].keys() == model_weights.keys()
    for key, value in slim["state_dict"].items():
        assert torch.equal(value, full["state_dict"][key])
    stored = read_densities(out / "densities.safetensors")
    assert stored["best"] in stored["densities"]
