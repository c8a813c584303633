"""Mode coverage for data whose modes are known: mixture centres (``ring8``, ``grid25``) or classes.

For mixtures (as in VEEGAN, Srivastava et al. 2017, and PacGAN, Lin et al. 2018): a sample is high
quality when it lies within 3 standard deviations of its nearest mode; a mode is covered when it is
the nearest mode of at least one high-quality sample; ``mode_kl`` is KL(p || q) of the high-quality
samples' histogram p over the modes from the data's (uniform) q. For classes, a classifier's
predictions play the part of the nearest mode.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

EPS = 1e-10  # probability given to an empty bin, so that the KL divergence stays finite


def histogram_kl(counts: np.ndarray, reference: np.ndarray | None = None) -> float | None:
    """KL(p || q) = sum_i p_i log(p_i / q_i) of the histogram ``counts`` from ``reference`` (default uniform).

    Empty bins get p_i = EPS (a term of ~0). None when the histogram is empty.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.sum() <= 0:
        return None
    q = np.full(len(counts), 1 / len(counts)) if reference is None else np.asarray(reference, dtype=np.float64)
    p = np.where(counts > 0, counts / counts.sum(), EPS)
    return float(np.sum(p * np.log(p / np.maximum(q, EPS))))


def mode_scores(samples: Tensor | np.ndarray, modes: Tensor | np.ndarray, mode_std: float,
                n_std: float = 3.0) -> dict:
    """Scores of samples [N, F] of a mixture with centres ``modes`` [M, F] and per-mode spread ``mode_std``."""
    x = torch.as_tensor(samples, dtype=torch.float64).reshape(len(samples), -1)
    centres = torch.as_tensor(modes, dtype=torch.float64)
    dist, nearest = torch.cat([torch.cdist(b, centres) for b in x.split(4096)]).min(1)
    high = dist <= n_std * mode_std
    counts = torch.bincount(nearest[high], minlength=len(centres)).numpy()
    return {
        "modes_covered": int((counts > 0).sum()),
        "modes_total": len(centres),
        "high_quality": float(high.double().mean()),
        "mode_kl": histogram_kl(counts),
    }


def class_scores(predicted: Tensor | np.ndarray, num_classes: int, data_frequencies: Tensor | np.ndarray | None = None,
                 requested: Tensor | np.ndarray | None = None) -> dict:
    """Classes as modes: ``predicted`` [N] class indices a classifier gives the samples.

    ``classes_covered`` counts the classes predicted for at least one sample; ``class_kl`` is the KL
    divergence of the predicted-class histogram from the data's class frequencies; for a conditional
    model, ``class_accuracy`` is the share of samples recognised as the class they were asked for.
    """
    predicted = torch.as_tensor(predicted).long()
    counts = torch.bincount(predicted, minlength=num_classes).numpy()
    reference = None if data_frequencies is None else torch.as_tensor(data_frequencies).double().numpy()
    out = {
        "classes_covered": int((counts > 0).sum()),
        "classes_total": num_classes,
        "class_kl": histogram_kl(counts, reference),
    }
    if requested is not None:
        out["class_accuracy"] = float((predicted == torch.as_tensor(requested).long()).double().mean())
    return out
