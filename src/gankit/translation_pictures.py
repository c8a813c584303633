"""Pictures of an image-to-image run: rows of input | bicubic (super-resolution) | output | target, from a fixed
held-out set, at step 0, every ``every`` steps and at the end (``samples/step_XXXXXXX.png``, and the progress
GIF); a CycleGAN run shows input | G(input) | F(G(input)), its reconstruction, since there is no target."""

from __future__ import annotations

import torch
from PIL import Image, ImageDraw
from torch import Tensor

from .callbacks import ImageGrids
from .report import CAPTION

ROWS = 8  # held-out examples per picture


def columns_of(task: str) -> tuple[str, ...]:
    if task == "sr":
        return ("input", "bicubic", "output", "target")
    if task == "unpaired":
        return ("input", "output", "reconstruction")
    return ("input", "output", "target")


def translation_grid(columns: dict[str, Tensor], scale: int = 1) -> Image.Image:
    """Pixels in [0, 1], one [n, C, H_k, W_k] batch per column -> a picture of n rows with a header; every column
    is shown at the size of the largest (inputs enlarged by nearest neighbour, so their pixels show)."""
    side = max(t.shape[-1] for t in columns.values()) * scale
    height = max(t.shape[-2] for t in columns.values()) * scale
    n = len(next(iter(columns.values())))
    pad, header = 2, 14
    picture = Image.new("RGB", (len(columns) * (side + pad) + pad, header + n * (height + pad) + pad), "white")
    draw = ImageDraw.Draw(picture)
    for j, (name, batch) in enumerate(columns.items()):
        x0 = pad + j * (side + pad)
        draw.text((x0 + 2, 1), name, fill="black")
        big = torch.nn.functional.interpolate(batch.float(), size=(height, side), mode="nearest")
        big = big.expand(-1, 3, -1, -1) if big.shape[1] == 1 else big
        for i in range(n):
            array = (big[i].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
            picture.paste(Image.fromarray(array), (x0, header + pad + i * (height + pad)))
    return picture


class TranslationGrids(ImageGrids):
    """ImageGrids' schedule and progress GIF, with a fixed batch of held-out inputs instead of noise."""

    def on_train_start(self, trainer) -> None:
        t = trainer.data.translation
        self.task, self.factor = t.task, t.factor
        self.source, self.target = t.held_source[:ROWS], t.held_target[:ROWS]
        side = max(self.target.shape[-1], self.source.shape[-1] * self.factor)
        self.scale = max(1, 96 // side)  # 28-pixel images shown 3x
        self.reverse = trainer.players.get("F")
        self.run.samples.mkdir(parents=True, exist_ok=True)
        what = {"sr": "low-resolution input, bicubic upsampling, G's output, the high-resolution target",
                "unpaired": "input, its translation G(input), and the cycle back F(G(input))",
                "paired": "input, G's output, the target"}[self.task]
        (self.run.samples / CAPTION).write_text(f"Held-out examples, never trained on, at step {{step}}: {what}.\n",
                                                encoding="utf-8")
        self.start(trainer)

    def draw(self, trainer) -> None:
        from .metrics.translation import bicubic_upsample
        from .translate import translate

        G = trainer.sampling_G
        was_training = G.training
        G.eval()
        try:
            out = translate(G, self.source)
            columns = {"input": self.source}
            if self.task == "sr":
                columns["bicubic"] = bicubic_upsample(self.source, self.factor)
            columns["output"] = out
            if self.task == "unpaired":
                F = trainer.emas.get("F", self.reverse)
                f_training = F.training
                F.eval()
                columns["reconstruction"] = translate(F, out)
                F.train(f_training)
            else:
                columns["target"] = self.target
        finally:
            G.train(was_training)
        translation_grid(columns, self.scale).save(self.run.picture_path(trainer.step))
