"""Pictures of a semi-supervised run (game.name = "ssgan").

- Over training (images): ``samples/step_XXXXXXX.png``, G's samples from a fixed noise batch, each with the class
  the classifier (D's moving average, noise off) gives it and that class's probability; and the progress GIF, as
  ``callbacks.ImageGrids`` draws them. ``samples/caption.txt`` says what they show, for the report.
- At the end (images and rows, when the data has a labelled test set): ``samples/confusion.png``, the classifier's
  confusion matrix on the test split (counts; a row per true class, a column per predicted class; the accuracy in
  the title), with its caption ``samples/confusion.caption.txt``, which the report shows.

The engine's ``sampling_G`` is the classifier for this product, so G is taken from ``trainer.players["G"]``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .anomaly_pictures import CAPTION_SUFFIX
from .callbacks import ImageGrids
from .report import CAPTION
from .sampling import _font, fixed_batch, picture_range, run_generator, to_image, to_pixels
from .semisup_classify import probabilities_of
from .semisup_eval import classification_scores

CONFUSION = "confusion.png"  # in samples/
SIDE = 8  # samples per row and per column of a grid
CELL = 84  # pixels a sample is enlarged to, at most (by a whole factor: 28-pixel images 3x, 8-pixel 10x)


def labelled_grid(pixels: np.ndarray, labels: list[str], nrow: int = SIDE) -> Image.Image:
    """uint8 pixels [N, H, W, C] in rows of ``nrow``, enlarged by a whole factor to at most CELL pixels
    (nearest neighbour), each with its label (one or two lines) under it."""
    n, h, w, _ = pixels.shape
    scale = max(1, CELL // max(h, w))
    font = _font(size=11)
    pad, text_h = 4, 28
    cell_w, cell_h = max(w * scale, 60) + pad, h * scale + text_h + pad
    rows = -(-n // nrow)
    picture = Image.new("RGB", (pad + nrow * cell_w, pad + rows * cell_h), "white")
    draw = ImageDraw.Draw(picture)
    for i, (image, label) in enumerate(zip(pixels, labels)):
        x0, y0 = pad + (i % nrow) * cell_w, pad + (i // nrow) * cell_h
        picture.paste(to_image(image).resize((w * scale, h * scale), Image.NEAREST).convert("RGB"), (x0, y0))
        draw.multiline_text((x0, y0 + h * scale + 1), label, fill="black", font=font, spacing=1)
    return picture


def plot_confusion(matrix: np.ndarray, class_names: list[str], path, title: str) -> None:
    """The confusion matrix [true][predicted] as a heat map of counts (each row shaded by its share of the true
    class, so classes of different sizes read alike), the count written in each cell."""
    from .plots import _pyplot

    plt = _pyplot()
    k = len(class_names)
    shares = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    side = min(max(3.2, 0.42 * k + 1.8), 12.0)
    fig, ax = plt.subplots(figsize=(side + 0.8, side), dpi=100)
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            if matrix[i, j] or k <= 12:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8 if k <= 12 else 6,
                        color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), [_short(name) for name in class_names], rotation=45 if k > 4 else 0, ha="right"
                  if k > 4 else "center", fontsize=8)
    ax.set_yticks(range(k), [_short(name) for name in class_names], fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _short(name: str, limit: int = 14) -> str:
    return name if len(name) <= limit else name[:limit - 1] + "…"


class SemisupPictures(ImageGrids):
    """ImageGrids' schedule and progress GIF with G's samples labelled by the classifier (images); the test set's
    confusion matrix when training stops (images and rows)."""

    def on_train_start(self, trainer) -> None:
        data = trainer.data
        self.images = data.is_image and data.shape[0] in (1, 3)
        self.run.samples.mkdir(parents=True, exist_ok=True)
        if not self.images:
            return
        z_dim = trainer.product.settings["z_dim"]
        self.z = fixed_batch(z_dim, 0, seed=self.seed + 2)[0][:SIDE * SIDE].to(trainer.device)  # [64, z_dim]
        self.value_range = picture_range(data)
        (self.run.samples / CAPTION).write_text(
            f"At step {{step}}: {len(self.z)} samples of G from the same fixed noise as every picture of this run, "
            f"each with the class the classifier ({self.which(trainer)}) gives it and that class's probability.\n",
            encoding="utf-8")
        self.start(trainer)

    def draw(self, trainer) -> None:
        if not self.images:
            return
        x = run_generator(trainer.players["G"], self.z)  # [64, C, H, W] in the networks' units
        probabilities = probabilities_of(trainer.product.module(trainer), x)  # [64, K]
        names = trainer.product.class_names
        labels = [f"{_short(names[k], 11)}\n{p[k]:.2f}" for p, k in zip(probabilities, probabilities.argmax(1))]
        labelled_grid(to_pixels(x, self.value_range), labels).save(self.run.picture_path(trainer.step))

    def on_train_end(self, trainer) -> None:
        super().on_train_end(trainer)  # the last grid and the progress GIF (images)
        semi = trainer.data.semisup
        if trainer.stop_reason == "diverged" or trainer.step == 0 or semi.test_x is None:
            return
        probabilities = probabilities_of(trainer.product.module(trainer), semi.test_x)
        if not np.isfinite(probabilities).all():
            trainer.warn("semisup-confusion", f"the classifier gives non-finite probabilities at step "
                                              f"{trainer.step}: no confusion matrix; train again with lower "
                                              f"learning rates")
            return
        self.confusion(trainer, semi, classification_scores(semi.test_y.numpy(), probabilities, semi.class_names))

    def confusion(self, trainer, semi, scores: dict) -> None:
        matrix = np.array(scores["confusion"]["matrix"])
        n = int(matrix.sum())
        plot_confusion(matrix, semi.class_names, self.run.samples / CONFUSION,
                       f"test accuracy {scores['accuracy']:.1%} ({int(np.trace(matrix))} of {n}), macro F1 "
                       f"{scores['macro_f1']:.3f}; step {trainer.step}")
        text = (f"The classifier ({self.which(trainer)}) on the {n} labelled test samples, never trained on, at step "
                f"{trainer.step}: a row per true class, a column per predicted class, the count in each cell (shaded "
                f"by its share of the true class); the diagonal counts the right answers. Accuracy "
                f"{scores['accuracy']:.1%}, macro F1 {scores['macro_f1']:.3f}, from {len(semi.labelled_y)} labelled "
                f"training samples.")
        (self.run.samples / CONFUSION).with_suffix(CAPTION_SUFFIX).write_text(text + "\n", encoding="utf-8")

    @staticmethod
    def which(trainer) -> str:
        return "the moving average of D" if "D" in trainer.emas else "D"

