"""The pictures of a run (``picture_callbacks``: which ones its data gets), and InfoGAN's code grids.

``samples/codes-c{j}.png`` (one per continuous code j): a row per value of the first categorical code, a
column per value of c_j from -1 to 1, the noise and the other codes fixed, as in the InfoGAN paper's
figures. Redrawn with the run's other pictures; the report shows them.
"""

from __future__ import annotations

from typing import Any

import torch

from .data import Dataset

from .models.codes import code_slots
from .runs import RunDir
from .callbacks import ImageGrids, Pictures, SamplePlotter
from .sequence_pictures import SequenceEmbedding, SequenceTraces
from .sampling import image_grid, picture_range, run_generator, to_pixels

COLUMNS = 8  # values of the continuous code along each row


class CodeGrids(Pictures):
    def __init__(self, run: RunDir, every: int, codes: dict, seed: int = 0):
        self.run, self.every, self.codes, self.seed = run, every, codes, seed

    def on_train_start(self, trainer) -> None:
        self.value_range = picture_range(trainer.data)

    def grid(self, G, device, j: int):
        """The grid of continuous code ``j``: [rows = categories of code 0 (or 1 row), COLUMNS values of c_j]."""
        cats, cont = self.codes["categorical"], self.codes["continuous"]
        rows = list(range(cats[0])) if cats else [0]
        noise = torch.randn(1, self.codes["noise"], generator=torch.Generator().manual_seed(self.seed + 3))
        slots = []
        for r in rows:
            for v in torch.linspace(-1, 1, COLUMNS).tolist():
                values = [r if i == 0 else 0 for i in range(len(cats))] + [v if k == j else 0.0 for k in range(cont)]
                slots.append(code_slots(cats, cont, values, 1))
        z = torch.cat([noise.expand(len(slots), -1), torch.cat(slots)], dim=1).to(device)
        pixels = to_pixels(run_generator(G, z), self.value_range)
        return image_grid(pixels, nrow=COLUMNS, row_labels=[f"c0={r}" for r in rows] if cats else ())

    def draw(self, trainer) -> None:
        for j in range(self.codes["continuous"]):
            self.grid(trainer.sampling_G, trainer.device, j).save(self.run.samples / f"codes-c{j}.png")


def picture_callbacks(run: RunDir, data: Dataset, every: int, seed: int, codes: dict | None = None) -> list[Any]:
    """Image grids for grey or RGB images (and InfoGAN's code grids), real-vs-generated plots for 1-D/2-D rows,
    else none."""
    if data.is_table:  # columns and associations, real against synthetic, at the end (given the typed rows)
        from .table_callbacks import TablePictures

        return [TablePictures(run, seed=seed)] if data.frame is not None else []
    if data.is_anomaly:  # inputs beside reconstructions; score histograms and the threshold at the end
        from .anomaly_pictures import AnomalyPictures

        return [AnomalyPictures(run, every, seed=seed)]
    if data.is_semisup:  # G's samples; the test set's confusion matrix at the end
        from .semisup_pictures import SemisupPictures

        return [SemisupPictures(run, every, seed=seed)]
    if data.is_translation:  # rows of input | (bicubic) | output | target from the held-out images
        from .translation_pictures import TranslationGrids

        return [TranslationGrids(run, every, seed=seed)]
    if data.is_sequence:  # traces (text: a table of items); PCA and t-SNE at the end, not for text
        return [SequenceTraces(run, every, seed=seed), *([] if data.is_text else [SequenceEmbedding(run, seed=seed)])]
    if data.is_image and data.shape[0] in (1, 3):
        return [ImageGrids(run, every, seed=seed), *([CodeGrids(run, every, codes, seed)] if codes else [])]
    if not data.is_image and data.num_features <= 2:
        return [SamplePlotter(run, every, seed=seed)]
    return []
