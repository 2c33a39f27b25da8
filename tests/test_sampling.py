"""sample.py on a checkpoint made in the test: files, sizes, determinism, errors."""

import subprocess
import sys

import pytest
from PIL import Image

from cvae_lightning.inference.sample import render
from cvae_lightning.paths import PROJECT_ROOT

from conftest import load_run, read_events, swept_shipped_copy, user_error


def sample_config(ckpt, out, cache_dir, *overrides: str):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return compose("sample", overrides=[f"ckpt_path={ckpt}", f"data.cache_dir={cache_dir}",
                                            "n=16", "density.images=1000", f"out={out}",
                                            *overrides])  # fmt: skip


def render_png(ckpt, out, cache_dir, *overrides: str) -> bytes:
    return render(sample_config(ckpt, out, cache_dir, *overrides)).read_bytes()


@pytest.fixture(scope="module")
def ckpt(trained_run):
    return trained_run[2] / "checkpoints" / "last.ckpt"


def test_sample_script_writes_the_png(ckpt, tmp_path):
    """The script itself, once: a grid of n images, nrow to a row, from the run's best
    stored density (prior=auto, the default)."""
    proc = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "sample.py"), f"ckpt_path={ckpt}", "n=12", "nrow=4",
         f"out={tmp_path / 'a.png'}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    with Image.open(tmp_path / "a.png") as im:
        assert im.size == (2 + 4 * 18, 2 + 3 * 18)  # 12 images of 16px, 4 per row, 2px padding
    assert "prior=auto: drawing from" in proc.stdout + proc.stderr
    assert f"wrote {tmp_path / 'a.png'}" in proc.stdout + proc.stderr


def test_samples_are_seeded(ckpt, tmp_path, cache_dir):
    outs = [
        render_png(ckpt, tmp_path / name, cache_dir, "n=12", "nrow=4", f"seed={seed}")
        for name, seed in (("a.png", 1), ("b.png", 1), ("c.png", 2))
    ]
    assert outs[0] == outs[1] and outs[0] != outs[2]


def test_interpolation_and_traversal(ckpt, tmp_path, cache_dir):
    run = ckpt.parent.parent
    render_png(
        run, tmp_path / "i.png", cache_dir, "steps=6", "mode=interpolate", "interpolate=[3,5]"
    )
    with Image.open(tmp_path / "i.png") as im:
        assert im.size == (2 + 6 * 18, 2 + 18)
    render_png(run, tmp_path / "t.png", cache_dir, "steps=6", "mode=traverse", "traverse=2")
    with Image.open(tmp_path / "t.png") as im:
        # one row per latent dimension (8), each named (z[0] ...) in a margin on the left
        assert im.size[1] == 2 + 8 * 18 and im.size[0] > 2 + 6 * 18
        margin = im.convert("L").crop((0, 0, im.size[0] - (2 + 6 * 18), im.size[1]))
        assert min(margin.get_flattened_data()) < 100  # dark text on the white margin


def test_densities_are_seeded_and_differ_from_the_standard_one(ckpt, tmp_path, cache_dir):
    def png(name: str, *overrides: str) -> bytes:
        return render_png(ckpt, tmp_path / name, cache_dir, *overrides)

    gmm = png("g1.png", "prior=gmm")
    assert gmm == png("g2.png", "prior=gmm")
    assert gmm != png("s.png", "prior=standard") != png("f.png", "prior=flow")
    assert png("g3.png", "prior=gmm", "seed=1") != gmm


def test_auto_draws_from_the_runs_best_stored_density(ckpt, tmp_path, cache_dir, caplog):
    """The run folder holds densities.pt (written by the callback): auto uses the best of it."""
    import torch

    from cvae_lightning.densities.store import best_density, load_densities

    model, _ = load_run(ckpt)
    _, record = load_densities(ckpt.parent / "densities.pt", model)
    best, _ = best_density(record)
    with caplog.at_level("INFO"):
        auto = render_png(ckpt.parent.parent, tmp_path / "auto.png", cache_dir)
    assert f"prior=auto: drawing from {best}, the best density in" in caplog.text
    assert "fitting" not in caplog.text  # nothing was refitted
    assert auto == render_png(ckpt, tmp_path / "named.png", cache_dir, f"prior={best}")
    assert torch.load(ckpt.parent / "densities.pt", weights_only=True)["step"] == 24


