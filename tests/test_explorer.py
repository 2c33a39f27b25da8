"""The explorer's panels as functions: shapes, value ranges, the slider <-> code round trip,
class swaps, colour models and drawings."""

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from cvae_lightning.app.explorer import Explorer
from cvae_lightning.errors import CheckpointError, ConfigError
from cvae_lightning.inference.run_data import DataSource
from cvae_lightning.paths import PROJECT_ROOT


def fitters():
    cfg = OmegaConf.load(PROJECT_ROOT / "conf" / "density" / "default.yaml")
    cfg.seed = 0
    cfg.fitters.gmm.components = 4
    return dict(instantiate(cfg.fitters))


def load(run, cache_dir=None, **kw) -> Explorer:
    data = DataSource({"cache_dir": str(cache_dir)} if cache_dir else {})
    return Explorer.load(run, data, fitters(), test_images=500, **kw)


@pytest.fixture(scope="module")
def mnist(trained_run, cache_dir):
    return load(trained_run[2], cache_dir)


@pytest.fixture(scope="module")
def colour(colour_run):
    return load(colour_run[0] / "run")


def test_sample_grid_from_each_density(mnist):
    for density in ["auto", *mnist.densities]:
        grid = mnist.sample(density, None, seed=1, count=9)
        assert grid.dtype == np.uint8 and grid.ndim == 3 and grid.shape[2] == 3
    assert np.array_equal(mnist.sample(seed=3), mnist.sample(seed=3))
    assert not np.array_equal(mnist.sample(seed=3), mnist.sample(seed=4))
    with pytest.raises(ConfigError, match="density=bogus is unknown"):
        mnist.sample("bogus")


def test_slider_ranges_hold_the_test_codes(mnist):
    assert len(mnist.ranges) == mnist.model.latent
    lo, hi = torch.tensor(mnist.ranges).T
    inside = ((mnist.codes >= lo) & (mnist.codes <= hi)).float().mean()
    assert inside > 0.98 and (hi - lo).min() > 0


def test_a_test_images_code_round_trips_through_the_sliders(mnist):
    z = mnist.start("test", 7)
    assert torch.allclose(torch.tensor(z), mnist.codes[7], atol=1e-3)  # what the sliders show
    image = mnist.decode(z)
    assert image.shape[:2] == (192, 192) and image.dtype == np.uint8
    again = mnist.decode(mnist.start("test", 7))
    assert np.array_equal(image, again)
    assert mnist.start("zero") == [0.0] * mnist.model.latent
    assert mnist.start("random", seed=1) != mnist.start("random", seed=2)


def test_a_drawing_is_encoded_like_the_training_data(mnist):
    canvas = np.zeros((280, 280, 4), np.uint8)  # transparent canvas, a black stroke
    canvas[60:220, 130:150] = (0, 0, 0, 255)
    z, seen, recon = mnist.encode(canvas)
    assert len(z) == mnist.model.latent
    x = mnist.prepare(canvas)
    assert x.shape == mnist.test_x.shape[1:]  # the model's size and channels
    assert x.mean() < 0.5 and x.max() > 0.5  # inverted: a light stroke on dark, like MNIST
    assert seen.shape == recon.shape == (192, 192, 3)
    # The code decodes to what the reconstruction shows: slider values = the drawing's code.
    assert np.abs(mnist.decode(z).astype(int) - recon.astype(int)).mean() < 3


def test_interpolation_between_test_images_and_drawings(mnist):
    strip = mnist.interpolate(0, 1, 6)
    assert strip.ndim == 3 and strip.shape[1] > 5 * strip.shape[0]  # a strip of 6
    canvas = np.full((100, 100, 3), 255, np.uint8)
    canvas[20:80, 45:55] = 0
    assert mnist.interpolate(canvas, 1, 4).shape[2] == 3


def test_where_marks_the_current_code(mnist):
    a, b = mnist.where(mnist.start("zero")), mnist.where(mnist.codes[0].tolist())
    assert a.shape == b.shape and a.shape[2] == 3 and not np.array_equal(a, b)


def test_conditional_colour_model_swaps_the_class_and_keeps_the_style(colour):
    assert colour.model.channels == 3 and colour.classes == ["blue", "green", "red"]
    z = colour.start("test", 0)
    red, blue = colour.decode(z, "red"), colour.decode(z, "blue")
    assert red.shape == blue.shape == (192, 192, 3)
    assert not np.array_equal(red, blue)  # the same z, another class: another image
    assert np.array_equal(red, colour.decode(z, 2))  # a class by name or by index
    grid = colour.sample(count=6)  # one row per class
    assert grid.shape[2] == 3
    with pytest.raises(ConfigError, match="label=purple is invalid for this checkpoint"):
        colour.decode(z, "purple")


def test_a_checkpoint_that_cannot_be_used_is_refused(tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load(bad)
