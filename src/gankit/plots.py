"""Matplotlib pictures, written as PNG with no display needed: real against generated samples for
1-D and 2-D data, and training curves for the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_samples(real: np.ndarray, fake: np.ndarray, path: str | Path, title: str = "") -> None:
    """A histogram (1-D) or scatter plot (2-D) of real vs generated samples, written as PNG."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5) if real.shape[1] == 2 else (6, 4), dpi=100)
    if real.shape[1] == 1:
        lo, hi = np.percentile(np.concatenate([real[:, 0], fake[:, 0]]), [0.5, 99.5])
        bins = np.linspace(lo, hi, 60)
        ax.hist(real[:, 0], bins=bins, density=True, alpha=0.5, color="0.4", label="real")
        ax.hist(fake[:, 0], bins=bins, density=True, alpha=0.5, color="tab:red", label="generated")
        ax.set_xlabel("x")
        ax.set_ylabel("density")
    else:
        ax.scatter(real[:, 0], real[:, 1], s=3, alpha=0.4, color="0.4", label="real")
        ax.scatter(fake[:, 0], fake[:, 1], s=3, alpha=0.4, color="tab:red", label="generated")
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xlabel("x0")
        ax.set_ylabel("x1")
    ax.legend(loc="upper right", markerscale=3)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_curves(steps: list[int], panels: list[dict[str, Any]], path: str | Path) -> None:
    """Side-by-side panels of lines over ``steps``, written as PNG.

    Each panel is a dict: ``series`` (name -> one value per step), and optionally ``title``, ``ylabel``,
    ``ylim`` and ``reference`` (a dashed horizontal line, e.g. D's output 1/2 at the GAN equilibrium).
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.3), dpi=100, squeeze=False)
    marker = "o" if len(steps) <= 20 else None  # a few points stay visible as points
    for ax, panel in zip(axes[0], panels):
        for name, values in panel["series"].items():
            ax.plot(steps, values, marker=marker, markersize=3, linewidth=1.2, label=name)
        if panel.get("reference") is not None:
            ax.axhline(panel["reference"], color="0.5", linestyle="--", linewidth=0.8)
        if panel.get("ylim") is not None:
            ax.set_ylim(*panel["ylim"])
        ax.set_xlabel("step")
        ax.set_ylabel(panel.get("ylabel", ""))
        ax.set_title(panel.get("title", ""))
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
