"""Metrics of sample manifolds in feature space, from k-nearest-neighbour balls.

- Precision and recall (Kynkäänniemi et al. 2019, k = 3): precision is the share of generated
  samples inside at least one real sample's ball (radius: distance to its k-th nearest real
  neighbour); recall is the share of real samples inside at least one generated sample's ball.
- Density and coverage (Naeem et al. 2020, k = 5): density counts, per generated sample, the real
  balls that contain it, divided by k and averaged (about 1 when the sets match, above 1 when the
  samples crowd dense regions); coverage is the share of real samples whose ball holds at least one
  generated sample.

All four come from three blocked passes over distances (real-real and fake-fake for the radii,
fake-real for the rest), so 10,000 x 10,000 sets need neither a full distance matrix in memory nor
one pass per metric.
"""

from __future__ import annotations

import torch
from torch import Tensor

BLOCK = 1024  # rows of a distance block


def knn_radii(x: Tensor, ks: tuple[int, ...] | int) -> dict[int, Tensor] | Tensor:
    """Distance of each row of ``x`` to its k-th nearest other row: [N] for one k, {k: [N]} for several."""
    single = isinstance(ks, int)
    ks = (ks,) if single else tuple(ks)
    x = _as_features(x)
    if len(x) <= max(ks):
        raise ValueError(f"k-nearest-neighbour radii with k = {max(ks)} need more than {max(ks)} samples, "
                         f"got {len(x)}")
    parts = [torch.cdist(block, x).topk(max(ks) + 1, dim=1, largest=False).values for block in x.split(BLOCK)]
    nearest = torch.cat(parts)  # [N, max_k + 1]; column 0 is the row itself (distance 0)
    out = {k: nearest[:, k].contiguous() for k in ks}
    return out[ks[0]] if single else out


def manifold_scores(real: Tensor, fake: Tensor, k_pr: int = 3, k_dc: int = 5,
                    real_radii: dict[int, Tensor] | None = None) -> dict[str, float]:
    """Precision, recall, density and coverage of ``fake`` against ``real`` ([N, D] and [M, D] features).

    ``real_radii`` ({k: [N]}, from ``knn_radii(real, (k_pr, k_dc))``) can be passed in when the same real
    set is scored many times, as during training.
    """
    real, fake = _as_features(real), _as_features(fake)
    real = real.to(fake.dtype) if real.dtype != fake.dtype else real
    radii = real_radii or knn_radii(real, (k_pr, k_dc))
    r_pr, r_dc = radii[k_pr].to(real.dtype), radii[k_dc].to(real.dtype)
    fake_r = knn_radii(fake, k_pr)
    inside_real = torch.zeros(len(fake), dtype=torch.bool)  # precision: fake j in some real ball (k_pr)
    real_balls = torch.zeros(len(fake), dtype=torch.long)  # density: how many real balls (k_dc) hold fake j
    covered = torch.zeros(len(real), dtype=torch.bool)  # coverage: real i's ball (k_dc) holds some fake
    recalled = torch.zeros(len(real), dtype=torch.bool)  # recall: real i in some fake ball (k_pr)
    for start in range(0, len(fake), BLOCK):
        d = torch.cdist(fake[start:start + BLOCK], real)  # [b, N]
        rows = slice(start, start + len(d))
        inside_real[rows] = (d <= r_pr).any(1)
        real_balls[rows] = (d <= r_dc).sum(1)
        covered |= (d <= r_dc).any(0)
        recalled |= (d <= fake_r[rows, None]).any(0)
    return {
        "precision": float(inside_real.double().mean()),
        "recall": float(recalled.double().mean()),
        "density": float(real_balls.double().sum() / (k_dc * len(fake))),
        "coverage": float(covered.double().mean()),
    }


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> tuple[float, float]:
    s = manifold_scores(real, fake, k_pr=k, k_dc=k)
    return s["precision"], s["recall"]


def density_coverage(real: Tensor, fake: Tensor, k: int = 5) -> tuple[float, float]:
    s = manifold_scores(real, fake, k_pr=k, k_dc=k)
    return s["density"], s["coverage"]


def _as_features(x) -> Tensor:
    x = torch.as_tensor(x)
    x = x.reshape(len(x), -1)
    return x if x.dtype in (torch.float32, torch.float64) else x.float()
