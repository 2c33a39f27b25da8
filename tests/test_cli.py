"""The entry scripts as a user runs them: subprocesses with command-line overrides."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cvae_lightning.errors import ConfigError
from cvae_lightning.paths import PROJECT_ROOT
from cvae_lightning.training.train import train

from conftest import TINY, compose_config, read_events, user_error


def run_script(*args: str, cwd=PROJECT_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "train.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_train_script_with_overrides(tmp_path, cache_dir):
    run_dir = tmp_path / "run"
    # Started from another directory: the project's data must still be found.
    proc = run_script(
        *TINY,
        "trainer.max_epochs=1",
        "model.latent=4",
        f"data.cache_dir={cache_dir}",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (run_dir / "train.log").read_text()
    assert "Total Trainable Parameters" in log
    assert "Epoch 1, Iter 8, Loss:" in log and "im/s" in log
    assert "latent: 4" in (run_dir / "config.yaml").read_text()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / "images" / "final.png").is_file()
    assert "val/loss" in read_events(run_dir).Tags()["scalars"]


@pytest.mark.parametrize(
    "override,key",
    [
        ("data.image_size=60", "data.image_size=60"),
        ("model.latent=0", "model.latent=0"),
        ("model.max_filters=30", "model.max_filters=30"),
        ("data.batch_size=0", "data.batch_size=0"),
        ("data.limit=10", "data.limit=10"),
        ("data.name=cifar", "data.name='cifar'"),
        ("model.optimizer.lr=-0.1", "model.optimizer.lr=-0.1"),
        ("density.fitters.gmm.components=0", "density.fitters.gmm.components=0"),
        ("data.channels=2", "data.channels=2"),
        ("data.val_fraction=1.5", "data.val_fraction=1.5"),
        ("density.fitters.flow.lr=0", "density.fitters.flow.lr=0"),
        ("density.codes=median", "density.codes='median'"),
    ],
)
def test_bad_values_give_one_line_and_exit_2(tiny_cfg, capsys, override, key):
    cfg = compose_config(*TINY, override, f"data.cache_dir={tiny_cfg.data.cache_dir}")
    cfg.paths.output = tiny_cfg.paths.output
    code, lines = user_error(capsys, train, cfg)
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith(f"error: {key} is invalid"), lines
    assert not Path(cfg.paths.output).exists()  # nothing half-written


def test_train_script_refuses_a_bad_value_and_leaves_no_run_folder(tmp_path):
    """The script itself: exit code 2, one line, and the folder Hydra made is gone again."""
    run_dir = tmp_path / "run"
    proc = run_script("model.latent=0", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: model.latent=0 is invalid: the latent size must be >= 1"
    ]
    assert not run_dir.exists()


@pytest.mark.parametrize(
    "make,overrides,message",
    [
        (None, ["data=folder"], "data.path is not set: data=folder needs data.path=DIR"),
        (None, ["data=folder", "data.path={d}"], "data.path={d} does not exist"),
        ("empty", ["data=folder", "data.path={d}"], "data.path={d} holds no image files"),
        ("flat", ["data=folder", "data.path={d}", "model.conditional=true"],
         "model.conditional=true needs labelled images, and data.path={d} has no classes"),
    ],
)  # fmt: skip
def test_bad_folders_give_one_line_before_any_work(
    tiny_cfg, capsys, tmp_path, make, overrides, message
):
    from conftest import write_png

    d = tmp_path / "imgs"
    if make == "empty":
        d.mkdir()
        (d / "readme.txt").write_text("no images here")
    if make == "flat":
        for i in range(5):
            write_png(d / f"{i}.png", 30 * i)
    args = [o.format(d=d) for o in overrides]
    cfg = compose_config(*TINY, *args, f"data.cache_dir={tmp_path / 'cache'}")
    cfg.paths.output = tiny_cfg.paths.output
    code, lines = user_error(capsys, train, cfg)
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"error: {message.format(d=d)}")
    assert not Path(cfg.paths.output).exists()  # nothing written, nothing trained


def test_missing_dataset_names_the_folder(tiny_cfg, capsys, tmp_path):
    tiny_cfg.data.root = str(tmp_path / "none")
    tiny_cfg.data.cache_dir = str(tmp_path / "cache")
    code, lines = user_error(capsys, train, tiny_cfg)
    assert code == 2
    assert f"dataset folder {tmp_path / 'none' / 'MNIST' / 'raw'} does not exist" in lines[0]


def test_multirun_gives_each_job_its_own_dir(tmp_path, cache_dir):
    sweep = tmp_path / "sweep"
    proc = run_script(
        "-m",
        *TINY,
        f"data.cache_dir={cache_dir}",
        f"hydra.sweep.dir={sweep}",
        "model.latent=2,4",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert len(jobs) == 2
    assert jobs == ["model.latent=2", "model.latent=4"]
    for job in jobs:
        assert (sweep / job / "checkpoints" / "last.ckpt").is_file()


def test_long_override_names_are_shortened():
    from cvae_lightning.cli.runs import short_dirname

    long = ",".join(f"model.key{i}=value/{i}" for i in range(30))
    name = short_dirname(long)
    assert len(name) == 120 and "/" not in name and name != short_dirname(long + "x")
    assert short_dirname("model.latent=2") == "model.latent=2"


def copy_of_mnist(tmp_path) -> Path:
    raw = tmp_path / "data" / "MNIST" / "raw"
    shutil.copytree(PROJECT_ROOT / "data" / "MNIST" / "raw", raw)
    for unpacked in raw.glob("*-ubyte"):
        unpacked.unlink()
    return raw


def test_corrupt_gz_gives_one_line_exit_2_and_is_left_alone(tiny_cfg, capsys, tmp_path):
    raw = copy_of_mnist(tmp_path)
    gz = raw / "t10k-labels-idx1-ubyte.gz"
    truncated = gz.read_bytes()[:1000]
    gz.write_bytes(truncated)
    tiny_cfg.data.root, tiny_cfg.data.verify = str(tmp_path / "data"), False
    tiny_cfg.data.cache_dir = str(tmp_path / "cache")
    assert user_error(capsys, train, tiny_cfg) == (
        2,
        [
            f"error: dataset file {gz} is corrupt or truncated "
            "(Compressed file ended before the end-of-stream marker was reached): "
            "replace it with the original"
        ],
    )
    assert gz.read_bytes() == truncated and not (raw / "t10k-labels-idx1-ubyte").exists()
    assert not Path(tiny_cfg.paths.output).exists()


def test_wrong_md5_gives_one_line_and_exit_2(tiny_cfg, capsys, tmp_path):
    raw = copy_of_mnist(tmp_path)
    gz = raw / "train-labels-idx1-ubyte.gz"
    gz.write_bytes(gz.read_bytes() + b"junk")
    tiny_cfg.data.root, tiny_cfg.data.cache_dir = str(tmp_path / "data"), str(tmp_path / "c")
    code, lines = user_error(capsys, train, tiny_cfg)
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith(f"error: dataset file {gz} has the wrong md5")


def test_unreadable_checkpoint_gives_one_line_and_exit_2(tiny_cfg, capsys, tmp_path):
    bad = tmp_path / "last.ckpt"
    bad.write_bytes(b"not a checkpoint")
    tiny_cfg.ckpt_path = str(bad)
    code, lines = user_error(capsys, train, tiny_cfg)
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith(f"error: checkpoint {bad} cannot be read")
    assert bad.read_bytes() == b"not a checkpoint"
    assert not Path(tiny_cfg.paths.output).exists()


def test_checkpoint_of_another_architecture_gives_one_line_and_exit_2(
    trained_run, tiny_cfg, capsys
):
    ckpt = trained_run[2] / "checkpoints" / "last.ckpt"
    tiny_cfg.model.latent, tiny_cfg.ckpt_path = 3, str(ckpt)
    assert user_error(capsys, train, tiny_cfg) == (
        2,
        [
            f"error: checkpoint {ckpt} was trained with another architecture "
            "(model.latent: checkpoint 8, config 3): set those values to the checkpoint's, "
            "or pick a matching checkpoint"
        ],
    )


def test_a_misspelt_key_names_the_closest_one_in_one_line(tmp_path):
    """Hydra alone answers with five lines and advice (`+trainer.max_epoch=1`) that fails
    later; the scripts check the keys first: one line, exit 2, no run folder."""
    proc = run_script("trainer.max_epoch=1", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: trainer.max_epoch is not a config key: did you mean trainer.max_epochs? "
        "(to add a new key on purpose, write +trainer.max_epoch=...)"
    ]
    assert not (tmp_path / "outputs").exists()


def test_valid_overrides_pass_the_key_check():
    from cvae_lightning.cli.overrides import check_overrides

    check_overrides("train", ["data=folder", "data.path=/x", "+extra.key=1", "model.latent=2"])
    check_overrides("train", ["-m", "model.latnet=2,4"])  # sweeps are Hydra's to judge
    check_overrides("sample", ["label=cat", "hydra.verbose=true"])
    with pytest.raises(ConfigError, match="did you mean data.image_size"):
        check_overrides("classifier", ["data.image_sise=32"])
