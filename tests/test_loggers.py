"""Each tracker on a tiny run, read back with its own client: metrics, config, images."""

from __future__ import annotations

import csv
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from lightning_utilities.core.imports import RequirementCache
from omegaconf import open_dict

from cvae_lightning.errors import ConfigError
from cvae_lightning.training.train import build_loggers, train

from conftest import compose_config, user_error
from helpers.wandb_records import config, history, records, summary


def tracker_cfg(tmp_path, cache_dir, *overrides, logger="many"):
    store = tmp_path / "mlflow"
    mlflow = [
        f"logger.mlflow.tracking_uri=sqlite:///{store}/mlflow.db",
        f"logger.mlflow.artifact_location={store}/artifacts",
    ]
    cfg = compose_config(
        "debug=tiny", f"data.cache_dir={cache_dir}", f"logger={logger}",
        *(mlflow if logger in ("many", "mlflow") else []), *overrides,
    )  # fmt: skip
    with open_dict(cfg):
        cfg.paths.output = str(tmp_path / "run")
    cfg.trainer.enable_progress_bar = False
    return cfg


@pytest.fixture(scope="module")
def many_run(tmp_path_factory, cache_dir):
    """A tiny run logged to every tracker at once, with test=true (eval.py's results too)."""
    tmp_path = tmp_path_factory.mktemp("trackers")
    cfg = tracker_cfg(tmp_path, cache_dir, "test=true")
    return cfg, train(cfg), tmp_path / "run"


def test_logger_many_feeds_every_tracker_metrics_config_images_and_final_results(many_run):
    import mlflow

    cfg, metrics, run = many_run

    # CSV: one row per epoch with the validation loss, and eval.py's results at the end.
    rows = list(csv.DictReader((run / "csv" / "metrics.csv").open()))
    val = [float(r["val/loss"]) for r in rows if r.get("val/loss")]
    assert len(val) == cfg.trainer.max_epochs
    assert val[-1] == pytest.approx(metrics["val/loss"])
    fid = [float(r["eval/samples/gmm/fid"]) for r in rows if r.get("eval/samples/gmm/fid")]
    assert fid == [pytest.approx(metrics["eval/samples/gmm/fid"])]

    # MLflow: the run, finished, with the same curve, the config as params, the images.
    client = mlflow.MlflowClient(cfg.logger.mlflow.tracking_uri)
    (found,) = client.search_runs([client.get_experiment_by_name("cvae-lightning").experiment_id])
    assert found.info.status == "FINISHED"
    assert found.data.tags["run_dir"] == str(run) == found.info.run_name
    curve = client.get_metric_history(found.info.run_id, "val/loss")
    assert [m.value for m in curve] == pytest.approx(val)
    assert found.data.params["model.latent"] == str(cfg.model.latent)
    assert found.data.params["trainer.max_epochs"] == str(cfg.trainer.max_epochs)
    assert found.data.metrics["eval/samples/gmm/fid"] == pytest.approx(fid[0])
    (fid_logged,) = client.get_metric_history(found.info.run_id, "eval/samples/gmm/fid")
    assert found.info.end_time >= fid_logged.timestamp  # the run's time covers eval too
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"config.yaml", "eval", "images"} <= artifacts
    images = [a.path for a in client.list_artifacts(found.info.run_id, "images")]
    for tag in ("images~samples", "images~reconstructions", "images~final", "latent~traversal"):
        assert any(p.split("/")[-1].startswith(tag + "+") for p in images), tag

    # W&B, offline: the run file holds the curve, the config and the final metrics; the
    # images sit in its media folder.
    (offline,) = (run / "wandb").glob("offline-run-*")
    logged = records(next(offline.glob("run-*.wandb")))
    assert [float(r["val/loss"]) for r in history(logged) if "val/loss" in r] == pytest.approx(val)
    assert config(logged)["model.latent"] == str(cfg.model.latent)
    assert float(summary(logged)["eval/samples/gmm/fid"]) == pytest.approx(fid[0])
    assert any(r.HasField("exit") for r in logged)  # closed: `wandb sync` takes it whole
    media = {
        f"{p.parent.name}/{p.name.rsplit('_', 2)[0]}"
        for p in (offline / "files" / "media" / "images").rglob("*.png")
    }
    assert {"images/samples", "images/final", "latent/traversal"} <= media


@pytest.mark.slow
def test_mlflow_ui_shows_the_run_and_its_images(many_run, tmp_path):
    """`mlflow ui` on the run's store serves the run, its metrics and its pictures (what its
    pages read, through the same REST API)."""
    cfg, metrics, run = many_run
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ui = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "ui", "--port", str(port),
         "--backend-store-uri", cfg.logger.mlflow.tracking_uri],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "ui.log").open("w"), cwd=tmp_path,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert ui.poll() is None, (tmp_path / "ui.log").read_text()[-2000:]
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "mlflow ui did not start in 2 minutes"
            time.sleep(1)
        api = f"{base}/api/2.0/mlflow"
        experiment = httpx.get(
            f"{api}/experiments/get-by-name", params={"experiment_name": "cvae-lightning"}
        ).json()["experiment"]
        (found,) = httpx.post(
            f"{api}/runs/search", json={"experiment_ids": [experiment["experiment_id"]]}
        ).json()["runs"]
        shown = {m["key"]: m["value"] for m in found["data"]["metrics"]}
        assert shown["val/loss"] == pytest.approx(metrics["val/loss"])
        run_id = found["info"]["run_id"]
        files = httpx.get(
            f"{api}/artifacts/list", params={"run_id": run_id, "path": "images"}
        ).json()["files"]
        png = next(f["path"] for f in files if f["path"].endswith(".png"))
        image = httpx.get(f"{base}/get-artifact", params={"path": png, "run_uuid": run_id})
        assert image.status_code == 200 and image.content[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        ui.terminate()
        ui.wait(timeout=30)


def test_a_missing_tracker_package_names_the_extra(monkeypatch, capsys, tmp_path, cache_dir):
    import lightning.pytorch.loggers.mlflow as lightning_mlflow

    monkeypatch.setattr(
        lightning_mlflow, "_MLFLOW_AVAILABLE", RequirementCache("mlflow-not-installed>=1")
    )
    cfg = tracker_cfg(tmp_path, cache_dir, logger="mlflow")
    code, err = user_error(capsys, train, cfg)
    assert code == 2 and len(err) == 1
    assert "logger.mlflow needs the mlflow package" in err[0]
    assert "uv sync --extra trackers" in err[0]
    assert not (tmp_path / "run").exists()


def test_an_unreachable_tracking_server_is_one_line_at_once(tmp_path, cache_dir):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    cfg = tracker_cfg(tmp_path, cache_dir, f"logger.mlflow.tracking_uri={uri}", logger="mlflow")
    with pytest.raises(ConfigError, match=f"tracking_uri={uri} cannot be reached"):
        build_loggers(cfg)


def test_wandb_online_without_a_login_says_how_to_log_in(monkeypatch, tmp_path, cache_dir):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = tracker_cfg(tmp_path, cache_dir, "logger.wandb.offline=false", logger="wandb")
    with pytest.raises(ConfigError, match="needs a W&B login: run `uv run wandb login`"):
        build_loggers(cfg)
