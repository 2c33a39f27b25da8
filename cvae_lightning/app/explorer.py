"""What the browser explorer computes, in plain torch and numpy (app/page.py serves it with
Gradio): sample grids, decoding a latent code, codes of test images and of drawings,
interpolations, and where a code lies among the test images' codes. Every picture is an
(H, W, 3) uint8 array. It works on the loaded-model object the Python API and sample.py use."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from cvae_lightning.data.decode import image_array, resized
from cvae_lightning.densities.base import STANDARD, Fitter, LatentDensity, draw_temperature
from cvae_lightning.errors import ConfigError
from cvae_lightning.images import to_array
from cvae_lightning.inference import draw
from cvae_lightning.inference.pretrained import PretrainedVAE
from cvae_lightning.inference.prior import choose
from cvae_lightning.inference.run_data import DataSource, checkpoint_split, class_index, class_names
from cvae_lightning.inference.scatter import class_scatter
from cvae_lightning.vae.latent import posteriors
from cvae_lightning.vae.model import CVAE

log = logging.getLogger(__name__)
SHOWN = 192  # decoded images are enlarged (nearest) to about this many pixels for the page


def to_picture(images: torch.Tensor, at_least: int = SHOWN) -> np.ndarray:
    """An image or grid (C, H, W) in [0, 1] -> (H, W, 3) uint8, enlarged by a whole factor."""
    pixels = to_array(images, rgb=True)
    k = max(1, at_least // max(pixels.shape[:2]))
    return pixels.repeat(k, 0).repeat(k, 1) if k > 1 else pixels


@dataclass
class Explorer:
    """A loaded model with its test images and their codes, computed once."""

    vae: PretrainedVAE
    test_x: torch.Tensor  # (N, C, S, S) uint8
    test_y: torch.Tensor
    classes: list[str]  # the data's class names ([] when unlabelled), for the 2-D view too
    codes: torch.Tensor  # (N, L) posterior means of the test images
    ranges: list[tuple[float, float]]  # per latent dimension, for the sliders
    dark_background: bool  # the data's background is dark (MNIST): drawings get inverted
    projection: tuple[torch.Tensor, torch.Tensor]  # (mean, (L, 2) axes): codes -> the 2-D view

    @classmethod
    def load(
        cls,
        ckpt_path: str | Path,
        data: DataSource,
        fitters: dict[str, Fitter],
        auto_fit: str = "gmm",
        temperature: float = 0.9,
        test_images: int = 2000,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> Explorer:
        """Everything the page needs, computed once, the model on `device`; a checkpoint that
        cannot be used is refused here (one CheckpointError/DensityFileError), before any
        server starts. Without stored densities, `auto_fit` is fitted on the run's images.
        Fitted densities draw at `temperature`, or the spread eval.py chose for the run."""
        vae = PretrainedVAE.load(ckpt_path, device=device)
        vae.temperature = vae.fitted_temperature(temperature)
        choose(vae, "auto", auto_fit, fitters, data, images=20_000, seed=seed)
        vae.densities.setdefault(STANDARD, vae.density(STANDARD))  # always offered
        model = vae.model
        test = checkpoint_split(data, vae.ckpt, train=False)
        x, y = test.images[:test_images].clone(), test.labels[:test_images].clone()
        mu, logvar = posteriors(model, x, y if model.num_classes else None)
        mu, logvar = mu.cpu(), logvar.cpu()  # the sliders, the 2-D view: host-side
        sigma = (0.5 * logvar).exp().mean(0)
        lo = torch.quantile(mu, 0.005, dim=0) - 2 * sigma
        hi = torch.quantile(mu, 0.995, dim=0) + 2 * sigma
        return cls(
            vae=vae, test_x=x, test_y=y, classes=class_names(vae.ckpt) if test.classes else [],
            codes=mu,
            ranges=[(round(float(a), 2), round(float(b), 2)) for a, b in zip(lo, hi, strict=True)],
            dark_background=x.float().mean().item() < 127.5, projection=_projection(mu),
        )  # fmt: skip

    @property
    def model(self) -> CVAE:
        return self.vae.model

    @property
    def densities(self) -> dict[str, LatentDensity]:
        return self.vae.densities

    @property
    def best(self) -> str:
        return self.vae.best

    @property
    def temperature(self) -> float:
        return self.vae.temperature

    @property
    def source(self) -> str:
        return str(self.vae.path)

    # -- labels -----------------------------------------------------------------------------

    def label_index(self, label: str | int | None) -> int | None:
        """A class name or index -> the index a conditional model decodes with (none given:
        the first class; an unconditional model: None)."""
        if not self.model.num_classes:
            return None
        label = 0 if label in (None, "") else label
        return class_index(label, self.model.num_classes, self.classes)

    @property
    def device(self) -> torch.device:
        return self.vae.device

    def _labels(self, label, n: int) -> torch.Tensor | None:
        index = self.label_index(label)
        return None if index is None else torch.full((n,), index, device=self.device)

    # -- the panels ------------------------------------------------------------------------

    def sample(self, density="auto", temperature=None, seed=0, count=16, label=None) -> np.ndarray:
        """A grid of `count` images from a density (auto: the best stored one), a class of a
        conditional model (None: one row per class)."""
        name = self.best if density in (None, "", "auto") else density
        if name not in self.densities:
            raise ConfigError(
                f"density={density} is unknown: choose auto or {list(self.densities)}"
            )
        d = self.densities[name]
        t = draw_temperature(d, temperature, self.temperature)
        index = self.label_index(label) if label not in (None, "") else None
        count = int(max(1, min(count, 256)))
        grid = draw.sample_grid(self.model, d, count, _columns(count), t, int(seed), index)
        return to_picture(grid, at_least=512)

    @torch.no_grad()
    def decode(self, z, label=None) -> np.ndarray:
        """The image a latent code decodes to (the class too, for a conditional model)."""
        z = torch.as_tensor(np.asarray(z, np.float32)).view(1, -1).to(self.device)
        return to_picture(self.model.decode(z, self._labels(label, 1))[0])

    def start(self, kind="zero", index=0, seed=0) -> list[float]:
        """A code to start from: zero, a random draw of the best density, or a test image's."""
        if kind == "zero":
            z = torch.zeros(self.model.latent)
        elif kind == "random":
            d, g = self.densities[self.best], torch.Generator().manual_seed(int(seed))
            t = draw_temperature(d, None, self.temperature)
            z = d.sample(1, self._labels(None, 1), t, g)[0]  # densities draw on the CPU
        else:
            z = self.codes[int(index) % len(self.codes)]
        return [round(float(v), 3) for v in z]

    def test_label(self, index) -> str | None:
        """The class name of a test image (None when unlabelled)."""
        return (
            self.classes[int(self.test_y[int(index) % len(self.test_y)])] if self.classes else None
        )

    def prepare(self, image: np.ndarray) -> torch.Tensor:
        """A drawing or an upload (H, W[, 1|3|4]) uint8 -> (C, S, S) in [0, 1], made like the
        training data: alpha on white, the model's channels, shorter side resized and centre
        cropped; a light drawing is inverted when the data is light-on-dark (MNIST)."""
        a = np.asarray(image, np.uint8)
        picture = Image.fromarray(a[:, :, 0] if a.ndim == 3 and a.shape[2] == 1 else a)
        a = image_array(picture, self.model.channels)  # as a file of the data would be read
        x = resized(a, self.test_x.shape[-1]).float().div(255)
        if self.dark_background and x.mean() > 0.5:
            x = 1 - x
        return x

    @torch.no_grad()
    def encode(self, image: np.ndarray, label=None) -> tuple[list[float], np.ndarray, np.ndarray]:
        """(code, the image as the model sees it, its reconstruction)."""
        x = self.prepare(image)
        y = self._labels(label, 1)
        mu, _ = self.model.posterior(x[None].to(self.device), y)
        z = [round(float(v), 3) for v in mu[0]]
        return z, to_picture(x), to_picture(self.model.decode(mu, y)[0])

    @torch.no_grad()
    def interpolate(self, a, b, steps=10) -> np.ndarray:
        """A strip from a to b through z; each end a test-image index or an image array."""
        ends = [self._as_input(e) for e in (a, b)]
        x = torch.stack([e[0] for e in ends])
        ya, yb = ends[0][1], ends[1][1]
        strip = draw.interpolate(self.model, x[0], x[1], int(max(2, min(steps, 32))), ya, yb)
        return to_picture(strip, at_least=256)

    def _as_input(self, end) -> tuple[torch.Tensor, torch.Tensor | None]:
        if isinstance(end, np.ndarray):
            index = self.label_index(None)
            return self.prepare(end), None if index is None else torch.tensor(index)
        i = int(end) % len(self.test_x)
        y = self.test_y[i] if self.model.num_classes else None
        return self.test_x[i].float().div(255), y

    def where(self, z) -> np.ndarray:
        """The test images' codes in 2-D (the code itself for latent=2, else its principal
        plane), coloured by class, with `z` marked."""
        base, to_pixels = self._scatter()
        mean, axes = self.projection
        col, row = to_pixels(((torch.as_tensor(np.asarray(z, np.float32)) - mean) @ axes).numpy())
        picture = Image.fromarray(base)
        draw = ImageDraw.Draw(picture)
        for width, colour in ((5, "white"), (2, "black")):  # a black cross with a white rim
            draw.line([(col - 8, row), (col + 8, row)], fill=colour, width=width)
            draw.line([(col, row - 8), (col, row + 8)], fill=colour, width=width)
        return np.asarray(picture)

    def _scatter(self):
        if not hasattr(self, "_base"):
            self._base = _render_scatter(self)
        return self._base


def _projection(mu: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The code itself for a 2-D latent space, else its two principal axes."""
    mean = mu.mean(0)
    if mu.shape[1] <= 2:
        return mean * 0, torch.eye(mu.shape[1], 2)
    _, _, v = torch.linalg.svd(mu - mean, full_matrices=False)
    return mean, v[:2].T


def _columns(n: int) -> int:
    return max(1, int(np.ceil(np.sqrt(n))))


def _render_scatter(e: Explorer):
    """The scatter as pixels once, and the map from 2-D points to pixels."""
    mean, axes = e.projection
    two = e.model.latent <= 2
    return class_scatter(
        ((e.codes - mean) @ axes).numpy(), e.test_y.numpy(), e.classes, inches=4, dpi=80,
        marker=4, xlabel="z[0]" if two else "1st principal axis", ylabel="z[1]" if two else "2nd",
    )  # fmt: skip
