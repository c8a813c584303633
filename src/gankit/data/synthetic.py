"""Generated sets: the classic toy problems of the GAN literature, drawn from a seeded generator."""

from __future__ import annotations

import math

import torch

from ..config import DataConfig
from .dataset import DATASETS, RawData


def _mixture(modes: torch.Tensor, std: float, n: int, seed: int) -> RawData:
    g = torch.Generator().manual_seed(seed)
    which = torch.randint(len(modes), (n,), generator=g)
    x = modes[which] + std * torch.randn(n, modes.shape[1], generator=g)
    return RawData(x=x, modes=modes, mode_std=std, columns=[f"x{i}" for i in range(modes.shape[1])])


@DATASETS.register("gauss1d")
def gauss1d(config: DataConfig, seed: int) -> RawData:
    """N(0, 0.1): one Gaussian in one dimension, the first exercise of Goodfellow et al. (2014)."""
    return _mixture(torch.zeros(1, 1), config.std or 0.1, config.n, seed)


@DATASETS.register("ring8")
def ring8(config: DataConfig, seed: int) -> RawData:
    """8 Gaussians (std 0.01) evenly spaced on a circle of radius 1 (VEEGAN, Srivastava et al. 2017)."""
    angles = torch.arange(8) * (2 * math.pi / 8)
    modes = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)  # [8, 2]
    return _mixture(modes, config.std or 0.01, config.n, seed)


@DATASETS.register("grid25")
def grid25(config: DataConfig, seed: int) -> RawData:
    """25 Gaussians (std 0.05) on the grid {-4, -2, 0, 2, 4}^2 (VEEGAN; PacGAN, Lin et al. 2018)."""
    ticks = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    modes = torch.cartesian_prod(ticks, ticks)  # [25, 2]
    return _mixture(modes, config.std or 0.05, config.n, seed)
