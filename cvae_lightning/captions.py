"""Words on pictures, so a grid says what it shows: a label beside each row (the latent
dimension a traversal sweeps, the class a conditional row draws) and titles above side-by-side
halves (which density drew which). Plain PIL; grids are (C, H, W) floats in [0, 1]."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

FONT_SIZE = 11


def _font() -> ImageFont.ImageFont:
    return ImageFont.load_default(size=FONT_SIZE)


def _to_pil(grid: torch.Tensor) -> Image.Image:
    x = grid.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu()
    x = x.expand(3, -1, -1) if x.shape[0] == 1 else x
    return Image.fromarray(x.permute(1, 2, 0).numpy())


def _to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1).float() / 255


def label_rows(grid: torch.Tensor, labels: list[str], padding: int = 2) -> torch.Tensor:
    """The grid with a white margin on the left naming each of its rows (make_grid's layout:
    `padding` pixels around square cells)."""
    image, font = _to_pil(grid), _font()
    rows = len(labels)
    pitch = (image.height - padding) / rows
    width = 8 + max(int(ImageDraw.Draw(image).textlength(t, font=font)) for t in labels)
    out = Image.new("RGB", (width + image.width, image.height), "white")
    out.paste(image, (width, 0))
    draw = ImageDraw.Draw(out)
    for r, text in enumerate(labels):
        y = padding + r * pitch + (pitch - padding) / 2
        draw.text((width - 4, y), text, fill="black", font=font, anchor="rm")
    return _to_tensor(out)


def title_parts(image: torch.Tensor, titles: list[tuple[int, int, str]]) -> torch.Tensor:
    """The picture with a white band on top holding each (x_from, x_to, title) centred over
    its part."""
    picture, font = _to_pil(image), _font()
    band = FONT_SIZE + 8
    out = Image.new("RGB", (picture.width, picture.height + band), "white")
    out.paste(picture, (0, band))
    draw = ImageDraw.Draw(out)
    for x0, x1, text in titles:
        draw.text(((x0 + x1) / 2, band / 2), text, fill="black", font=font, anchor="mm")
    return _to_tensor(out)
