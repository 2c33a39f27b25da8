"""Latent codes as a picture: points in 2-D coloured by class (one colour rule for the
end-of-training scatter and the explorer's view), rendered once by matplotlib to pixels."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def class_colours(k: int) -> str:
    """The colour map for k classes: distinct colours while there are few enough."""
    return "tab10" if k <= 10 else "tab20" if k <= 20 else "viridis"


def class_scatter(
    points: np.ndarray, labels: np.ndarray | None, classes: list[str], *, inches: float,
    dpi: int, marker: float, xlabel: str, ylabel: str, title: str | None = None,
    legend: str | None = None,
) -> tuple[np.ndarray, Callable[[np.ndarray], tuple[int, int]]]:  # fmt: skip
    """(the picture as (H, W, 3) uint8, a map from a 2-D point to its pixel (column, row)).
    With classes, each point takes its class's colour and a colour bar names them (up to 20)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(inches, inches), dpi=dpi)
    if classes:
        k = len(classes)
        cmap = plt.get_cmap(class_colours(k), k)
        shown = ax.scatter(points[:, 0], points[:, 1], c=labels, s=marker, cmap=cmap,
                           vmin=-0.5, vmax=k - 0.5)  # fmt: skip
        bar = fig.colorbar(shown, ax=ax, ticks=range(k) if k <= 20 else None, label=legend)
        if k <= 20:
            bar.ax.set_yticklabels(classes, fontsize=7 if inches < 5 else None)
    else:
        ax.scatter(points[:, 0], points[:, 1], s=marker, c="tab:blue")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    fig.tight_layout()
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    transform, height = ax.transData, pixels.shape[0]
    plt.close(fig)

    def to_pixels(point: np.ndarray) -> tuple[int, int]:
        x, y = transform.transform(point)
        return int(round(x)), int(round(height - y))

    return pixels, to_pixels
