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
