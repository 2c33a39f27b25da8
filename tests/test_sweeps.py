"""Hydra sweeps and scale-out configs: multirun, Optuna, joblib, submitit, DDP."""

import json
import re

import pytest
import yaml
from hydra import compose, initialize_config_dir

from cvae_lightning.cli.runs import check_sweep
from cvae_lightning.errors import ConfigError
from cvae_lightning.training.threads import available_cores

from conftest import CONF, TINY, compose_config, read_events, read_hparams
from test_cli import run_script


def job_dirs(sweep):
    return sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))


def test_multirun_jobs_hold_hparams_and_metrics_under_one_root(tmp_path, cache_dir):
    sweep = tmp_path / "sweep"
    proc = run_script(
        "-m", *TINY, f"data.cache_dir={cache_dir}", f"hydra.sweep.dir={sweep}",
        "model.latent=2,4", "model.optimizer.lr=1e-3",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = job_dirs(sweep)
    assert [j.name for j in jobs] == [
        "model.latent=2,model.optimizer.lr=0.001",
        "model.latent=4,model.optimizer.lr=0.001",
    ]
    for job, latent in zip(jobs, (2, 4), strict=True):
        values, metrics = read_hparams(job)
        assert values["model.latent"] == latent
        assert {"val/loss", "val/recon", "val/kl"} <= set(metrics)
        assert len(read_events(job).Scalars("val/loss")) == 2
    report = json.loads((sweep / "report.json").read_text())
    assert [r["status"] for r in report] == ["completed", "completed"]
    assert all(r["result"] > 0 for r in report)  # train.py returned val/loss to the sweeper


def test_a_failing_job_is_reported_and_the_others_finish(tmp_path, cache_dir):
    sweep = tmp_path / "sweep"
    proc = run_script(
        "-m", *TINY, "trainer.max_epochs=1", f"data.cache_dir={cache_dir}",
        f"hydra.sweep.dir={sweep}", "model.latent=0,4",
    )  # fmt: skip
    assert proc.returncode != 0
    assert (sweep / "model.latent=4,trainer.max_epochs=1" / "checkpoints" / "last.ckpt").is_file()
    report = json.loads((sweep / "report.json").read_text())
    assert [r["status"] for r in report] == ["failed", "completed"]
    assert "model.latent=0 is invalid" in report[0]["error"]
    output = proc.stderr + proc.stdout
    assert re.search(r"job 0 \(.*model\.latent=0.*\) failed: ConfigError", output)
    assert "1 of 2 jobs completed" in output


@pytest.mark.slow  # a sweep plugin: runs in CI (--runslow)
def test_optuna_search_runs_trials_and_reports_the_best(tmp_path, cache_dir):
    sweep = tmp_path / "optuna"
    proc = run_script(
        "hparams_search=optuna", *TINY, "trainer.max_epochs=1", f"data.cache_dir={cache_dir}",
        "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.n_startup_trials=2",
        f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(job_dirs(sweep)) == 2
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    report = json.loads((sweep / "report.json").read_text())
    assert best["best_value"] == pytest.approx(min(r["result"] for r in report))
    assert set(best["best_params"]) == {
        "model.latent", "model.max_filters", "model.optimizer.lr", "model.optimizer.weight_decay",
    }  # fmt: skip


@pytest.mark.slow  # a sweep plugin: runs in CI (--runslow)
def test_joblib_launcher_runs_jobs_in_parallel_processes(tmp_path, cache_dir):
    sweep = tmp_path / "joblib"
    proc = run_script(
        "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *TINY, "trainer.max_epochs=1",
        f"data.cache_dir={cache_dir}", f"hydra.sweep.dir={sweep}", "model.latent=2,4",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Joblib.Parallel" in proc.stdout + proc.stderr
    cores = available_cores()
    for job in job_dirs(sweep):
        assert (job / "checkpoints" / "last.ckpt").is_file()
        # Each of the 2 jobs at once takes half the cores, and says so.
        line = f"CPU threads: {max(1, cores // 2)} ({cores} cores, shared by 2 jobs at once)"
        assert line in (job / "train.log").read_text()


@pytest.mark.slow  # a sweep plugin: runs in CI (--runslow)
def test_submitit_local_launcher(tmp_path, cache_dir):
    sweep = tmp_path / "submitit"
    proc = run_script(
        "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", *TINY,
        "trainer.max_epochs=1", f"data.cache_dir={cache_dir}", f"hydra.sweep.dir={sweep}",
        "model.latent=2",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (job,) = job_dirs(sweep)
    assert (job / "checkpoints" / "last.ckpt").is_file()
    assert (sweep / ".submitit").is_dir()


def test_slurm_launcher_config_composes():
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        full = compose("train", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    launcher = full.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.gpus_per_node == 1 and launcher.timeout_min == 120


def test_ddp_config_and_its_refusal_in_a_multirun():
    cfg = compose_config("trainer=ddp")
    # No BatchNorm collectives every forward: at 128 images per GPU they buy nothing.
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.sync_batchnorm is False
    check_sweep(cfg, multirun=False)
    with pytest.raises(ConfigError, match="trainer.strategy='ddp' is invalid.*ddp_spawn"):
        check_sweep(cfg, multirun=True)
    cfg.trainer.strategy = "ddp_spawn"
    check_sweep(cfg, multirun=True)


@pytest.mark.slow  # a sweep plugin: runs in CI (--runslow)
def test_ddp_spawn_on_two_cpu_processes(tmp_path, cache_dir):
    run_dir = tmp_path / "ddp"
    proc = run_script(
        "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp_spawn",
        "trainer.precision=32-true", "trainer.sync_batchnorm=false", *TINY,
        "trainer.max_epochs=1", f"data.cache_dir={cache_dir}",
        f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr  # rank 0 runs in a spawned process: its lines reach the console
    # 256 images over 2 ranks of 32-image batches: 4 steps per rank.
    assert "Epoch 1, Iter 4, Loss" in log
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
