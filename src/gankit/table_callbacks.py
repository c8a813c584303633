"""The pictures of a table run, drawn once at the end: each column real against synthetic
(``samples/columns.png``) and the two association matrices side by side (``samples/correlations.png``)."""

from __future__ import annotations

from .callbacks import Callback
from .report import COLUMNS_PICTURE, CORRELATIONS_PICTURE
from .runs import RunDir

MAX_ROWS = 5000  # enough for the histograms and associations, quick to draw


class TablePictures(Callback):
    def __init__(self, run: RunDir, seed: int = 0):
        self.run, self.seed = run, seed

    def on_train_end(self, trainer) -> None:
        if trainer.stop_reason == "diverged":
            return
        from .table_output import table_rows
        from .table_pictures import column_pictures, correlation_pictures

        data = trainer.data
        real = data.frame.iloc[:MAX_ROWS]
        fake = table_rows(trainer.sampling_G, trainer.model_info, data.table, len(real), self.seed)
        sdtypes = data.table.schema.sdtypes()
        column_pictures(real, fake, sdtypes, self.run.samples / COLUMNS_PICTURE, seed=self.seed)
        correlation_pictures(real, fake, sdtypes, self.run.samples / CORRELATIONS_PICTURE, seed=self.seed)
