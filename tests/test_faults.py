"""Faults tried on purpose: a full disk, Ctrl-C, and resuming the newest run without a path."""

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from cvae_lightning.cli.runs import newest_run, resume_overrides
from cvae_lightning.errors import DiskFullError
from cvae_lightning.paths import PROJECT_ROOT
from cvae_lightning.training.checkpointing import AtomicCheckpointIO

from conftest import user_error


def fail_writes_after(monkeypatch, ok_writes: int) -> None:
    """torch.save writes `ok_writes` files, then fails halfway through the next one with
    ENOSPC, like a disk that fills up."""
    real, calls = torch.save, []

    def save(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) > ok_writes:
            f.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)


def test_a_full_disk_keeps_the_previous_checkpoint_whole(monkeypatch, tmp_path):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"global_step": 1, "weights": torch.ones(3)}, path)
    fail_writes_after(monkeypatch, ok_writes=0)
    with pytest.raises(DiskFullError) as e:
        io.save_checkpoint({"global_step": 2, "weights": torch.zeros(3)}, path)
    assert str(e.value).startswith(
        f"could not write {path} (No space left on device): the previous {path} is intact"
    )
    assert torch.load(path, weights_only=True)["global_step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary file left


def test_a_disk_that_fills_during_training_stops_it_in_one_error(monkeypatch, tiny_cfg):
    from cvae_lightning.training.train import train

    instantiate(tiny_cfg.data).prepare_data()  # the data cache is not the test
    tiny_cfg.trainer.max_epochs = 3
    fail_writes_after(monkeypatch, ok_writes=2)  # epoch 1: last and best
    with pytest.raises(DiskFullError, match="No space left on device"):
        train(tiny_cfg)
    ckpts = Path(tiny_cfg.paths.output) / "checkpoints"
    assert torch.load(ckpts / "last.ckpt", weights_only=True)["global_step"] == 8
    assert not list(ckpts.glob(".*.tmp"))


def run_train(*args: str, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(PROJECT_ROOT / "tests" / "helpers")}
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "train.py"), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600, **kwargs,
    )  # fmt: skip


def test_ctrl_c_saves_a_checkpoint_exits_130_and_ckpt_path_last_resumes(tmp_path, cache_dir):
    common = ["debug=tiny", f"data.cache_dir={cache_dir}", "callbacks.densities=null"]
    stopped = run_train(
        *common, "+callbacks.stop._target_=interrupter.InterruptAtStep", "+callbacks.stop.step=11",
        cwd=tmp_path,
    )  # fmt: skip
    assert stopped.returncode == 130, stopped.stderr[-3000:]
    (run,) = (tmp_path / "outputs").glob("*/*")
    last = run / "checkpoints" / "last.ckpt"
    assert stopped.stderr.strip().splitlines()[-1] == (
        f"error: training interrupted at epoch 2, step 12; saved {last}. Resume with "
        f"`uv run train.py ckpt_path=last` (the newest run) or ckpt_path={run}"
    )
    # Ctrl-C came before step 12: that step finished, then last.ckpt was saved, mid-epoch.
    assert torch.load(last, weights_only=True)["global_step"] == 12

    # No path and no overrides repeated: the run's own come back (the interrupter taken out).
    resumed = run_train("ckpt_path=last", "~callbacks.stop", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert list((tmp_path / "outputs").glob("*/*")) == [run]  # kept writing in the same run
    assert torch.load(last, weights_only=True)["global_step"] == 16  # 2 epochs of 8 steps
    assert "Restored all states from the checkpoint" in resumed.stdout + resumed.stderr


def test_ckpt_path_last_takes_the_newest_run_and_its_overrides(tmp_path):
    for name, overrides in (("a", ["model.latent=2"]), ("b", ["debug=tiny", "model.latent=4"])):
        run = tmp_path / "outputs" / "2026-01-01" / name
        (run / "checkpoints").mkdir(parents=True)
        (run / ".hydra").mkdir()
        (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
        (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    assert newest_run(tmp_path / "outputs").name == "b"
    args = resume_overrides(["ckpt_path=last", "trainer.max_epochs=9"], tmp_path / "outputs")
    run = tmp_path / "outputs" / "2026-01-01" / "b"
    assert args == [
        "debug=tiny", "model.latent=4", "trainer.max_epochs=9",
        f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", f"hydra.run.dir={run}",
    ]  # fmt: skip
    assert resume_overrides(["model.latent=3"]) == ["model.latent=3"]  # no last: unchanged


def test_ckpt_path_last_without_any_run_is_one_clear_line(tmp_path, monkeypatch, capsys):
    from cvae_lightning.cli.runs import resume_overrides

    monkeypatch.chdir(tmp_path)  # train.py looks for outputs/ in the working directory
    assert user_error(capsys, resume_overrides, ["ckpt_path=last"]) == (
        2,
        [
            "error: ckpt_path=last found no run to resume: no outputs/<date>/<time>/checkpoints/"
            "last.ckpt under this folder; start a run first, or pass ckpt_path=<run folder>"
        ],
    )
