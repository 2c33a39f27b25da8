import json
from pathlib import Path

import pytest
import torch

from conftest import read_events


def test_loss_drops(trained_run):
    _, _, out = trained_run
    losses = [e.value for e in read_events(out).Scalars("train/loss")]
    assert len(losses) == 3
    assert losses[-1] < 0.8 * losses[0]


def test_returns_per_image_metrics(trained_run):
    _, metrics, _ = trained_run
    for key in ("train/loss", "train/recon", "train/kl", "val/loss", "val/recon", "val/kl"):
        assert key in metrics
    assert metrics["val/loss"] == pytest.approx(metrics["val/recon"] + metrics["val/kl"], rel=1e-4)
    # 16x16 pixels in [0, 1]: a per-image squared error can never exceed 256.
    assert 0 < metrics["val/recon"] < 256


def test_run_dir_holds_config_logs_and_checkpoints(trained_run):
    cfg, metrics, out = trained_run
    assert "max_filters: 16" in (out / "config.yaml").read_text()
    assert "${" not in (out / "config.yaml").read_text()  # resolved
    ckpts = out / "checkpoints"
    assert (ckpts / "last.ckpt").is_file()
    best = [p for p in ckpts.glob("best-*.ckpt")]
    assert len(best) == 1
    state = torch.load(best[0], map_location="cpu", weights_only=True)
    assert state["hyper_parameters"]["max_filters"] == 16
    assert list(state["state_dict"])[0].startswith("model.encoder")
    assert {"val/loss", "val/recon", "val/kl"} <= set(read_events(out).Tags()["scalars"])


def test_test_split_evaluation(tiny_cfg):
    from cvae_lightning.training.train import train

    tiny_cfg.test = True
    tiny_cfg.trainer.max_epochs = 1
    tiny_cfg.trainer.limit_test_batches = 2
    metrics = train(tiny_cfg)
    assert metrics["test/loss"] == pytest.approx(metrics["test/recon"] + metrics["test/kl"], 1e-4)
    # and eval.py's measures of the best checkpoint, in <run>/eval
    record = json.loads((Path(tiny_cfg.paths.output) / "eval" / "metrics.json").read_text())
    assert record["checkpoint"].endswith(".ckpt") and "best" in record["checkpoint"]
    # metrics.json holds 7 significant digits of what evaluate() returned
    assert record["metrics"]["samples/gmm/fid"] == pytest.approx(metrics["eval/samples/gmm/fid"])
    assert metrics["eval/samples/gmm/fid"] > 0
    assert "eval/test/iwae5_loss" in metrics and "eval/latent/active_units" in metrics
    # One owner of test/*: trainer.test's numbers (2 batches here) stay what train() returns;
    # eval's own reading of the whole split sits under eval/test/*, as in its metrics.json.
    assert record["metrics"]["test/loss"] == pytest.approx(metrics["eval/test/loss"], rel=1e-6)
    assert metrics["eval/test/loss"] != metrics["test/loss"]


def test_hparams_tab_holds_config_and_final_metrics(trained_run):
    from conftest import read_hparams

    values, metrics = read_hparams(trained_run[2])
    assert values["model.latent"] == 8 and values["model.max_filters"] == 16
    assert values["model.optimizer.lr"] == pytest.approx(1e-3)
    assert values["data.name"] == "mnist"
    assert {"val/loss", "val/recon", "val/kl", "train/loss"} <= set(metrics)


def test_last_checkpoint_is_the_last_epoch_even_when_the_best_is_older(tiny_cfg, tmp_path):
    from cvae_lightning.training.train import train

    # "Best" = highest train loss: the first epoch, so the best checkpoint never moves again.
    tiny_cfg.callbacks.checkpoint.monitor = "train/loss"
    tiny_cfg.callbacks.checkpoint.mode = "max"
    tiny_cfg.trainer.max_epochs = 3
    train(tiny_cfg)
    ckpts = tmp_path / "run" / "checkpoints"
    last = torch.load(ckpts / "last.ckpt", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (2, 24)
    (best,) = ckpts.glob("best-*.ckpt")
    assert torch.load(best, weights_only=True)["epoch"] == 0
