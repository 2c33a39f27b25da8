"""The loaded-model object: a trained CVAE with its fitted latent densities, its classes and
where it came from. sample.py, the explorer and the Python API all use it.

    from cvae_lightning import load_pretrained
    vae = load_pretrained()                 # the shipped model; or a run, a .ckpt, a saved folder
    x = vae.generate(16, seed=0)            # (16, C, S, S) in [0, 1], from the best density
    mu, logvar = vae.encode(x); x_rec = vae.decode(mu)
    vae.save_pretrained("my_vae")           # config.json + model.safetensors + densities

Plain PyTorch (no Lightning); huggingface_hub only for Hub ids and push_to_hub (hub.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cvae_lightning.densities.base import (
    FITTED_TEMPERATURE,
    STANDARD,
    LatentDensity,
    draw_temperature,
)
from cvae_lightning.densities.standard import StandardNormal
from cvae_lightning.densities.store import (
    density_path,
    eval_dir,
    stored_densities,
    swept_temperature,
)
from cvae_lightning.errors import ConfigError
from cvae_lightning.inference import draw, hub
from cvae_lightning.inference.checkpoint import inference_device, load_model, resolve_checkpoint
from cvae_lightning.inference.hub_layout import save_model
from cvae_lightning.inference.run_data import (
    class_labels,
    class_names,
)
from cvae_lightning.paths import SHIPPED
from cvae_lightning.vae.latent import posteriors
from cvae_lightning.vae.model import CVAE

log = logging.getLogger(__name__)


@dataclass
class PretrainedVAE:
    """A trained CVAE, its latent densities (N(0, I) among them) and the names of its classes."""

    model: CVAE
    densities: dict[str, LatentDensity] = field(default_factory=dict)
    best: str = STANDARD  # the density generate() draws from by default
    temperature: float = FITTED_TEMPERATURE  # what fitted densities draw at by default
    ckpt: dict[str, Any] = field(default_factory=dict, repr=False)  # hyperparameters, data
    source: str = ""  # what was loaded, as given
    path: Path | None = None  # the checkpoint file it was read from
    stored: bool = False  # whether the densities came from a file beside the checkpoint
    why: str = ""  # why `best` is the best
    swept: float | None = None  # the spread eval.py's sweep chose for fitted densities, if any

    @classmethod
    def load(
        cls, source: str | Path | None = None, *, device: str | torch.device = "auto",
        revision: str | None = None,
    ) -> PretrainedVAE:  # fmt: skip
        """`source`: None (the shipped model), a run folder, a .ckpt, a saved folder or a Hub id;
        on `device` (auto: the GPU where there is one). A checkpoint that cannot be used is one
        CheckpointError (DensityFileError for its densities file)."""
        if source is None:
            path = SHIPPED
        elif hub.is_hub_id(source):
            path = hub.download(str(source), revision)
        else:
            path = Path(source).expanduser()
        ckpt_path = resolve_checkpoint(path)
        model, ckpt = load_model(ckpt_path, inference_device(device))
        stored = stored_densities(ckpt_path, model, ckpt.get("global_step"))
        configured = ckpt.get("config", {}).get("temperature") or FITTED_TEMPERATURE
        swept = swept_temperature(eval_dir(ckpt_path) / "metrics.json")
        vae = cls(model, temperature=swept or configured, ckpt=ckpt, source=str(path),
                  path=ckpt_path, swept=swept)  # fmt: skip
        if stored is not None:
            vae.densities, vae.best, vae.why = stored.densities, stored.best, stored.why
            vae.stored, ckpt["densities"] = True, stored.record
        return vae

    # -- what it is ---------------------------------------------------------------------------

    @property
    def latent(self) -> int:
        return self.model.latent

    @property
    def image_size(self) -> int:
        return self.model.image_size

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
        return class_labels(label, n, self.model.num_classes, self.classes, self.device)

    # -- densities ----------------------------------------------------------------------------

    def density(self, prior: str = "auto") -> LatentDensity:
        """The density called `prior` (auto: the best one; standard: N(0, I))."""
        name = self.best if prior == "auto" else prior
        if name == STANDARD:
            return self.densities.get(STANDARD) or StandardNormal(
                self.latent, self.model.num_classes
            )
        if name not in self.densities:
            raise ConfigError(
                f"prior={prior} is not stored with this model: choose auto, standard or one "
                f"of {sorted(self.densities)}"
            )
        return self.densities[name]

    def fitted_temperature(self, configured: float, drawing: LatentDensity | None = None) -> float:
        """What fitted densities draw at: the spread eval.py's sweep chose for this run where
        it ran, else `configured` (density.temperature). Said in the console, unless the
        density `drawing` from is N(0, I), which the spread does not touch."""
        if self.swept is None:
            return configured
        if drawing is None or drawing.kind != STANDARD:
            log.info(f"fitted densities draw at {self.swept:g}, the spread of lowest FID in "
                     f"eval.py's sweep (temperature=... overrides it)")  # fmt: skip
        return self.swept

    # -- drawing --------------------------------------------------------------------------

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
        return draw.generate(self.model, density, n, t, g, y).clamp(0, 1)

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
        return posteriors(self.model, x, self._labels(label, len(x)))

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
        a, b = self._images(a)[0], self._images(b)[0]
        return draw.interpolation(self.model, a, b, steps, y_a, y_b).clamp(0, 1)

    # -- sharing --------------------------------------------------------------------------

    def save_pretrained(self, folder: str | Path) -> Path:
        """The Hub layout in `folder`: config.json, model.safetensors, densities.safetensors
        and a model card (README.md); each file written whole or not at all."""
        return save_model(Path(folder), self)

    def push_to_hub(self, repo_id: str, **options) -> str:
        """save_pretrained, then upload the folder to the Hugging Face Hub as `repo_id` (created
        if needed; options: private, token, commit_message); returns the commit's URL. Needs
        the `hub` extra and a login."""
        return hub.upload(self.save_pretrained, repo_id, **options)


def load_pretrained(
    source: str | Path | None = None, *, device: str | torch.device = "auto",
    revision: str | None = None,
) -> PretrainedVAE:  # fmt: skip
    """A trained model ready to draw from: `source` is None (the shipped MNIST model), a run
    folder, a .ckpt, a folder saved by save_pretrained, or a Hugging Face Hub id (user/name);
    on `device` (auto: the GPU where there is one)."""
    vae = PretrainedVAE.load(source, device=device, revision=revision)
    if not vae.stored:
        log.warning(
            f"no {density_path(vae.path)}: generate() draws from N(0, I); `uv run "
            f"tools/fit_densities.py {vae.source}` fits the densities that draw better"
        )
    return vae
