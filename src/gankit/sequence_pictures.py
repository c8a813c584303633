"""Pictures of sequence and text runs: real against generated traces, and TimeGAN's PCA and t-SNE.

``SequenceTraces`` draws ``samples/step_XXXXXXX.png`` on the run's picture schedule (so the report,
TensorBoard and ``samples/progress.gif`` pick it up like an image grid): for each of the first few
features, a few real sequences (fixed, seeded picks) and a few generated ones (fixed noise), in the
data's units, each drawn only over its valid steps. Text runs get a table of decoded items instead,
generated beside real, and every generated item of the step in ``samples/step_XXXXXXX.txt``.

``SequenceEmbedding`` draws ``samples/embedding.png`` at the end of training (and every ``every`` steps
when asked): PCA and t-SNE of real and generated sequences, as TimeGAN's ``visualization_metrics.py``
(Yoon et al. 2019) does: up to ``n`` sequences of each, each sequence reduced to its mean over features
at every step ([N, T, F] -> [N, T]), PCA fit on the real ones, t-SNE of both together (perplexity 40,
300 iterations). Values are those the networks see (normalised per feature: for TimeGAN's min-max data the
same picture up to scale); padding steps count as zeros, as the networks see them.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .callbacks import Callback, Pictures
from .report import EMBEDDING, PROGRESS_GIF
from .runs import RunDir
from .sampling import read_frames, run_generator, save_gif

REAL_COLOR, FAKE_COLOR = "tab:blue", "tab:red"
TEXT_SHOWN, TEXT_CHARS = 32, 28  # generated items in the text table; characters shown of each


def generated_lengths(G, z: torch.Tensor, x: torch.Tensor, varies: bool) -> torch.Tensor:
    """[B] valid steps of G's sequences ``x`` [B, T, F]: T for data of one length, else ``G.lengths(z)``, or
    for a G without one, up to the last step that is not all zero (padding is zero)."""
    B, T = x.shape[:2]
    if not varies:
        return torch.full((B,), T, dtype=torch.int64)
    if callable(getattr(G, "lengths", None)):
        with torch.no_grad():
            return G.lengths(z).long().cpu().clamp(1, T)
    alive = x.abs().amax(2) > 0  # [B, T]
    return (T - alive.flip(1).float().argmax(1)).where(alive.any(1), torch.ones(B, dtype=torch.int64))


def _generate(trainer, z: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """G's sequences [B, T, F] (networks' units, CPU) and their lengths [B]."""
    G = trainer.sampling_G
    x = run_generator(G, z, y)
    device = next(iter(G.parameters()), torch.empty(0)).device
    return x, generated_lengths(G, z.to(device), x, trainer.data.lengths is not None)


def _picks(trainer, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Fixed inputs: indices of ``n`` real sequences, ``n`` noise vectors, and (conditional) the picks' labels."""
    data = trainer.data
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(data), generator=g)[:n]
    z = torch.randn(len(idx), trainer.z_dim, generator=g)
    y = data.y[idx] if getattr(trainer, "conditional", False) else None
    return idx, z, y


