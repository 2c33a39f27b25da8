"""Words on pictures, so a grid says what it shows: a label beside each row (the latent
dimension a traversal sweeps, the class a conditional row draws) and titles above side-by-side
halves (which density drew which). Plain PIL; grids are (C, H, W) floats in [0, 1]."""

from __future__ import annotations

import torch
from PIL import Image, ImageDraw, ImageFont

from cvae_lightning.images import from_pil, to_pil

FONT_SIZE = 11


def _font() -> ImageFont.ImageFont:
    return ImageFont.load_default(size=FONT_SIZE)


def label_rows(grid: torch.Tensor, labels: list[str], padding: int = 2) -> torch.Tensor:
    """The grid with a white margin on the left naming each of its rows (make_grid's layout:
    `padding` pixels around square cells)."""
    image, font = to_pil(grid), _font()
    rows = len(labels)
    pitch = (image.height - padding) / rows
    width = 8 + max(int(ImageDraw.Draw(image).textlength(t, font=font)) for t in labels)
    out = Image.new("RGB", (width + image.width, image.height), "white")
    out.paste(image, (width, 0))
    draw = ImageDraw.Draw(out)
    for r, text in enumerate(labels):
        y = padding + r * pitch + (pitch - padding) / 2
        draw.text((width - 4, y), text, fill="black", font=font, anchor="rm")
    return from_pil(out)


def title_parts(image: torch.Tensor, titles: list[tuple[int, int, str]]) -> torch.Tensor:
    """The picture with a white band on top holding each (x_from, x_to, title) centred over
    its part."""
    picture, font = to_pil(image), _font()
    band = FONT_SIZE + 8
    out = Image.new("RGB", (picture.width, picture.height + band), "white")
    out.paste(picture, (0, band))
    draw = ImageDraw.Draw(out)
    for x0, x1, text in titles:
        draw.text(((x0 + x1) / 2, band / 2), text, fill="black", font=font, anchor="mm")
    return from_pil(out)
