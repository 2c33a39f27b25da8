"""sample.py on a checkpoint made in the test: files, sizes, determinism, errors."""

import subprocess
import sys

import pytest
from PIL import Image

from cvae_lightning.training import PROJECT_ROOT

from conftest import read_events


def sample(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "sample.py"), *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def ckpt(trained_run):
    return trained_run[2] / "checkpoints" / "last.ckpt"


def test_samples_png_has_the_asked_size_and_is_seeded(ckpt, tmp_path, cache_dir):
    outs = []
    for name, seed in (("a.png", 1), ("b.png", 1), ("c.png", 2)):
        proc = sample(
            f"ckpt_path={ckpt}", "n=12", "nrow=4", f"seed={seed}", f"out={tmp_path / name}"
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        outs.append((tmp_path / name).read_bytes())
    with Image.open(tmp_path / "a.png") as im:
        assert im.size == (2 + 4 * 18, 2 + 3 * 18)  # 12 images of 16px, 4 per row, 2px padding
    assert outs[0] == outs[1] and outs[0] != outs[2]


def test_interpolation_and_traversal(ckpt, tmp_path, cache_dir):
    common = [f"ckpt_path={ckpt.parent.parent}", f"data.cache_dir={cache_dir}", "steps=6"]
    proc = sample(*common, "mode=interpolate", "a=3", "b=5", f"out={tmp_path / 'i.png'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    with Image.open(tmp_path / "i.png") as im:
        assert im.size == (2 + 6 * 18, 2 + 18)
    proc = sample(*common, "mode=traverse", "index=2", f"out={tmp_path / 't.png'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    with Image.open(tmp_path / "t.png") as im:
        assert im.size == (2 + 6 * 18, 2 + 8 * 18)  # one row per latent dimension (8)


def test_fitted_prior_is_seeded_and_differs_from_the_standard_one(ckpt, tmp_path, cache_dir):
    from hydra import compose, initialize_config_dir

    from cvae_lightning.sampling import render

    def png(name: str, *overrides: str) -> bytes:
        with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
            cfg = compose("sample", overrides=[f"ckpt_path={ckpt}", f"data.cache_dir={cache_dir}",
                                               "n=16", "prior_images=1000",
                                               f"out={tmp_path / name}", *overrides])  # fmt: skip
        return render(cfg).read_bytes()

    fitted = png("f1.png", "prior=fitted")
    assert fitted == png("f2.png", "prior=fitted")
    assert fitted != png("s.png", "prior=standard")
    assert png("auto.png") == png("s2.png", "prior=standard")  # auto: standard if unconditional


@pytest.mark.parametrize(
    "args,message",
    [
        (["digit=7"], "digit=7 is invalid for this checkpoint: use null (unconditional)"),
        (["mode=manifold"], "mode=manifold needs a checkpoint with model.latent=2, not 8"),
        (["mode=movie"], "mode='movie' is invalid"),
        (["prior=mean"], "prior='mean' is invalid: choose one of auto, standard, fitted"),
    ],
)
def test_bad_requests_give_one_line(ckpt, tmp_path, args, message):
    proc = sample(f"ckpt_path={ckpt}", f"out={tmp_path / 'x.png'}", *args)
    assert (
        proc.returncode == 2
        and proc.stderr.strip() == f"error: {message}"
        or (proc.returncode == 2 and proc.stderr.strip().startswith(f"error: {message}"))
    ), proc.stderr
    assert not (tmp_path / "x.png").exists()


def test_end_of_training_pictures_and_projector(trained_run):
    _, _, out = trained_run
    for name in ("interpolation.png", "traversal.png"):
        assert (out / "images" / name).is_file()
    tags = read_events(out).Tags()["images"]
    assert "latent/interpolation" in tags and "latent/traversal" in tags
    projector = (out / "tensorboard" / "projector_config.pbtxt").read_text()
    assert "test_posterior_means" in projector and "sprite" in projector
    (meta,) = (out / "tensorboard").glob("*/test_posterior_means/metadata.tsv")
    labels = meta.read_text().split()
    assert len(labels) == 64 and labels[:3] == ["7", "2", "1"]  # the first MNIST test digits
    assert (meta.parent / "sprite.png").is_file() and (meta.parent / "tensors.tsv").is_file()
