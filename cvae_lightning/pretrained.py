"""The Python API: a trained model with its fitted latent densities, loaded in one line.

    from cvae_lightning import load_pretrained
    vae = load_pretrained()                 # the shipped model; or a run, a .ckpt, a saved folder
    x = vae.generate(16, seed=0)            # (16, C, S, S) in [0, 1], from the best density
    mu, logvar = vae.encode(x); x_rec = vae.decode(mu)
    vae.save_pretrained("my_vae")           # config.json + model.safetensors + densities

Plain PyTorch (no Lightning); huggingface_hub only for Hub ids and push_to_hub.
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from cvae_lightning import explore
from cvae_lightning.densities import LatentDensity, draw_temperature
from cvae_lightning.density_store import (
    density_path,
    save_densities,
    stored_densities,
)
from cvae_lightning.errors import CheckpointError, ConfigError
from cvae_lightning.files import atomic_write
from cvae_lightning.hub_layout import DENSITIES, write_model
from cvae_lightning.loading import (
    class_index,
    class_names,
    inference_device,
    load_model,
    resolve_checkpoint,
)
from cvae_lightning.model import CVAE
from cvae_lightning.runs import PROJECT_ROOT

SHIPPED = PROJECT_ROOT / "weights" / "mnist_cvae"
STANDARD = "standard"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
log = logging.getLogger(__name__)


def fitted_temperature() -> float:
    """The temperature fitted densities draw at by default (conf/density's, the lowest FID)."""
    return float(OmegaConf.load(PROJECT_ROOT / "conf" / "density" / "default.yaml").temperature)


@dataclass
class PretrainedVAE:
    """A trained CVAE, its fitted latent densities and the names of its classes."""

    model: CVAE
    densities: dict[str, LatentDensity] = field(default_factory=dict)
    best: str = STANDARD  # the density generate() draws from by default
    temperature: float = 0.9  # what fitted densities draw at by default
    ckpt: dict[str, Any] = field(default_factory=dict, repr=False)  # hyperparameters, data
    source: str = ""

    # -- what it is ---------------------------------------------------------------------------

    @property
    def latent(self) -> int:
        return self.model.latent

    @property
    def image_size(self) -> int:
        return int(self.ckpt["hyper_parameters"]["image_size"])

    @property
    def channels(self) -> int:
        return self.model.channels

    @property
    def classes(self) -> list[str]:
        """The class names of a conditional model ([] otherwise): what `label=` accepts."""
        return class_names(self.ckpt)[: self.model.num_classes] if self.model.num_classes else []

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> PretrainedVAE:
        self.model.to(device)
        return self

    def _labels(self, label, n: int) -> torch.Tensor | None:
        """label: a class name or index, or one per image (a list or tensor) -> indices."""
        if not self.model.num_classes:
            if label is not None:
                raise ConfigError("label=... needs a conditional model; this one is not")
            return None
        if label is None:
            raise ConfigError(f"this model is conditional: pass label= (one of {self.classes})")
        if isinstance(label, torch.Tensor) and label.dim() == 1:
            return label.long().to(self.device)
        if isinstance(label, list | tuple):
            indices = [class_index(x, self.model.num_classes, self.classes) for x in label]
            return torch.tensor(indices, device=self.device)
        index = class_index(label, self.model.num_classes, self.classes)
        return torch.full((n,), index, device=self.device)

    # -- drawing --------------------------------------------------------------------------

    def density(self, prior: str = "auto") -> LatentDensity | None:
        """The density called `prior` (auto: the best one; standard: N(0, I), None here)."""
        name = self.best if prior == "auto" else prior
        if name == STANDARD:  # drawn as sample.py draws it: the model's own N(0, I)
            return None
        if name not in self.densities:
            raise ConfigError(
                f"prior={prior} is not stored with this model: choose auto, standard or one "
                f"of {sorted(self.densities)}"
            )
        return self.densities[name]

    @torch.no_grad()
    def generate(
        self,
        n: int = 16,
        *,
        seed: int | None = None,
        prior: str = "auto",
        temperature: float | None = None,
        label=None,
    ) -> torch.Tensor:
        """n new images (n, C, S, S) in [0, 1]: z from `prior` (auto: the best fitted density;
        standard: N(0, I); gaussian, gmm, flow), its spread scaled by `temperature` (None: the
        fitted default, 1 for N(0, I)); `label` picks the class of a conditional model."""
        density = self.density(prior)
        t = draw_temperature(density, temperature, self.temperature)
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        y = self._labels(label, n)
        return explore.generate(self.model, n, t, g, y, density).clamp(0, 1)

    def _images(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(x)
        if x.dim() == 3:
            x = x[None]
        expected = (self.channels, self.image_size, self.image_size)
        if tuple(x.shape[1:]) != expected:
            raise ConfigError(
                f"images of shape {tuple(x.shape)} do not fit this model: it takes (N, "
                f"{', '.join(map(str, expected))}), floats in [0, 1] or uint8"
            )
        return x.to(self.device)

    @torch.no_grad()
    def encode(self, x: torch.Tensor, label=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z|x) for images (N, C, S, S) (floats in [0, 1] or uint8)."""
        x = self._images(x)
        return explore.posteriors(self.model, x, self._labels(label, len(x)))

    @torch.no_grad()
    def decode(self, z: torch.Tensor, label=None) -> torch.Tensor:
        """Images (N, C, S, S) in [0, 1] of latent codes z (N, latent)."""
        self.model.eval()
        z = torch.as_tensor(z, dtype=torch.float32).to(self.device)
        return self.model.decode(z, self._labels(label, len(z))).clamp(0, 1)

    def reconstruct(self, x: torch.Tensor, label=None) -> torch.Tensor:
        """Images decoded from the posterior means of x: what the model keeps of them."""
        return self.decode(self.encode(x, label)[0], label)

    @torch.no_grad()
    def interpolate(
        self, a: torch.Tensor, b: torch.Tensor, steps: int = 10, label=None
    ) -> torch.Tensor:
        """`steps` images (steps, C, S, S) from image a to image b along the line between their
        posterior means."""
        ends = self._labels(label, 2)  # a conditional model: the same class at both ends
        y_a, y_b = (None, None) if ends is None else ends
        strip = explore.interpolation(self.model, self._images(a)[0], self._images(b)[0], steps,
                                      y_a, y_b)  # fmt: skip
        return strip.clamp(0, 1)

    # -- sharing --------------------------------------------------------------------------

    def save_pretrained(self, folder: str | Path) -> Path:
        """The Hub layout in `folder`: config.json, model.safetensors, densities.safetensors
        and a model card (README.md); each file written whole or not at all."""
        folder = Path(folder)
        state = {f"model.{k}": v.detach().cpu() for k, v in self.model.state_dict().items()}
        ckpt = {**self.ckpt, "state_dict": state}
        write_model(folder, ckpt, extra={"prior": self.best, "temperature": self.temperature})
        if self.densities:  # what they were fitted on, kept from the file they came from
            record = {"codes": "mean", "images": None, "report": {}}
            record |= {k: v for k, v in self.ckpt.get("densities", {}).items() if k in record}
            step = self.ckpt.get("global_step") or 0
            save_densities(
                folder / DENSITIES, self.densities, self.model, step, {**record, "best": self.best}
            )
        atomic_write(folder / "README.md", lambda f: f.write(self.model_card().encode()))
        return folder

    def model_card(self) -> str:
        hp, data = self.ckpt["hyper_parameters"], self.ckpt.get("datamodule_hyper_parameters", {})
        what = f"{data.get('name', 'images')} ({hp['image_size']} px, {self.channels} channel"
        what += "s)" if self.channels > 1 else ")"
        labelled = f"class-conditional ({len(self.classes)} classes)" if self.classes else "plain"
        return (
            "---\nlibrary_name: cvae-lightning\ntags:\n- vae\n- image-generation\n---\n\n"
            f"# A convolutional VAE trained on {what}\n\n"
            f"A {labelled} convolutional VAE with a latent space of {self.latent} dimensions, "
            f"trained with cvae-lightning for {(self.ckpt.get('epoch') or 0) + 1} epochs. "
            f"Samples come from a density fitted to its latent codes ({self.best}, "
            f"temperature {self.temperature:g}).\n\n"
            "```python\nfrom cvae_lightning import load_pretrained\n\n"
            'vae = load_pretrained("path/to/this/folder")  # or its Hub id, "user/name"\n'
            "images = vae.generate(16, seed=0)  # (16, C, S, S) in [0, 1]"
            "\n```\n\nFiles: `config.json` (architecture, data, training step), "
            "`model.safetensors` (weights), `densities.safetensors` (latent densities).\n"
        )

    def push_to_hub(
        self, repo_id: str, *, private: bool | None = None, token: str | None = None,
        commit_message: str = "Upload cvae-lightning model",
    ) -> str:  # fmt: skip
        """save_pretrained, then upload the folder to the Hugging Face Hub as `repo_id`
        (created if needed); returns the commit's URL. Needs the `hub` extra and a login."""
        api = hub_api(token)
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            api.create_repo(repo_id, private=private, exist_ok=True)
            info = api.upload_folder(
                repo_id=repo_id, folder_path=tmp, commit_message=commit_message
            )
        return str(getattr(info, "commit_url", info))


def hub_api(token: str | None = None):
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise ConfigError(
            "the Hugging Face Hub needs the huggingface_hub package: add the 'hub' extra "
            "(`uv sync --extra hub`)"
        ) from None
    return HfApi(token=token)


def download(repo_id: str, revision: str | None = None) -> Path:
    """A Hub model's folder in the local Hugging Face cache (downloaded if not there yet;
    with HF_HUB_OFFLINE=1 only the cache is read)."""
    hub_api()  # the extra's check
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, revision=revision))
    except Exception as e:  # no network, no such repo, no access: the same fix for the user
        raise CheckpointError(
            f"{repo_id} cannot be loaded from the Hugging Face Hub ({type(e).__name__}): check "
            "the id, your network and access (`uv run huggingface-cli login`), or pass a local "
            "folder"
        ) from None


