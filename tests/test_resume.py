"""Resuming: exact continuation, and refusal of checkpoints that cannot be used."""

import pytest
import torch

from cvae_lightning.errors import CheckpointError
from cvae_lightning.training.train import train


def final_weights(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


@pytest.mark.parametrize("graph_step", [False, True], ids=["automatic", "manual-step"])
def test_resume_from_a_run_dir_matches_an_uninterrupted_run(tiny_cfg, tmp_path, graph_step,
                                                            monkeypatch):  # fmt: skip
    """Exact on the CPU, for the automatic step and for the manual one a CUDA graph captures
    (run eagerly here), with the noise generators saved per process."""
    if graph_step:
        import cvae_lightning.training.train as training

        monkeypatch.setattr(training, "choose_cuda_graph", lambda *a: (True, None))
    tiny_cfg.trainer.deterministic = True
    straight = tiny_cfg.copy()
    straight.paths.output = str(tmp_path / "straight")
    train(straight)

    first = tiny_cfg.copy()
    first.paths.output = str(tmp_path / "first")
    first.trainer.max_epochs = 1
    train(first)
    resumed = tiny_cfg.copy()
    resumed.paths.output = str(tmp_path / "resumed")
    resumed.ckpt_path = str(tmp_path / "first")  # a run dir: its checkpoints/last.ckpt is used
    train(resumed)

    a, b = final_weights(tmp_path / "straight"), final_weights(tmp_path / "resumed")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    ckpt = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 16 and ckpt["epoch"] == 1


def test_checkpoint_of_another_architecture_is_refused(trained_run, tiny_cfg):
    tiny_cfg.ckpt_path = str(trained_run[2] / "checkpoints" / "last.ckpt")
    tiny_cfg.model.latent = 4
    tiny_cfg.model.max_filters = 32
    with pytest.raises(CheckpointError) as err:
        train(tiny_cfg)
    message = str(err.value)
    assert "model.latent: checkpoint 8, config 4" in message
    assert "model.max_filters: checkpoint 16, config 32" in message
    assert "data.image_size" not in message


def test_truncated_checkpoint_is_refused_and_left_alone(trained_run, tiny_cfg, tmp_path):
    good = (trained_run[2] / "checkpoints" / "last.ckpt").read_bytes()
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(good[: len(good) // 2])
    tiny_cfg.ckpt_path = str(bad)
    with pytest.raises(CheckpointError, match=f"checkpoint {bad} cannot be read"):
        train(tiny_cfg)
    assert bad.read_bytes() == good[: len(good) // 2]


def test_missing_checkpoint_is_refused(tiny_cfg, tmp_path):
    tiny_cfg.ckpt_path = str(tmp_path / "nope.ckpt")
    with pytest.raises(CheckpointError, match="does not exist"):
        train(tiny_cfg)


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tiny_cfg, tmp_path):
    import os
    import subprocess
    import sys

    from cvae_lightning.paths import PROJECT_ROOT

    tiny_cfg.trainer.deterministic = True
    train(tiny_cfg)  # uninterrupted: 2 epochs of 8 steps
    reference = final_weights(tmp_path / "run")

    run_dir = tmp_path / "killed"
    common = [
        str(PROJECT_ROOT / "train.py"), "debug=tiny", "trainer.deterministic=true",
        f"data.cache_dir={tiny_cfg.data.cache_dir}", f"hydra.run.dir={run_dir}",
        "callbacks.last_checkpoint.every_n_train_steps=3",
    ]  # fmt: skip
    env = os.environ | {"PYTHONPATH": str(PROJECT_ROOT / "tests" / "helpers")}
    killed = subprocess.run(
        [sys.executable, *common, "+callbacks.kill._target_=killer.KillAtStep",
         "+callbacks.kill.step=11"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert killed.returncode == -9  # SIGKILL, in the middle of the second epoch
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 9 and last["epoch"] == 1  # saved mid-epoch, at step 9

    resumed = subprocess.run(
        [sys.executable, *common, f"ckpt_path={run_dir}"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    final = final_weights(run_dir)
    assert torch.load(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 16
    for key in reference:
        assert torch.equal(reference[key], final[key]), key
