"""The class-conditional model draws the digit it is asked for, by an independent classifier."""

import pytest
import torch
from PIL import Image

from cvae_lightning.densities.standard import StandardNormal
from cvae_lightning.densities.store import load_densities
from cvae_lightning.inference import draw
from cvae_lightning.paths import PROJECT_ROOT
from cvae_lightning.training.train import train

from conftest import load_run, read_events, read_images


@pytest.fixture(scope="module")
def classifier_16px(cache_dir) -> torch.nn.Module:
    """Softmax regression on 16px MNIST: ~90% test accuracy after a few hundred steps."""
    images, labels = read_images(PROJECT_ROOT / "data", "mnist", True, 16, cache_dir)
    x, y = images[:10_000].float().div(255).flatten(1), labels[:10_000]
    torch.manual_seed(0)
    clf = torch.nn.Linear(256, 10)
    opt = torch.optim.Adam(clf.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(clf(x), y).backward()
        opt.step()
    test_x, test_y = read_images(PROJECT_ROOT / "data", "mnist", False, 16, cache_dir)
    accuracy = (clf(test_x.float().div(255).flatten(1)).argmax(1) == test_y).float().mean()
    assert accuracy > 0.85
    return clf.eval()


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory, cache_dir):
    from conftest import TINY, compose_config

    out = tmp_path_factory.mktemp("conditional")
    cfg = compose_config(
        *TINY, "model.conditional=true", "data.limit=8192", "trainer.max_epochs=6",
        "callbacks.images.n=40", "callbacks.images.rows=4", f"data.cache_dir={cache_dir}",
    )  # fmt: skip
    cfg.paths.output = str(out)
    train(cfg)
    return out


def test_samples_are_the_requested_digit(conditional_run, classifier_16px):
    clf = classifier_16px
    model, _ = load_run(conditional_run)
    hits = []
    for digit in range(10):
        x = model.sample(
            50, generator=torch.Generator().manual_seed(digit), y=torch.tensor([digit])
        )
        hits.append((clf(x.flatten(1)).argmax(1) == digit).float().mean().item())
    # Chance is 0.1; after 6 short epochs the tiny model draws the asked digit ~94% of the time.
    assert sum(hits) / 10 > 0.8, hits


def test_eval_reports_digit_accuracy_for_every_density(conditional_run, cache_dir, tmp_path):
    """eval.py measures a conditional model by the digit it was asked for, for each density.
    (The project classifier cannot judge this 16px, 6-epoch model fairly: it reads only ~17%
    of its blurry reconstructions right, so the accuracy itself is checked with the test's own
    16px classifier below.)"""
    from hydra import compose, initialize_config_dir

    from cvae_lightning.evaluation.evaluate import evaluate_config

    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "eval",
            overrides=[f"ckpt_path={conditional_run}", f"data.cache_dir={cache_dir}",
                       "eval.images=1000", "eval.iwae_k=2", "eval.iwae_images=10",
                       "eval.knn_train=5000", "eval.samples=1000", "eval.kid_subset=200",
                       f"out={tmp_path}"],
        )  # fmt: skip
    m = evaluate_config(cfg)
    for name in ("standard", "gaussian", "gmm", "flow"):
        assert 0 <= m[f"samples/{name}/class_accuracy"] <= 1
        assert 0 < m[f"samples/{name}/confidence"] <= 1
    assert m["real/class_accuracy"] > 0.9


@pytest.mark.parametrize("name", ["gaussian", "gmm", "flow"])
def test_each_fitted_density_draws_the_requested_digit(conditional_run, classifier_16px, name):
    """One mixture per digit, or the digit as the flow's context: `digit=7` draws sevens."""
    from cvae_lightning.densities.store import load_densities

    clf = classifier_16px
    model, _ = load_run(conditional_run)
    densities, _ = load_densities(conditional_run / "checkpoints" / "densities.pt", model)
    digits = torch.arange(500) % 10
    g = torch.Generator().manual_seed(0)
    images = draw.generate(model, densities[name], 500, 1.0, g, digits)
    assert (clf(images.flatten(1)).argmax(1) == digits).float().mean() > 0.8


def test_sample_grid_has_one_row_per_digit(conditional_run):
    with Image.open(conditional_run / "images" / "samples_epoch006.png") as im:
        assert im.size == (4 * 16, 10 * 16)  # 40 samples: 10 rows (digits 0-9) of 4
    assert "images/samples" in read_events(conditional_run).Tags()["images"]
    model, _ = load_run(conditional_run)
    seven = draw.sample_grid(model, StandardNormal.of(model), 8, nrow=8, label=7)
    assert draw.sample_grid(model, StandardNormal.of(model), 20).shape == (
        3,
        2 + 10 * 18,
        2 + 2 * 18,
    )  # 10 rows of 2
    assert seven.shape == (3, 2 + 18, 2 + 8 * 18)


