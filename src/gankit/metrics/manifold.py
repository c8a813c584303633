"""Metrics of sample manifolds in feature space, from k-nearest-neighbour balls.

- Precision and recall (Kynkäänniemi et al. 2019, k = 3): precision is the share of generated
  samples inside at least one real sample's ball (radius: distance to its k-th nearest real
  neighbour); recall is the share of real samples inside at least one generated sample's ball.
- Density and coverage (Naeem et al. 2020, k = 5): density counts, per generated sample, the real
  balls that contain it, divided by k and averaged (about 1 when the sets match, above 1 when the
  samples crowd dense regions); coverage is the share of real samples whose ball holds at least one
  generated sample.

Distances are computed in row blocks, so 10,000 x 10,000 sets fit in memory.
"""

from __future__ import annotations

import torch
from torch import Tensor

BLOCK = 1024  # rows of a distance block


def knn_radii(x: Tensor, k: int) -> Tensor:
    """[N] distance of each row of ``x`` to its k-th nearest other row."""
    if len(x) <= k:
        raise ValueError(f"k-nearest-neighbour radii with k = {k} need more than {k} samples, got {len(x)}")
    out = []
    for block in x.split(BLOCK):
        d = torch.cdist(block, x)
        out.append(d.kthvalue(k + 1, dim=1).values)  # the smallest is the row itself (0)
    return torch.cat(out)


def _ball_counts(points: Tensor, centres: Tensor, radii: Tensor) -> Tensor:
    """[len(points)] how many balls (centres, radii) hold each point."""
    out = []
    for block in points.split(BLOCK):
        out.append((torch.cdist(block, centres) <= radii).sum(1))
    return torch.cat(out)


def _nearest(points: Tensor, centres: Tensor) -> Tensor:
    """[len(points)] distance of each point to its nearest centre."""
    return torch.cat([torch.cdist(block, centres).min(1).values for block in points.split(BLOCK)])


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> tuple[float, float]:
    real, fake = _as_features(real), _as_features(fake)
    precision = (_ball_counts(fake, real, knn_radii(real, k)) > 0).double().mean()
    recall = (_ball_counts(real, fake, knn_radii(fake, k)) > 0).double().mean()
    return float(precision), float(recall)


def density_coverage(real: Tensor, fake: Tensor, k: int = 5) -> tuple[float, float]:
    real, fake = _as_features(real), _as_features(fake)
    radii = knn_radii(real, k)
    density = _ball_counts(fake, real, radii).double().sum() / (k * len(fake))
    coverage = (_nearest(real, fake) <= radii).double().mean()
    return float(density), float(coverage)


def _as_features(x) -> Tensor:
    x = torch.as_tensor(x)
    return x.reshape(len(x), -1).float() if x.dtype != torch.float64 else x.reshape(len(x), -1)
