"""The entry scripts as a user runs them: subprocesses with command-line overrides."""

import subprocess
import sys

import pytest

from cvae_lightning.training import PROJECT_ROOT

from conftest import TINY, read_events


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
    ],
)
def test_bad_values_give_one_line_and_exit_2(tmp_path, override, key):
    run_dir = tmp_path / "run"
    proc = run_script(override, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {key} is invalid"), proc.stderr
    assert not run_dir.exists()  # nothing half-written


def test_missing_dataset_names_the_folder(tmp_path):
    proc = run_script(f"data.root={tmp_path / 'none'}", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2
    assert f"dataset folder {tmp_path / 'none' / 'MNIST' / 'raw'} does not exist" in proc.stderr


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
    from cvae_lightning.training import short_dirname

    long = ",".join(f"model.key{i}=value/{i}" for i in range(30))
    name = short_dirname(long)
    assert len(name) == 120 and "/" not in name and name != short_dirname(long + "x")
    assert short_dirname("model.latent=2") == "model.latent=2"


def test_corrupt_gz_gives_one_line_exit_2_and_is_left_alone(tmp_path):
    import shutil

    raw = tmp_path / "data" / "MNIST" / "raw"
    shutil.copytree(PROJECT_ROOT / "data" / "MNIST" / "raw", raw)
    for unpacked in raw.glob("*-ubyte"):
        unpacked.unlink()
    gz = raw / "t10k-labels-idx1-ubyte.gz"
    truncated = gz.read_bytes()[:1000]
    gz.write_bytes(truncated)
    proc = run_script(
        f"data.root={tmp_path / 'data'}", "data.verify=false", f"hydra.run.dir={tmp_path / 'run'}"
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: dataset file {gz} is corrupt or truncated "
        "(Compressed file ended before the end-of-stream marker was reached): "
        "replace it with the original"
    ]
    assert gz.read_bytes() == truncated and not (raw / "t10k-labels-idx1-ubyte").exists()
    assert not (tmp_path / "run").exists()


def test_wrong_md5_gives_one_line_and_exit_2(tmp_path):
    import shutil

    raw = tmp_path / "data" / "MNIST" / "raw"
    shutil.copytree(PROJECT_ROOT / "data" / "MNIST" / "raw", raw)
    gz = raw / "train-labels-idx1-ubyte.gz"
    gz.write_bytes(gz.read_bytes() + b"junk")
    proc = run_script(f"data.root={tmp_path / 'data'}", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2
    assert f"error: dataset file {gz} has the wrong md5" in proc.stderr


def test_unreadable_checkpoint_gives_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "last.ckpt"
    bad.write_bytes(b"not a checkpoint")
    proc = run_script(f"ckpt_path={bad}", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: checkpoint {bad} cannot be read")
    assert bad.read_bytes() == b"not a checkpoint" and not (tmp_path / "run").exists()


def test_checkpoint_of_another_architecture_gives_one_line_and_exit_2(trained_run, tmp_path):
    ckpt = trained_run[2] / "checkpoints" / "last.ckpt"
    proc = run_script(*TINY, "model.latent=3", f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path}/r")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: checkpoint {ckpt} was trained with another architecture "
        "(model.latent: checkpoint 8, config 3): set those values to the checkpoint's, "
        "or pick a matching checkpoint"
    ]