def test_a_bare_checkpoint_gets_a_density_fitted_on_the_fly(ckpt, tmp_path, cache_dir, caplog):
    bare = tmp_path / "bare" / "model.ckpt"
    bare.parent.mkdir()
    bare.write_bytes(ckpt.read_bytes())
    with caplog.at_level("INFO"):
        auto = render_png(bare, tmp_path / "auto.png", cache_dir)
    assert "prior=auto: no stored densities, so drawing from gmm" in caplog.text
    assert "fitting gmm on the training images now" in caplog.text
    assert auto != render_png(bare, tmp_path / "standard.png", cache_dir, "prior=standard")
    assert not (bare.parent / "densities.pt").exists()  # nothing is written beside it


@pytest.mark.parametrize(
    "args,message",
    [
        (["label=7"], "label=7 needs a conditional checkpoint: use label=null"),
        (["mode=manifold"], "mode=manifold needs a checkpoint with model.latent=2, not 8"),
        (["mode=movie"], "mode='movie' is invalid"),
        (
            ["prior=mean"],
            "prior='mean' is invalid: choose one of auto, standard, gaussian, gmm, flow",
        ),
        (["interpolate=[0]"], "interpolate=[0] is invalid: give two test-image indices"),
    ],
)
def test_bad_requests_give_one_line(ckpt, tmp_path, cache_dir, capsys, args, message):
    cfg = sample_config(ckpt, tmp_path / "x.png", cache_dir, *args)
    code, lines = user_error(capsys, render, cfg)
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}"), lines
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


def test_the_spread_eval_swept_to_is_what_fitted_densities_then_draw_at(
    tmp_path, cache_dir, caplog
):
    """eval.py's sweep/temperature (its lowest FID) replaces density.temperature for the run:
    sample.py and the Python API draw at it (the console says so, but not for N(0, I), which
    it does not touch); temperature=... still overrides it."""
    import logging

    import torch

    from cvae_lightning import load_pretrained

    shipped = PROJECT_ROOT / "weights" / "mnist_cvae"
    model = swept_shipped_copy(tmp_path / "model", 0.6)

    assert load_pretrained(shipped).temperature == 0.9 and load_pretrained(model).swept == 0.6
    vae = load_pretrained(model)
    assert vae.temperature == 0.6
    asked = load_pretrained().generate(8, seed=1, temperature=0.6)
    assert torch.equal(vae.generate(8, seed=1), asked)
    with caplog.at_level(logging.INFO):
        swept = render_png(model, tmp_path / "swept.png", cache_dir)
        assert "fitted densities draw at 0.6" in caplog.text
        caplog.clear()
        render_png(model, tmp_path / "standard.png", cache_dir, "prior=standard")
        assert "fitted densities draw at" not in caplog.text
    assert swept == render_png(shipped, tmp_path / "asked.png", cache_dir, "temperature=0.6")
    assert swept != render_png(shipped, tmp_path / "default.png", cache_dir)
    assert render_png(model, tmp_path / "over.png", cache_dir, "temperature=0.9") == (
        render_png(shipped, tmp_path / "default.png", cache_dir)
    )


@pytest.mark.parametrize(
    "text,why",
    [
        ('{"metrics": {"sweep/temp', "JSONDecodeError"),
        ("", "JSONDecodeError"),
        ('{"metrics": []}', "AssertionError"),
        (
            '{"metrics": {"sweep/temperature": "hot"}}',
            "sweep/temperature='hot' is not a spread > 0",
        ),
        ('{"metrics": {"sweep/temperature": 0}}', "sweep/temperature=0 is not a spread > 0"),
    ],
)
def test_a_corrupt_eval_file_beside_a_model_is_one_clear_error(
    tmp_path, cache_dir, capsys, text, why
):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(PROJECT_ROOT / "weights" / "mnist_cvae", model)
    (model / "eval" / "metrics.json").write_text(text)
    cfg = sample_config(model, tmp_path / "s.png", cache_dir)
    code, lines = user_error(capsys, render, cfg)
    assert code == 2 and lines == [
        f"error: evaluation results {model / 'eval' / 'metrics.json'} are corrupt ({why}): "
        "delete the file, or write it anew with `uv run eval.py ckpt_path=<the run>`"
    ]
    assert not (tmp_path / "s.png").exists()
