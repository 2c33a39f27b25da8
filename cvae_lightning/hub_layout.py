"""The Hugging Face layout of a trained model: a folder with `config.json` (what the model is and
what it was trained on), `model.safetensors` (the CVAE's weights) and `densities.safetensors`
(its fitted latent densities). Nothing in it is pickled: any language with a JSON and a
safetensors reader can load it. Plain PyTorch; read and written like a checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as save_tensors

from cvae_lightning.files import atomic_write

FORMAT = "cvae-lightning/1"
CONFIG, WEIGHTS, DENSITIES = "config.json", "model.safetensors", "densities.safetensors"
# Data settings that name places on the machine that trained the model: not shared.
MACHINE_PATHS = ("root", "path", "cache_dir")


def is_layout(folder: Path) -> bool:
    return (folder / CONFIG).is_file() and (folder / WEIGHTS).is_file()


def write_model(folder: str | Path, ckpt: dict[str, Any], extra: dict | None = None) -> Path:
    """config.json and model.safetensors of a checkpoint dict (our weights_only checkpoints or
    what read_model returns), each written atomically; `extra` joins config.json."""
    folder = Path(folder)
    weights = {
        k.removeprefix("model."): v.contiguous()
        for k, v in ckpt["state_dict"].items()
        if k.startswith("model.")
    }
    data = {
        k: v for k, v in ckpt.get("datamodule_hyper_parameters", {}).items()
        if k not in MACHINE_PATHS
    }  # fmt: skip
    config = {
        "format": FORMAT,
        "model": dict(ckpt["hyper_parameters"]),
        "data": data,
        "global_step": ckpt.get("global_step"),
        "epoch": ckpt.get("epoch"),
        **(extra or {}),
    }
    atomic_write(folder / WEIGHTS, lambda f: f.write(save_tensors(weights, {"format": FORMAT})))
    atomic_write(folder / CONFIG, lambda f: f.write(json.dumps(config, indent=1).encode()))
    return folder


def read_config(folder: Path) -> dict[str, Any]:
    config = json.loads((folder / CONFIG).read_text())
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"{folder / CONFIG} is not a {FORMAT} config")
    return config


def read_model(weights_file: str | Path) -> dict[str, Any]:
    """A folder's model.safetensors with its config.json, as the checkpoint dict the rest of
    the project reads (state_dict, hyper_parameters, datamodule_hyper_parameters, ...)."""
    weights_file = Path(weights_file)
    config = read_config(weights_file.parent)
    tensors, _ = read_tensors(weights_file)
    return {
        "state_dict": {f"model.{k}": v for k, v in tensors.items()},
        "hyper_parameters": config["model"],
        "datamodule_hyper_parameters": config.get("data", {}),
        "global_step": config.get("global_step"),
        "epoch": config.get("epoch"),
        "config": config,
    }


def read_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A safetensors file's tensors (on the CPU) and its metadata."""
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}  # noqa: SIM118


def write_densities(path: str | Path, blob: dict[str, Any]) -> Path:
    """The densities file's content (density_store's blob) as safetensors: every tensor under
    `<density>/<field>` (a flow's weights under `<density>/weights/<name>`), the rest as JSON in
    the file's metadata."""
    tensors, plain = {}, {}
    for name, state in blob["densities"].items():
        plain[name] = {}
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{name}/{key}"] = value.contiguous()
            elif isinstance(value, dict):  # a flow's state_dict
                for param, t in value.items():
                    tensors[f"{name}/{key}/{param}"] = t.contiguous()
                plain[name][key] = {"tensors": sorted(value)}
            else:
                plain[name][key] = value
    rest = {k: v for k, v in blob.items() if k != "densities"}
    meta = {"format": FORMAT, "record": json.dumps(rest), "densities": json.dumps(plain)}
    return atomic_write(Path(path), lambda f: f.write(save_tensors(tensors, meta)))


def read_densities(path: str | Path) -> dict[str, Any]:
    """What write_densities wrote, as density_store's blob."""
    tensors, meta = read_tensors(path)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} densities file")
    densities = {}
    for name, plain in json.loads(meta["densities"]).items():
        state = {}
        for key, value in plain.items():
            if isinstance(value, dict) and "tensors" in value:
                state[key] = {p: tensors[f"{name}/{key}/{p}"] for p in value["tensors"]}
            else:
                state[key] = value
        prefix = f"{name}/"
        for key, t in tensors.items():
            field = key.removeprefix(prefix)
            if key.startswith(prefix) and "/" not in field:
                state[field] = t
        densities[name] = state
    return {**json.loads(meta["record"]), "densities": densities}
