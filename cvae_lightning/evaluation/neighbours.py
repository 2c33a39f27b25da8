"""Distances between sets of images in a feature space: each one's nearest neighbour (the
memorisation guard), and improved precision and recall (Kynkaanniemi et al. 2019)."""

from __future__ import annotations

import torch


def _distances(query: torch.Tensor, ref: torch.Tensor, chunk: int = 2048):
    """Yield (start, distances of query[start:start+chunk] to every row of ref)."""
    for start in range(0, len(query), chunk):
        yield start, torch.cdist(query[start : start + chunk], ref)


def nearest_distance(query: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Each query row's Euclidean distance to its nearest row of ref -> (len(query),)."""
    return torch.cat([d.min(dim=1).values for _, d in _distances(query, ref)])


def knn_radii(features: torch.Tensor, k: int) -> torch.Tensor:
    """Each row's distance to its k-th nearest other row (the row itself excluded)."""
    return torch.cat([d.kthvalue(k + 1, dim=1).values for _, d in _distances(features, features)])


def manifold_coverage(query: torch.Tensor, ref: torch.Tensor, ref_radii: torch.Tensor) -> float:
    """Share of query rows inside at least one ref row's k-NN ball."""
    inside = [(d <= ref_radii[None, :]).any(dim=1) for _, d in _distances(query, ref)]
    return torch.cat(inside).float().mean().item()


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall of a generated set (Kynkäänniemi et al. 2019) in a feature
    space: precision, the share of fake samples inside the real data's k-NN manifold (are they
    realistic?); recall, the share of real samples inside the fake one's (is all of it drawn?)."""
    return (
        manifold_coverage(fake, real, knn_radii(real, k)),
        manifold_coverage(real, fake, knn_radii(fake, k)),
    )
