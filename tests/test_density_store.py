"""Densities kept with the run: written by the callback, loaded safely, refused when wrong."""

import json
import re
import shutil
import subprocess
import sys

import pytest
import torch
from PIL import Image

from cvae_lightning.densities.standard import StandardNormal
from cvae_lightning.densities.store import best_density, load_densities, save_densities
from cvae_lightning.errors import DensityFileError
from cvae_lightning.paths import PROJECT_ROOT
from cvae_lightning.vae.model import CVAE

from conftest import load_run, read_events


def test_callback_fits_every_density_and_pictures_the_best(trained_run):
    _, _, out = trained_run
    path = out / "checkpoints" / "densities.pt"
    blob = torch.load(path, weights_only=True)  # tensors and plain values only
    assert list(blob["densities"]) == ["standard", "gaussian", "gmm", "flow"]
    assert blob["images"] == 256 and blob["codes"] == "mean" and blob["step"] == 24
    for report in blob["report"].values():
        assert report["fit_seconds"] >= 0 and report["test_log_likelihood"] < 100
    model, _ = load_run(out)
    _, record = load_densities(path, model, step=24)
    best, why = best_density(record)
    assert "log-likelihood" in why
    with Image.open(out / "images" / f"samples_{best}.png") as im:
        assert im.size == (2 + 8 * 18, 2 + 8 * 18)  # 64 samples of 16px, 8 rows, 2px padding
    with Image.open(out / "images" / f"samples_standard_vs_{best}.png") as im:
        assert im.size[0] == 2 * (2 + 8 * 18) + 16  # N(0, I) | gap | fitted
        band = im.size[1] - (2 + 8 * 18)  # a white band on top says which side is which
        title = im.convert("L").crop((0, 0, im.size[0], band))
        assert band > 10 and min(title.get_flattened_data()) < 100
    events = read_events(out)
    assert {"images/samples_fitted", "images/standard_vs_fitted"} <= set(events.Tags()["images"])
    assert "density/gmm/test_log_likelihood" in events.Tags()["scalars"]


def test_best_density_follows_eval_where_it_has_run(tmp_path):
    record = {
        "report": {"standard": {"test_log_likelihood": -9.0}, "flow": {"test_log_likelihood": 3.0}}
    }
    assert best_density(record)[0] == "flow"
    metrics = tmp_path / "metrics.json"
    metrics.write_text(
        json.dumps({"metrics": {"samples/standard/fid": 2.0, "samples/flow/fid": 5.0}})
    )
    name, why = best_density(record, metrics)
    assert name == "standard" and "lowest FID" in why


@pytest.fixture
def bad_files(tmp_path):
    """A corrupt file, a foreign one, and one fitted for another model."""
    files = {"corrupt": tmp_path / "corrupt.pt", "foreign": tmp_path / "foreign.pt"}
    files["corrupt"].write_bytes(b"\x80\x02garbage")
    torch.save({"weights": torch.zeros(3)}, files["foreign"])
    files["mismatch"] = tmp_path / "mismatch.pt"
    other = CVAE(latent=4, max_filters=16, image_size=16)
    save_densities(files["mismatch"], {"standard": StandardNormal(4)}, other, 1, {"report": {}})
    return files


@pytest.mark.parametrize(
    "kind,message",
    [
        ("corrupt", "is corrupt or not a cvae-lightning densities file (UnpicklingError)"),
        ("foreign", "is corrupt or not a cvae-lightning densities file (AssertionError)"),
        ("mismatch", "was fitted for latent=4 and 0 classes, but the checkpoint has latent=8"),
    ],
)
def test_unusable_density_files_are_refused_with_the_fix(bad_files, kind, message):
    with pytest.raises(DensityFileError, match=re.escape(message)) as e:
        load_densities(bad_files[kind], CVAE(8, 16, 16))
    assert str(bad_files[kind]) in str(e.value) and "delete" in str(e.value)


def test_sample_refuses_a_mismatched_density_file_and_overwrites_nothing(
    trained_run, bad_files, tmp_path
):
    run = tmp_path / "run"
    shutil.copytree(trained_run[2] / "checkpoints", run / "checkpoints")
    shutil.copy(bad_files["mismatch"], run / "checkpoints" / "densities.pt")
    before = (run / "checkpoints" / "densities.pt").read_bytes()
    out = tmp_path / "x.png"
    proc = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "sample.py"), f"ckpt_path={run}", f"out={out}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: density file {run / 'checkpoints' / 'densities.pt'} was fitted")
    assert (run / "checkpoints" / "densities.pt").read_bytes() == before  # never refitted over
    assert not out.exists()
