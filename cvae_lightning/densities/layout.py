"""Densities in the Hub layout (inference/hub_layout.py): densities.safetensors beside
model.safetensors, every tensor under `<density>/<field>` and the rest as JSON metadata, so any
safetensors reader can load them. store.py reads and writes through here for that layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as save_tensors

from cvae_lightning.files import atomic_write, read_tensors

# The file beside model.safetensors, and the tag both of the layout's safetensors files carry.
DENSITIES, LAYOUT_FORMAT = "densities.safetensors", "cvae-lightning/1"


def write_densities(path: str | Path, blob: dict[str, Any]) -> Path:
    """The densities file's content (the densities file's blob) as safetensors: every tensor under
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
    meta = {"format": LAYOUT_FORMAT, "record": json.dumps(rest), "densities": json.dumps(plain)}
    return atomic_write(Path(path), lambda f: f.write(save_tensors(tensors, meta)))


def read_densities(path: str | Path) -> dict[str, Any]:
    """What write_densities wrote, as the densities file's blob."""
    tensors, meta = read_tensors(path)
    if meta.get("format") != LAYOUT_FORMAT:
        raise ValueError(f"{path} is not a {LAYOUT_FORMAT} densities file")
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
