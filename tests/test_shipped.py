"""The shipped model: small, loadable without any run folder, and what sample.py draws from."""

import shutil

import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

from cvae_lightning.density_store import best_density, load_densities
from cvae_lightning.loading import load_model
from cvae_lightning.model import count_parameters
from cvae_lightning.runs import PROJECT_ROOT
from cvae_lightning.sampling import render
from cvae_lightning.shipped import SHIPPED, export_model

from conftest import user_error


def sample_config(*overrides: str):
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return compose("sample", overrides=list(overrides))


def test_the_shipped_model_is_small_and_the_reference_architecture():
    assert SHIPPED.stat().st_size < 1e6
    blob = torch.load(SHIPPED, weights_only=True)  # weights only: no optimizer, no loop state
    assert set(blob) == {"state_dict", "hyper_parameters", "datamodule_hyper_parameters",
                         "global_step", "epoch"}  # fmt: skip
    model, _ = load_model(SHIPPED)
    assert count_parameters(model) == 149_265
    densities, record = load_densities(SHIPPED.parent / "densities.pt", model, blob["global_step"])
    assert best_density(record, SHIPPED.parent / "eval" / "metrics.json")[0] in densities
    assert blob["datamodule_hyper_parameters"]["limit"] is None  # all 60,000 training images


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
    shutil.copytree(SHIPPED.parent, weights)
    ckpt = weights / "model.ckpt"
    if damage == "missing":
        ckpt.unlink()
    else:
        ckpt.write_bytes(ckpt.read_bytes()[:1000])
    import cvae_lightning.runs as runs

    monkeypatch.setattr(runs, "PROJECT_ROOT", tmp_path)  # the copy stands where weights/ would
    code, lines = user_error(capsys, render, sample_config(f"ckpt_path={ckpt}"))
    assert code == 2 and len(lines) == 1
    assert "restore it with `git checkout -- weights/`" in lines[0] and str(ckpt) in lines[0]


def test_export_keeps_weights_and_densities_only(trained_run, tmp_path):
    out = export_model(trained_run[2], tmp_path / "model.ckpt")
    full = torch.load(trained_run[2] / "checkpoints" / "last.ckpt", weights_only=True)
    slim = torch.load(out, weights_only=True)
    assert out.stat().st_size < (trained_run[2] / "checkpoints" / "last.ckpt").stat().st_size / 2
    assert "optimizer_states" not in slim and slim["global_step"] == full["global_step"]
    for key, value in slim["state_dict"].items():
        assert torch.equal(value, full["state_dict"][key])
    stored = torch.load(tmp_path / "densities.pt", weights_only=True)
    assert stored["best"] in stored["densities"]
