"""The Hugging Face layout of a trained model: a folder with `config.json` (what the model is and
what it was trained on), `model.safetensors` (the CVAE's weights) and `densities.safetensors`
(its fitted latent densities, densities/store.py). Nothing in it is pickled: any language with
a JSON and a safetensors reader can load it. Plain PyTorch; read and written like a checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import save as save_tensors

from cvae_lightning.densities.layout import DENSITIES
from cvae_lightning.densities.layout import LAYOUT_FORMAT as FORMAT
from cvae_lightning.densities.store import save_densities
from cvae_lightning.files import atomic_write, read_tensors

CONFIG, WEIGHTS = "config.json", "model.safetensors"
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


def save_model(folder: Path, vae) -> Path:
    """A loaded model (a PretrainedVAE) in the layout: config.json, model.safetensors,
    densities.safetensors (as stored, with the best one) and a model card (README.md)."""
    state = {f"model.{k}": v.detach().cpu() for k, v in vae.model.state_dict().items()}
    ckpt = {**vae.ckpt, "state_dict": state}
    write_model(folder, ckpt, extra={"prior": vae.best, "temperature": vae.temperature})
    if vae.densities:  # what they were fitted on, kept from the file they came from
        record = {"codes": "mean", "images": None, "report": {}}
        record |= {k: v for k, v in vae.ckpt.get("densities", {}).items() if k in record}
        step = vae.ckpt.get("global_step") or 0
        save_densities(folder / DENSITIES, vae.densities, vae.model, step,
                       {**record, "best": vae.best})  # fmt: skip
    atomic_write(folder / "README.md", lambda f: f.write(model_card(vae).encode()))
    return folder


def model_card(vae) -> str:
    """The README.md of a saved model (a PretrainedVAE): what it is, how to load it."""
    hp, data = vae.ckpt["hyper_parameters"], vae.ckpt.get("datamodule_hyper_parameters", {})
    what = f"{data.get('name', 'images')} ({hp['image_size']} px, {vae.channels} channel"
    what += "s)" if vae.channels > 1 else ")"
    labelled = f"class-conditional ({len(vae.classes)} classes)" if vae.classes else "plain"
    return (
        "---\nlibrary_name: cvae-lightning\ntags:\n- vae\n- image-generation\n---\n\n"
        f"# A convolutional VAE trained on {what}\n\n"
        f"A {labelled} convolutional VAE with a latent space of {vae.latent} dimensions, "
        f"trained with cvae-lightning for {(vae.ckpt.get('epoch') or 0) + 1} epochs. "
        f"Samples come from a density fitted to its latent codes ({vae.best}, "
        f"temperature {vae.temperature:g}).\n\n"
        "```python\nfrom cvae_lightning import load_pretrained\n\n"
        'vae = load_pretrained("path/to/this/folder")  # or its Hub id, "user/name"\n'
        "images = vae.generate(16, seed=0)  # (16, C, S, S) in [0, 1]"
        "\n```\n\nFiles: `config.json` (architecture, data, training step), "
        "`model.safetensors` (weights), `densities.safetensors` (latent densities).\n"
    )
