"""Pictures of an anomaly run, and its threshold at the end of training.

- Over training (images): ``samples/step_XXXXXXX.png``, fixed held-out normal inputs (left) and anomalous test
  inputs (right, one class after another) beside their reconstructions, each row with its score; and the
  progress GIF, as ``callbacks.ImageGrids`` draws them.
- At the end: ``samples/anomaly_extremes.png`` (images with a labelled test set), the 8 highest- and the 8
  lowest-scoring test inputs beside their reconstructions; ``samples/anomaly_scores.png`` (rows and images), the
  histograms of the normal and anomalous test scores (the held-out normal ones as an outline) with the
  threshold. Each has its caption beside it (``NAME.caption.txt``), which the report shows.
- At the end: ``RUN/threshold.json`` (``anomaly_scores.threshold_record``) from the held-out normal data at the
  checkpoint just written, so a finished run scores without computing it again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from torch import Tensor

from .anomaly_eval import ranking_scores
from .anomaly_scores import scores_of, threshold_record, write_threshold
from .callbacks import ImageGrids
from .report import CAPTION
from .sampling import _font, picture_range, to_image, to_pixels

ROWS = 8  # inputs per column of a picture
EXTREMES, HISTOGRAMS = "anomaly_extremes.png", "anomaly_scores.png"  # in samples/
CAPTION_SUFFIX = ".caption.txt"  # samples/NAME.caption.txt: the caption of samples/NAME.png


@dataclass
class Block:
    """A titled pair of columns: inputs and their reconstructions ([n, C, H, W], networks' units), a label a row."""
    title: str
    inputs: Tensor
    reconstructions: Tensor
    labels: list[str]


def pair_grid(blocks: list[Block], value_range: tuple[float, float], scale: int = 1) -> Image.Image:
    """Blocks side by side, each a header (title; input | reconstruction) over rows of input, reconstruction and
    the row's label; images enlarged ``scale`` times by nearest neighbour."""
    blocks = [b for b in blocks if len(b.inputs)]
    h, w = (side * scale for side in blocks[0].inputs.shape[-2:])
    font = _font(size=13)
    pad, header, label_w = 4, 36, 170
    block_w = 2 * (w + pad) + label_w
    rows = max(len(b.inputs) for b in blocks)
    picture = Image.new("RGB", (pad + len(blocks) * block_w, header + rows * (h + pad) + pad), "white")
    draw = ImageDraw.Draw(picture)
    for j, block in enumerate(blocks):
        x0 = pad + j * block_w
        draw.text((x0, 2), block.title, fill="black", font=font)
        draw.text((x0, 19), "input", fill=(80, 80, 80), font=font)
        draw.text((x0 + w + pad, 19), "reconstruction", fill=(80, 80, 80), font=font)
        for col, batch in enumerate((block.inputs, block.reconstructions)):
            for i, pixels in enumerate(to_pixels(batch, value_range)):  # [H, W, C] uint8
                image = to_image(pixels).resize((w, h), Image.NEAREST).convert("RGB")
                picture.paste(image, (x0 + col * (w + pad), header + i * (h + pad)))
        for i, label in enumerate(block.labels):
            draw.multiline_text((x0 + 2 * (w + pad) + 4, header + i * (h + pad) + max(0, h // 2 - 15)), label,
                                fill="black", font=font, spacing=2)
    return picture


def one_per_class(classes: np.ndarray, anomalous: np.ndarray, n: int) -> np.ndarray:
    """Indices of ``n`` anomalous samples, taking each anomalous class in turn (its first samples first)."""
    per_class = [np.flatnonzero(anomalous & (classes == k)) for k in np.unique(classes[anomalous])]
    picked = [members[i] for i in range(n) for members in per_class if i < len(members)]
    return np.array(picked[:n], dtype=np.int64)


def plot_histograms(normal: np.ndarray, anomalous: np.ndarray, held: np.ndarray, threshold: float | None,
                    path, title: str) -> None:
    """Score histograms (each set's share per bin) of the normal (blue) and anomalous (red) test samples, the held-out
    normal ones as a black outline, and the threshold as a dashed line; scores past the 99.5th percentile are counted
    in the last bin. Positive scores spread over more than two decades (heavy tails) get a logarithmic axis."""
    from .plots import _pyplot

    plt = _pyplot()
    every = np.concatenate([normal, anomalous, held, [] if threshold is None else [threshold]])
    lo, hi = every.min(), max(np.percentile(every, 99.5), threshold if threshold is not None else -np.inf)
    log = lo > 0 and hi / lo > 100
    bins = np.geomspace(lo, hi, 50) if log else np.linspace(lo, hi if hi > lo else lo + 1, 50)
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=100)
    if log:
        ax.set_xscale("log")
    for values, colour, label in ((normal, "tab:blue", "normal (test)"), (anomalous, "tab:red", "anomalous (test)")):
        if len(values):
            ax.hist(np.clip(values, bins[0], bins[-1]), bins=bins, weights=shares(values), alpha=0.45, color=colour,
                    label=f"{label}, {len(values)}")
    if len(held):
        ax.hist(np.clip(held, bins[0], bins[-1]), bins=bins, weights=shares(held), histtype="step", color="black",
                linewidth=1.0, label=f"normal (held out), {len(held)}")
    if threshold is not None:
        ax.axvline(threshold, color="0.2", linestyle="--", linewidth=1.2, label=f"threshold {threshold:.4g}")
    ax.set_xlabel("anomaly score (higher = more anomalous)")
    ax.set_ylabel("share of the samples")
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def shares(values: np.ndarray) -> np.ndarray:
    """Histogram weights that make each set's bars add up to 1, so sets of any size compare."""
    return np.full(len(values), 1.0 / len(values))


class AnomalyPictures(ImageGrids):
    """ImageGrids' schedule and progress GIF with held-out and test inputs beside their reconstructions (images);
    the end pictures and the threshold when training stops (rows and images)."""

    def on_train_start(self, trainer) -> None:
        data, a = trainer.data, trainer.data.anomaly
        self.images = data.is_image and data.shape[0] in (1, 3)
        self.value_range = picture_range(data) if self.images else None
        self.scale = max(1, 84 // max(data.shape[-2:])) if self.images else 1  # 28-pixel images shown 3x
        self.held = a.held[:ROWS]
        self.test, self.test_labels = None, []
        if a.test_x is not None:
            picked = one_per_class(a.test_classes.numpy(), a.test_y.numpy() == 1, ROWS)
            self.test = a.test_x[picked]
            self.test_labels = [a.class_names[k] for k in a.test_classes.numpy()[picked]]
        self.run.samples.mkdir(parents=True, exist_ok=True)
        if not self.images:
            return
        what = {"ganomaly": "G_D(G_E(x))"}.get(trainer.product.settings.get("game"), "G(E(x))")
        shown = ("held-out normal inputs, never trained on (left), and anomalous test inputs (right)"
                 if self.test is not None else "held-out normal inputs, never trained on")
        (self.run.samples / CAPTION).write_text(
            f"At step {{step}}: {shown}, beside their reconstructions {what}, each with its anomaly score (higher = "
            f"more anomalous). A scorer that works reconstructs normal inputs and fails on anomalous ones.\n",
            encoding="utf-8")
        self.start(trainer)

    def draw(self, trainer) -> None:
        if not self.images:
            return
        scorer = trainer.product.module(trainer)
        blocks = []
        for title, x, names in (("held-out normal", self.held, None), ("anomalous test", self.test, self.test_labels)):
            if x is not None and len(x):
                scores, recs = scores_of(scorer, x)
                labels = [(f"anomalous: {names[i]}\n" if names else "") + f"score {s:.4g}"
                          for i, s in enumerate(scores)]
                blocks.append(Block(title, x, recs, labels))
        if blocks:
            pair_grid(blocks, self.value_range, self.scale).save(self.run.picture_path(trainer.step))

    def on_train_end(self, trainer) -> None:
        super().on_train_end(trainer)  # the last grid and the progress GIF
        if trainer.stop_reason == "diverged" or trainer.step == 0:
            return
        a, scorer = trainer.data.anomaly, trainer.product.module(trainer)
        held = scores_of(scorer, a.held)[0]
        scores, recs = scores_of(scorer, a.test_x) if a.test_x is not None else (np.zeros(0), None)
        if not (np.isfinite(held).all() and np.isfinite(scores).all()):
            trainer.warn("anomaly-scores", f"the scorer gives non-finite scores at step {trainer.step}: no threshold "
                                           f"and no score pictures; train again with lower learning rates")
            return
        record = None
        if len(held):
            record = threshold_record(held, trainer.product.fpr, trainer.step)
            if trainer.last_checkpoint_step == trainer.step:  # the threshold of the weights just saved
                write_threshold(self.run, record)
        if a.test_x is None:
            if len(held):
                self.histograms(np.zeros(0), np.zeros(0), held, record, None)
            return
        y, classes = a.test_y.numpy(), a.test_classes.numpy()
        self.histograms(scores[y == 0], scores[y == 1], held, record, ranking_scores(y, scores))
        if self.images:
            self.extremes(a, scores, recs, y, classes)

    def histograms(self, normal, anomalous, held, record, ranking) -> None:
        t = None if record is None else record["threshold"]
        title = "" if ranking is None else f"AUROC {ranking['auroc']:.3f}, AUPRC {ranking['auprc']:.3f}"
        plot_histograms(normal, anomalous, held, t, self.run.samples / HISTOGRAMS, title)
        text = ("Anomaly scores of the labelled test set, never trained on: normal samples (blue) and anomalous ones "
                "(red), with the held-out normal samples the threshold is set on (black outline)"
                if ranking is not None else "Anomaly scores of the normal samples held out of training")
        if record is not None:
            text += (f"; the dashed line is the threshold {t:.4g}, which flags {record['held_fpr']:.1%} of the "
                     f"{record['held']} held-out normal samples (game.fpr = {record['fpr']:g})")
        self.caption(HISTOGRAMS, text + ". Less overlap means a better detector.")

    def extremes(self, a, scores: np.ndarray, recs: Tensor, y: np.ndarray, classes: np.ndarray) -> None:
        highest, lowest = np.argsort(-scores, kind="stable")[:ROWS], np.argsort(scores, kind="stable")[:ROWS]
        blocks = []
        for title, picked in (("highest scores", highest), ("lowest scores", lowest)):
            labels = [f"{'anomalous' if y[i] else 'normal'}: {a.class_names[classes[i]]}\nscore {scores[i]:.4g}"
                      for i in picked]
            blocks.append(Block(title, a.test_x[picked], recs[picked], labels))
        pair_grid(blocks, self.value_range, self.scale).save(self.run.samples / EXTREMES)
        self.caption(EXTREMES, f"The {ROWS} test inputs the scorer finds most anomalous (left) and most normal "
                               f"(right), out of {len(scores)}, beside their reconstructions, with their class "
                               f"(normal: {a.normal}) and score.")

    def caption(self, picture: str, text: str) -> None:
        (self.run.samples / picture).with_suffix(CAPTION_SUFFIX).write_text(text + "\n", encoding="utf-8")