def _full(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    return torch.full((len(x),), x.shape[1], dtype=torch.int64) if lengths is None else lengths.long()


# ------------------------------------------------------------------------------------------------ drawing


def traces_figure(real: np.ndarray, fake: np.ndarray, real_lengths: Sequence[int] | None = None,
                  fake_lengths: Sequence[int] | None = None, columns: Sequence[str] = (), title: str = ""):
    """A matplotlib figure: one panel per feature of ``real`` and ``fake`` [n, T, F] (F <= 4 shown), every
    sequence a line over its valid steps 0..length-1 only."""
    from .plots import _pyplot

    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    real, fake = np.asarray(real), np.asarray(fake)
    T, F = real.shape[1], min(real.shape[2], 4)
    rl = [T] * len(real) if real_lengths is None else [int(v) for v in real_lengths]
    fl = [T] * len(fake) if fake_lengths is None else [int(v) for v in fake_lengths]
    cols = min(F, 2)
    rows = math.ceil(F / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 2.9 * rows + 0.5), dpi=100, squeeze=False)
    for f, ax in enumerate(axes.flat):
        if f >= F:
            ax.set_axis_off()
            continue
        for x, lengths, color, name in ((real, rl, REAL_COLOR, "real"), (fake, fl, FAKE_COLOR, "generated")):
            for i, n in enumerate(lengths):
                ax.plot(np.arange(n), x[i, :n, f], color=color, linewidth=1.2, alpha=0.75,
                        marker="." if n == 1 else None, label=f"{name} ({len(lengths)})" if i == 0 else None)
        ax.set_xlim(-0.5, T - 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(columns[f] if f < len(columns) and columns[f] else f"feature {f}", fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel("value")
        ax.grid(alpha=0.3)
        if f == 0:
            ax.legend(loc="best", fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def text_figure(fake: Sequence[str], real: Sequence[str], title: str = ""):
    """A matplotlib figure: a table of generated items (two columns) beside real ones (one column)."""
    from .plots import _pyplot

    plt = _pyplot()
    rows = max(math.ceil(len(fake) / 2), len(real), 1)
    fig = plt.figure(figsize=(9.0, 0.8 + 0.19 * (rows + 1)), dpi=100)
    height = fig.get_figheight()
    top, line = 1 - 0.55 / height, 0.19 / height

    def shown(item: str) -> str:
        item = item.replace("\t", " ")
        return "(empty)" if not item else item if len(item) <= TEXT_CHARS else item[:TEXT_CHARS - 1] + "…"

    half = math.ceil(len(fake) / 2)
    blocks = ((0.03, fake[:half], FAKE_COLOR), (0.36, fake[half:], FAKE_COLOR), (0.69, real[:rows], REAL_COLOR))
    fig.text(0.03, top, f"generated (fixed noise, {len(fake)})", color=FAKE_COLOR, weight="bold", fontsize=10)
    fig.text(0.69, top, f"real (fixed picks, {min(len(real), rows)})", color=REAL_COLOR, weight="bold", fontsize=10)
    for left, items, color in blocks:
        for r, item in enumerate(items):
            fig.text(left, top - line * (r + 1.3), shown(item), family="monospace", fontsize=9,
                     color="0.55" if not item else "0.1")
    fig.add_artist(plt.Line2D([0.665, 0.665], [0.02, top + 0.5 * line], color="0.8", linewidth=0.8))
    fig.suptitle(title, fontsize=11, y=1 - 0.12 / height, va="top")
    return fig


def embedding_points(real: np.ndarray, fake: np.ndarray, seed: int = 0, perplexity: float = 40.0,
                     iterations: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """TimeGAN's visualization: (PCA of real, PCA of fake, t-SNE of real, t-SNE of fake), each [n, 2], from
    sequences [n, T, F] reduced to their mean over features at each step; PCA is fit on the real ones."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    r, f = np.asarray(real, np.float64).mean(2), np.asarray(fake, np.float64).mean(2)  # [n, T]
    pca = PCA(n_components=2, random_state=seed).fit(r)
    both = np.concatenate([r, f])
    perplexity = min(perplexity, max(1.0, (len(both) - 1) / 3))  # t-SNE needs perplexity < points
    tsne = TSNE(n_components=2, perplexity=perplexity, max_iter=max(iterations, 250), init="pca",
                learning_rate="auto", random_state=seed).fit_transform(both)
    return pca.transform(r), pca.transform(f), tsne[:len(r)], tsne[len(r):]


def embedding_figure(points: tuple[np.ndarray, ...], title: str = ""):
    """Two scatter panels, PCA and t-SNE, of real and generated points (``embedding_points``)."""
    from .plots import _pyplot

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10.4, 4.6), dpi=100)
    for ax, (r, f), (name, note) in zip(axes, (points[:2], points[2:]), (("PCA", " (fit on real)"), ("t-SNE", ""))):
        ax.scatter(r[:, 0], r[:, 1], s=6, alpha=0.25, color=REAL_COLOR, label=f"real ({len(r)})")
        ax.scatter(f[:, 0], f[:, 1], s=6, alpha=0.25, color=FAKE_COLOR, label=f"generated ({len(f)})")
        ax.set_xlabel(f"{name} 1")
        ax.set_ylabel(f"{name} 2")
        ax.set_title(name + note, fontsize=10)
        ax.grid(alpha=0.3)
        legend = ax.legend(loc="best", fontsize=8, markerscale=2)
        for handle in legend.legend_handles:
            handle.set_alpha(0.8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def save_figure(fig, path: str | Path) -> Path:
    """Write a figure as PNG (no timestamp in it: the same picture gives the same bytes) and close it."""
    from .plots import _pyplot

    fig.savefig(path, metadata={"Software": None})
    _pyplot().close(fig)
    return Path(path)


# ---------------------------------------------------------------------------------------------- callbacks


class SequenceTraces(Pictures):
    """Real against generated traces at the run's picture steps (``samples/step_XXXXXXX.png``), and at the
    end ``samples/progress.gif`` of them; text runs: a table of decoded items and ``step_XXXXXXX.txt``.

    ``n``: sequences of each kind per panel (text: ``TEXT_SHOWN`` generated items, half as many real ones);
    ``features``: how many features get a panel (the first ones, at most 4)."""

    GIF_FRAME_MS, GIF_LAST_FRAME_MS = 400, 2000

    def __init__(self, run: RunDir, every: int, n: int = 5, features: int = 4, seed: int = 0):
        self.run, self.every, self.n, self.features, self.seed = run, every, n, min(features, 4), seed
        self.seconds: list[float] = []  # time of each picture

    def on_train_start(self, trainer) -> None:
        data = trainer.data
        self.text = data.is_text
        idx, z, y = _picks(trainer, TEXT_SHOWN if self.text else self.n, self.seed + 5)
        idx = idx[:TEXT_SHOWN // 2 if self.text else self.n]  # text: one column of real items
        real = data.x[idx]
        self.z, self.y = z, y
        self.real_lengths = _full(real, None if data.lengths is None else data.lengths[idx])
        if self.text:
            from .data.text import decode

            self.real_items = decode(real, data.vocab)
        else:
            self.real = data.to_raw(real)[:, :, :self.features].numpy()
        self.start(trainer, companions=(".txt",))

    def on_train_end(self, trainer) -> None:
        super().on_train_end(trainer)
        frames = read_frames(path for _, path in self.run.pictures())
        if len(frames) > 1:
            durations = [self.GIF_FRAME_MS] * (len(frames) - 1) + [self.GIF_LAST_FRAME_MS]
            save_gif([f.convert("RGB") for f in frames], self.run.samples / PROGRESS_GIF, durations)

    def draw(self, trainer) -> None:
        start = time.perf_counter()
        data, path = trainer.data, self.run.picture_path(trainer.step)
        x, lengths = _generate(trainer, self.z if self.text else self.z[:self.n],
                               self.y if self.text or self.y is None else self.y[:self.n])
        title = f"{data.name}, step {trainer.step}"
        if self.text:
            from .data.text import decode

            items = decode(x, data.vocab)
            path.with_suffix(".txt").write_text("".join(item + "\n" for item in items), encoding="utf-8")
            fig = text_figure(items, self.real_items, title=f"{title}: generated and real items")
        else:
            fake = data.to_raw(x)[:, :, :self.features].numpy()
            fig = traces_figure(self.real, fake, self.real_lengths.tolist(), lengths.tolist(),
                                data.columns[:self.features], title=f"{title}: real and generated traces "
                                                                    f"(data's units)")
        save_figure(fig, path)
        self.seconds.append(time.perf_counter() - start)


class SequenceEmbedding(Callback):
    """PCA and t-SNE of ``n`` real and ``n`` generated sequences (TimeGAN's figures), ``samples/embedding.png``:
    at the end of a run that did not diverge, and every ``every`` steps when ``every`` > 0."""

    def __init__(self, run: RunDir, every: int = 0, n: int = 1000, seed: int = 0, perplexity: float = 40.0,
                 iterations: int = 300):
        self.run, self.every, self.n, self.seed = run, every, n, seed
        self.perplexity, self.iterations = perplexity, iterations
        self.last_step: int | None = None
        self.seconds: list[float] = []

    def on_train_start(self, trainer) -> None:
        idx, self.z, self.y = _picks(trainer, self.n, self.seed + 6)
        self.real = trainer.data.x[idx].numpy()

    def on_step_end(self, trainer) -> None:
        if self.every > 0 and trainer.step % self.every == 0:
            self.draw(trainer)

    def on_train_end(self, trainer) -> None:
        if self.last_step != trainer.step and trainer.stop_reason != "diverged":
            self.draw(trainer)

    def draw(self, trainer) -> None:
        start = time.perf_counter()
        fake = _generate(trainer, self.z, self.y)[0].numpy()
        points = embedding_points(self.real, fake, self.seed, self.perplexity, self.iterations)
        title = f"{trainer.data.name}, step {trainer.step}: real and generated sequences (mean over features per step)"
        save_figure(embedding_figure(points, title), self.run.samples / EMBEDDING)
        self.last_step = trainer.step
        self.seconds.append(time.perf_counter() - start)
