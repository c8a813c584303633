"""Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017, "FID").

    d^2 = |mu_1 - mu_2|^2 + tr(S_1 + S_2 - 2 (S_1^1/2 S_2 S_1^1/2)^1/2)

It is FID when the features are InceptionV3's pool features; with other features (a small
classifier's, the values themselves) it is the same statistic on a different space, as TF-GAN's
"MNIST Fréchet distance". Statistics are accumulated in float64 from any batching, so the value does
not depend on the batch size used to extract features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass
class GaussianStats:
    """Mean [D] and covariance [D, D] (unbiased, as numpy's ``np.cov``) of a feature set, float64."""

    mean: np.ndarray
    cov: np.ndarray
    n: int


def gaussian_stats(features: Tensor | np.ndarray) -> GaussianStats:
    x = torch.as_tensor(features).double().reshape(len(features), -1)
    if len(x) < 2:
        raise ValueError(f"the Fréchet distance needs at least 2 samples, got {len(x)}")
    mean = x.mean(0)
    centred = x - mean
    cov = centred.T @ centred / (len(x) - 1)
    return GaussianStats(mean.numpy(), cov.numpy(), len(x))


def frechet_distance(a: GaussianStats, b: GaussianStats) -> float:
    """The squared Fréchet distance between N(a.mean, a.cov) and N(b.mean, b.cov).

    The trace of the matrix square root is taken from the eigenvalues of the symmetric PSD matrix
    S_a^1/2 S_b S_a^1/2, which has the same spectrum as S_a S_b: no complex parts to discard, no
    failure on singular covariances (fewer samples than features).
    """
    root_a = _psd_sqrt(a.cov)
    middle = root_a @ b.cov @ root_a
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_root = np.sqrt(np.clip(eig, 0, None)).sum()
    diff = a.mean - b.mean
    # a distance: rounding can leave -1e-15 for identical sets
    return max(float(diff @ diff + np.trace(a.cov) + np.trace(b.cov) - 2 * trace_root), 0.0)


def _psd_sqrt(m: np.ndarray) -> np.ndarray:
    eig, vec = np.linalg.eigh((m + m.T) / 2)
    return (vec * np.sqrt(np.clip(eig, 0, None))) @ vec.T
