"""Pictures a product adds to a run: InfoGAN's code grids.

``samples/codes-c{j}.png`` (one per continuous code j): a row per value of the first categorical code, a
column per value of c_j from -1 to 1, the noise and the other codes fixed, as in the InfoGAN paper's
figures. Redrawn with the run's other pictures; the report shows them.
"""

from __future__ import annotations

import torch

from .models.codes import code_slots
from .runs import RunDir
from .callbacks import Pictures
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
