"""Shared fixtures: the real Hydra config, composed and shrunk to run in seconds on a CPU."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from cvae_lightning.cli.runs import register_resolvers
from cvae_lightning.paths import PROJECT_ROOT

register_resolvers()

CONF = str(PROJECT_ROOT / "conf")

# Tiny but real (conf/debug/tiny.yaml): 16px images, 16 filters, 2 epochs of 8 batches.
TINY = ["debug=tiny"]


def compose_config(*overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("train", overrides=list(overrides))


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One resized-data cache for the whole session, outside the project."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def tiny_cfg(tmp_path, cache_dir) -> DictConfig:
    """The tiny config as train() sees it: data.channels resolved, the classes adopted."""
    from cvae_lightning.training.train import adopt_data

    cfg = compose_config(*TINY, f"data.cache_dir={cache_dir}")
    adopt_data(cfg)
    with open_dict(cfg):
        cfg.paths.output = str(tmp_path / "run")
    cfg.trainer.enable_progress_bar = False
    return cfg


def load_run(run):
    """(the plain CVAE, the checkpoint) of a run folder, a .ckpt or a saved folder."""
    from cvae_lightning.inference.checkpoint import load_model, resolve_checkpoint

    return load_model(resolve_checkpoint(run))


def user_error(capsys, fn, *args) -> tuple[int, list[str]]:
    """Run an entry function as its script does, in-process: (exit code, stderr lines). The
    scripts' own exit codes are checked once per script, as subprocesses, in test_cli.py."""
    from cvae_lightning.cli.main import exit_on_user_error

    with pytest.raises(SystemExit) as e:
        exit_on_user_error(fn, *args)
    return e.value.code, capsys.readouterr().err.strip().splitlines()


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write `array` (uint8) as a gzipped idx file, the format of MNIST's originals."""
    magic = 0x0800 | array.ndim
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_mnist(tmp_path) -> Path:
    """A fake MNIST root: 300 train and 100 test 28x28 images whose brightness encodes the index."""
    raw = tmp_path / "tiny" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n in (("train", 300), ("t10k", 100)):
        images = np.zeros((n, 28, 28), dtype=np.uint8)
        images[:, 10:18, 10:18] = (np.arange(n) % 250 + 1)[:, None, None]
        write_idx(raw / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(raw / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return tmp_path / "tiny"


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, cache_dir):
    """One tiny training run shared by the tests that inspect what a run writes."""
    from cvae_lightning.training.train import train

    out = tmp_path_factory.mktemp("trained")
    cfg = compose_config(*TINY, "trainer.max_epochs=3", f"data.cache_dir={cache_dir}")
    with open_dict(cfg):
        cfg.paths.output = str(out)
    cfg.trainer.enable_progress_bar = False
    metrics = train(cfg)
    return cfg, metrics, out


def read_events(run_dir: Path):
    """The TensorBoard event data of a run, as TensorBoard itself reads it."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


def read_hparams(run_dir: Path) -> tuple[dict, list[str]]:
    """(hparam values, metric tags) from the HParams-plugin records of a run's event files."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import plugin_data_pb2

    values, metrics = {}, []
    for path in sorted((run_dir / "tensorboard").glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for v in event.summary.value:
                if v.metadata.plugin_data.plugin_name != "hparams":
                    continue
                data = plugin_data_pb2.HParamsPluginData.FromString(v.metadata.plugin_data.content)
                if data.HasField("session_start_info"):
                    for key, value in data.session_start_info.hparams.items():
                        values[key] = getattr(value, value.WhichOneof("kind"))
                if data.HasField("experiment"):
                    metrics += [m.name.tag for m in data.experiment.metric_infos]
    return values, metrics


def swept_shipped_copy(dest: Path, temperature: float) -> Path:
    """A copy of the shipped model whose eval.py sweep chose `temperature` (its fitted
    densities' default spread from then on)."""
    import json
    import shutil

    shutil.copytree(PROJECT_ROOT / "weights" / "mnist_cvae", dest)
    record = json.loads((dest / "eval" / "metrics.json").read_text())
    record["metrics"]["sweep/temperature"] = temperature
    (dest / "eval" / "metrics.json").write_text(json.dumps(record))
    return dest


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    import torch

    for item in items:
        if "slow" in item.keywords and not config.getoption("--runslow"):
            item.add_marker(pytest.mark.skip(reason="slow: run with --runslow"))
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))


def read_images(root, name: str, train: bool, size: int, cache_dir=None, verify: bool = True):
    """(images uint8 (N, C, S, S), labels) of a built-in dataset's split, through the cache."""
    from cvae_lightning.data import load_split, make_source

    split = load_split(make_source(name, root, verify=verify), train, size, "auto", cache_dir)
    return split.images, split.labels


def write_png(path: Path, value: int, size=(12, 10), colour=None) -> Path:
    """A small PNG whose brightness (or colour) tells which image it is."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.full((size[1], size[0], 3), colour if colour else (value, value, value), np.uint8)
    Image.fromarray(a).convert("RGB" if colour else "L").save(path)
    return path


def class_folder(root: Path, classes=("cat", "dog"), per_class: int = 10, colour=False) -> Path:
    """root/<class>/<i>.png: per_class images per class, each a flat shade (colour: tinted)."""
    for c, name in enumerate(classes):
        for i in range(per_class):
            shade = 20 + 10 * i + c
            tint = (shade, 40 * c, 255 - shade) if colour else None
            write_png(root / name / f"img{c}{i:03d}.png", shade, colour=tint)
    return root


@pytest.fixture(scope="session")
def colour_run(tmp_path_factory):
    """A tiny run on a folder of tinted images in three class folders."""
    base = tmp_path_factory.mktemp("colour")
    folder = class_folder(
        base / "imgs", classes=("red", "green", "blue"), per_class=60, colour=True
    )
    cfg = compose_config(
        *TINY, "data=folder", f"data.path={folder}", f"data.cache_dir={base / 'cache'}",
        "data.image_size=16", "data.limit=null", "model.conditional=true", "data.batch_size=16",
        "trainer.max_epochs=15",
    )  # fmt: skip
    cfg.paths.output = str(base / "run")
    cfg.trainer.enable_progress_bar = False
    from cvae_lightning.training.train import train

    metrics = train(cfg)
    return base, folder, metrics
