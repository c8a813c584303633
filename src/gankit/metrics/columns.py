"""Distribution tests for 1-D and tabular data, column by column and between columns.

Per column: real and generated mean and std, the two-sample Kolmogorov-Smirnov statistic (largest
gap between the empirical CDFs) and the 1-Wasserstein distance (area between them). Summaries are
scale-free: ``ks_mean``/``ks_max`` over columns, ``w1_mean`` of each column's W1 divided by the real
column's std, and ``corr_diff``, the mean absolute difference of the off-diagonal Pearson
correlations (the joint structure the per-column tests cannot see).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """sup_t |F_a(t) - F_b(t)| of the empirical CDFs; the sup is reached at a sample point."""
    a, b = np.sort(a), np.sort(b)
    points = np.concatenate([a, b])
    fa = np.searchsorted(a, points, side="right") / len(a)
    fb = np.searchsorted(b, points, side="right") / len(b)
    return float(np.abs(fa - fb).max())


def wasserstein1(a: np.ndarray, b: np.ndarray) -> float:
    """integral |F_a(t) - F_b(t)| dt, exact for the empirical distributions (a step-function integral)."""
    a, b = np.sort(a), np.sort(b)
    points = np.sort(np.concatenate([a, b]))
    widths = np.diff(points)
    fa = np.searchsorted(a, points[:-1], side="right") / len(a)
    fb = np.searchsorted(b, points[:-1], side="right") / len(b)
    return float(np.sum(np.abs(fa - fb) * widths))


def column_scores(real: np.ndarray, fake: np.ndarray, columns: Sequence[str] = ()) -> dict:
    real = np.asarray(real, dtype=np.float64).reshape(len(real), -1)
    fake = np.asarray(fake, dtype=np.float64).reshape(len(fake), -1)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real samples have {real.shape[1]} columns, generated ones {fake.shape[1]}")
    names = list(columns) if len(columns) == real.shape[1] else [str(i) for i in range(real.shape[1])]
    per_column = {}
    for i, name in enumerate(names):
        r, f = real[:, i], fake[:, i]
        per_column[name] = {
            "real_mean": float(r.mean()), "fake_mean": float(f.mean()),
            "real_std": float(r.std(ddof=1)), "fake_std": float(f.std(ddof=1)),
            "ks": ks_statistic(r, f), "w1": wasserstein1(r, f),
        }
    ks = [c["ks"] for c in per_column.values()]
    w1 = [c["w1"] / c["real_std"] if c["real_std"] > 0 else c["w1"] for c in per_column.values()]
    out = {"ks_mean": float(np.mean(ks)), "ks_max": float(np.max(ks)), "w1_mean": float(np.mean(w1)),
           "corr_diff": correlation_difference(real, fake), "columns": per_column}
    return out


def correlation_difference(real: np.ndarray, fake: np.ndarray) -> float | None:
    """Mean |corr_real - corr_fake| over pairs of distinct columns; None for a single column."""
    d = real.shape[1]
    if d < 2:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        cr, cf = np.corrcoef(real, rowvar=False), np.corrcoef(fake, rowvar=False)
    off = ~np.eye(d, dtype=bool)
    diff = np.abs(np.nan_to_num(cr) - np.nan_to_num(cf))[off]
    return float(diff.mean())
