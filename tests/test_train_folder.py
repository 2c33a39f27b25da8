"""Training on the user's own images end to end: a colour folder with classes (pictures,
samples and eval in RGB, with a classifier trained on it), and tools that read the run's data."""

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

from cvae_lightning.evaluation.evaluate import evaluate_config
from cvae_lightning.evaluation.train_classifier import fit_classifier
from cvae_lightning.inference.run_data import DataSource, checkpoint_split
from cvae_lightning.inference.sample import render
from cvae_lightning.paths import PROJECT_ROOT
from cvae_lightning.training.train import train

from conftest import TINY, compose_config, load_run, read_events, user_error


def tool_config(name: str, *overrides: str):
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return compose(name, overrides=list(overrides))


def rgb(path) -> bool:
    """An RGB file whose channels really differ (not grey saved as RGB)."""
    with Image.open(path) as im:
        a = np.asarray(im.convert("RGB")).astype(int)
        return im.mode == "RGB" and np.abs(a[..., 0] - a[..., 2]).max() > 40


def test_a_colour_folder_trains_and_every_picture_is_in_colour(colour_run):
    base, _, metrics = colour_run
    run = base / "run"
    assert metrics["val/loss"] > 0
    assert rgb(run / "images" / "final.png") and rgb(run / "images" / "recon_epoch015.png")
    config = (run / "config.yaml").read_text()
    assert "channels: 3" in config  # data.channels=auto, resolved and recorded
    model, ckpt = load_run(run)
    assert model.channels == 3 and ckpt["hyper_parameters"]["classes"] == ["blue", "green", "red"]
    images = read_events(run).Images("images/samples")
    assert images  # TensorBoard has the grids
    (sprite,) = (run / "tensorboard").glob("*/test_posterior_means/sprite.png")
    assert rgb(sprite)  # the projector's sprites too


def test_a_colour_run_resumes_where_it_stopped(colour_run, tmp_path):
    base, folder, _ = colour_run
    cfg = compose_config(
        *TINY, "data=folder", f"data.path={folder}", f"data.cache_dir={base / 'cache'}",
        "data.image_size=16", "data.limit=null", "model.conditional=true", "data.batch_size=16",
        "trainer.max_epochs=16", f"ckpt_path={base / 'run'}", "~callbacks.densities",
    )  # fmt: skip
    cfg.paths.output = str(tmp_path / "resumed")
    cfg.trainer.enable_progress_bar = False
    train(cfg)
    _, ckpt = load_run(tmp_path / "resumed")
    assert ckpt["epoch"] == 15 and ckpt["hyper_parameters"]["channels"] == 3


def test_sample_py_draws_a_named_class_in_colour(colour_run, tmp_path, capsys):
    base, _, _ = colour_run
    out = render(tool_config("sample", f"ckpt_path={base / 'run'}", "label=green", "n=8",
                             f"out={tmp_path / 's.png'}"))  # fmt: skip
    assert rgb(out)
    with Image.open(out) as im:
        assert im.size == (2 + 8 * 18, 2 + 18)
    for mode in ("interpolate", "traverse"):
        assert rgb(render(tool_config("sample", f"ckpt_path={base / 'run'}", f"mode={mode}",
                                      f"out={tmp_path / (mode + '.png')}")))  # fmt: skip
    bad = tool_config(
        "sample", f"ckpt_path={base / 'run'}", "label=purple", f"out={tmp_path / 'x.png'}"
    )
    code, lines = user_error(capsys, render, bad)
    assert (
        code == 2
        and "label=purple is invalid for this checkpoint: use a class name (blue" in lines[0]
    )


def test_eval_uses_a_classifier_trained_on_the_folder(colour_run, tmp_path, capsys):
    base, folder, _ = colour_run
    clf = tmp_path / "clf.pt"
    data = [f"data.path={folder}", f"data.cache_dir={base / 'cache'}"]
    fit_classifier(tool_config("classifier", "data=folder", *data, "epochs=2", "batch_size=32",
                               "min_accuracy=0.5", f"out={clf}"))  # fmt: skip
    cfg = tool_config("eval", f"ckpt_path={base / 'run'}", f"eval.classifier={clf}",
                      "eval.samples=60", "eval.kid_subset=30", "eval.iwae_k=4",
                      f"out={tmp_path / 'eval'}", "density.fitters.gmm.components=2",
                      "~density.fitters.flow")  # fmt: skip
    metrics = evaluate_config(cfg)
    assert metrics["test/ssim"] > 0 and "samples/gmm/fid" in metrics
    assert "samples/gmm/class_accuracy" in metrics
    # A classifier made for other data (MNIST: 10 grey classes) is refused in one line.
    cfg.eval.classifier = str(PROJECT_ROOT / "weights" / "mnist_classifier.pt")
    code, lines = user_error(capsys, evaluate_config, cfg)
    assert code == 2 and len(lines) == 1 and "was made for other data" in lines[0]


def test_eval_on_unlabelled_data_skips_the_classifier_and_reports_the_rest(tmp_path, caplog):
    from conftest import write_png

    for i in range(80):
        write_png(tmp_path / "flat" / f"{i:03d}.png", 3 * i)
    cfg = compose_config(*TINY, "data=folder", f"data.path={tmp_path / 'flat'}",
                         f"data.cache_dir={tmp_path / 'cache'}", "data.limit=null",
                         "data.batch_size=16", "~callbacks.densities")  # fmt: skip
    cfg.paths.output = str(tmp_path / "run")
    cfg.trainer.enable_progress_bar = False
    train(cfg)
    ev = tool_config("eval", f"ckpt_path={tmp_path / 'run'}", "eval.iwae_k=2",
                     f"out={tmp_path / 'eval'}", "~density.fitters.flow")  # fmt: skip
    with caplog.at_level("WARNING"):
        metrics = evaluate_config(ev)
    assert "the data is unlabelled" in caplog.text
    assert "test/loss" in metrics and not any(k.startswith("samples/") for k in metrics)


def test_tools_read_the_data_the_run_was_trained_on(tiny_mnist, tmp_path):
    """A run trained with its own data.root: sample.py and eval.py read that root (and its
    cache), not the project's MNIST, with no data key given."""
    cfg = compose_config(*TINY, f"data.root={tiny_mnist}", "data.verify=false",
                         "data.limit=256", "trainer.max_epochs=1")  # fmt: skip
    cfg.paths.output = str(tmp_path / "run")
    cfg.trainer.enable_progress_bar = False
    train(cfg)
    assert (tiny_mnist / "cache" / "mnist-test-16px-1ch").is_dir()  # ${data.root}/cache
    sample_cfg = tool_config("sample", f"ckpt_path={tmp_path / 'run'}", "mode=interpolate",
                             "interpolate=[0,99]", f"out={tmp_path / 'i.png'}")  # fmt: skip
    _, ckpt = load_run(tmp_path / "run")
    test = checkpoint_split(DataSource.of(sample_cfg.data), ckpt, train=False)
    assert len(test.images) == 100  # the run's 100 test images, not MNIST's 10,000
    assert int(test.images[99].max()) > int(test.images[0].max())  # brightness = index
    assert render(sample_cfg).is_file()
    assert torch.equal(test.labels[:10], torch.arange(10))