def load_pretrained(
    source: str | Path | None = None, *, device: str | torch.device = "auto",
    revision: str | None = None,
) -> PretrainedVAE:  # fmt: skip
    """A trained model ready to draw from: `source` is None (the shipped MNIST model), a run
    folder, a .ckpt, a folder saved by save_pretrained, or a Hugging Face Hub id (user/name);
    on `device` (auto: the GPU where there is one)."""
    if source is None:
        path = SHIPPED
    elif Path(source).expanduser().exists() or not HUB_ID.match(str(source)):
        path = Path(source).expanduser()
    else:
        path = download(str(source), revision)
    ckpt_path = resolve_checkpoint(path)
    model, ckpt = load_model(ckpt_path)
    densities, best = {}, STANDARD
    stored = stored_densities(ckpt_path, model, ckpt.get("global_step"))
    if stored is not None:
        densities, best, ckpt["densities"] = stored.densities, stored.best, stored.record
    else:
        log.warning(
            f"no {density_path(ckpt_path)}: generate() draws from N(0, I); `uv run "
            f"tools/fit_densities.py {path}` fits the densities that draw better"
        )
    temperature = ckpt.get("config", {}).get("temperature") or fitted_temperature()
    vae = PretrainedVAE(model, densities, best, temperature, ckpt, str(path))
    return vae.to(inference_device(device))
