"""Pictures of real against generated samples for 1-D and 2-D data (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_samples(real: np.ndarray, fake: np.ndarray, path: str | Path, title: str = "") -> None:
    """A histogram (1-D) or scatter plot (2-D) of real vs generated samples, written as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