def test_two_dimensional_latent_gets_manifold_and_scatter(tmp_path, cache_dir):
    from conftest import TINY, compose_config

    cfg = compose_config(
        *TINY, "model.latent=2", "trainer.max_epochs=1", f"data.cache_dir={cache_dir}"
    )
    cfg.paths.output = str(tmp_path)
    train(cfg)
    with Image.open(tmp_path / "images" / "manifold.png") as im:
        assert im.size == (2 + 20 * 18, 2 + 20 * 18)
    with Image.open(tmp_path / "images" / "latent_scatter.png") as im:
        assert im.size == (600, 600)
    tags = read_events(tmp_path).Tags()["images"]
    assert {"latent/manifold", "latent/scatter"} <= set(tags)


def test_default_grid_gives_every_class_a_full_row(conditional_run):
    model, _ = load_run(conditional_run)
    grid = draw.sample_grid(
        model, StandardNormal.of(model), 64
    )  # 10 classes: 10 rows of 6, no short row, no filler
    assert grid.shape == (3, 2 + 10 * 18, 2 + 6 * 18)


def test_small_classes_get_fewer_mixture_components_not_an_error(tmp_path, cache_dir, caplog):
    from conftest import TINY, compose_config

    cfg = compose_config(
        *TINY, "model.conditional=true", "data.limit=512", "trainer.max_epochs=1",
        "density.fitters.gmm.components=50", "~density.fitters.flow", f"data.cache_dir={cache_dir}",
    )  # fmt: skip
    cfg.paths.output = str(tmp_path)
    with caplog.at_level("INFO"):
        train(cfg)
    assert "components instead of 50" in caplog.text  # said in the console and train.log
    model, ckpt = load_run(tmp_path)
    densities, _ = load_densities(tmp_path / "checkpoints" / "densities.pt", model)
    z = densities["gmm"].sample(20, torch.full((20,), 3))
    assert z.shape == (20, model.latent) and torch.isfinite(z).all()


@pytest.mark.parametrize("mode", ["samples", "interpolate", "traverse"])
def test_sample_py_keeps_every_tensor_on_the_models_device(conditional_run, cache_dir, tmp_path,
                                                           mode):  # fmt: skip
    """A conditional model on a stand-in GPU (the meta device): every tensor that meets it is
    made on its device (the traversal once built its labels on the CPU and crashed on CUDA)."""
    from test_sampling import sample_config

    from cvae_lightning.inference.sample import render

    from helpers.one_device import OneDevice

    overrides = ["device=meta", f"mode={mode}"] + (["label=3"] if mode == "samples" else [])
    cfg = sample_config(conditional_run, tmp_path / "s.png", cache_dir, *overrides)
    with OneDevice():
        out = render(cfg)
    assert Image.open(out).size[0] > 16  # a whole grid was drawn


def test_end_of_training_pictures_keep_every_tensor_on_the_models_device(conditional_run):
    """The LatentPictures and ImageGridLogger pictures of a conditional model, on the stand-in
    GPU (the traversal's and the manifold's labels were made on the CPU)."""
    from types import SimpleNamespace

    from cvae_lightning.training.callbacks import ImageGridLogger, LatentPictures
    from cvae_lightning.vae.model import CVAE

    from helpers.one_device import OneDevice

    model = CVAE(latent=2, max_filters=16, image_size=16, num_classes=10).to("meta")
    x, y = torch.rand(20, 1, 16, 16), torch.arange(20) % 10
    datamodule = SimpleNamespace(
        fixed_val_batch=lambda n: (x[:n], y[:n]), classes=list("0123456789")
    )
    trainer = SimpleNamespace(datamodule=datamodule, loggers=[], global_step=0)
    pl_module = SimpleNamespace(
        model=model, device=torch.device("meta"), training=False, hparams={"channels_last": False},
        eval=lambda: None, train=lambda mode=True: None,
    )  # fmt: skip
    out = conditional_run / "meta_pictures"
    grids = ImageGridLogger(str(out), n=20, rows=2)
    with OneDevice():
        grids.z = torch.randn(20, 2)
        grids.x, grids.y = x, y
        recon, samples = grids.render(pl_module)
        LatentPictures(str(out), embed=16).on_fit_end(trainer, pl_module)
    assert recon.shape == (3, 2 * 16, 10 * 16) and samples.shape == (3, 10 * 16, 2 * 16)
    assert {p.name for p in out.iterdir()} >= {"traversal.png", "manifold.png", "interpolation.png"}
