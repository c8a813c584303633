"""Settings for a user's file picked from its shape (``gankit train --data FILE``): rows get an MLP sized by
their columns, sequences the recurrent recipe of configs/sines.toml sized by their features, tables (a CSV with
text, dates or missing cells, or a .parquet file) the tabular recipe of configs/wine.toml and the other built-in tables."""

from __future__ import annotations

import csv
from pathlib import Path

from .config import Config, apply_overrides
from .data.dataset import DATASETS
from .data.files import is_number
from .data.sequence_files import is_long_format


def toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def file_data_name(path: str, overrides: list[str] = ()) -> str:
    """``table`` for a .parquet file, a CSV whose cells are not all numbers (text, dates, empty cells), or any file
    with data.columns set; ``file`` (rows, sequences) otherwise, and whenever data.label_column is set."""
    data = apply_overrides(Config(), [*overrides, f"data.path={toml_string(path)}"]).data
    if data.name == "table" or data.columns or Path(path).suffix.lower() == ".parquet":
        return "table"
    if data.label_column or Path(path).suffix.lower() != ".csv" or not Path(path).is_file():
        return "file"
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
    except (UnicodeDecodeError, csv.Error):
        return "file"  # the rows loader says what is wrong with it
    if rows and is_long_format(rows[0]):
        return "file"  # id and time columns: sequences, read by the sequence loader
    body = rows[1:] if rows and not any(is_number(cell) for cell in rows[0]) else rows
    return "table" if any(not is_number(cell) for row in body for cell in row) else "file"


def defaults_for_file(path: str, overrides: list[str] = ()) -> Config:
    """Sensible settings for a user's file, from its shape: wider nets and more noise for more columns; for
    sequences (a 3-D array, an .npz, a long CSV, or a series with data.window), the recurrent recipe; for tables,
    the tabular recipe."""
    if file_data_name(path, list(overrides)) == "table":
        from .data.tables import read_table_file

        config = apply_overrides(Config(), [*table_recipe(), *overrides, "data.name=table",
                                            f"data.path={toml_string(path)}"])
        total = len(read_table_file(Path(path)))
        rows = total - round(config.data.holdout * total)
        batch = max(min(500, rows // 5 * 5), 5)  # CTGAN's 500, or the training rows' in packs of 5
        return apply_overrides(config, [f"data.batch_size={batch}"])
    data = apply_overrides(Config(), [*overrides, "data.name=file", f"data.path={toml_string(path)}"]).data
    raw = DATASETS.get("file")(data, 0)
    if raw.x.dim() == 3:
        return apply_overrides(Config(), ["data.name=file", f"data.path={toml_string(path)}",
                                          *sequence_recipe(len(raw.x), raw.x.shape[2])])
    rows, features = raw.x.shape
    width = 128 if features <= 8 else 256
    return apply_overrides(Config(), [
        "data.name=file", f"data.path={toml_string(path)}",
        f"data.batch_size={min(256, rows)}",
        f"model.z_dim={min(max(2 * features, 8), 128)}",
        f"model.g_hidden={width}", f"model.d_hidden={width}",
    ])


def sequence_recipe(n: int, features: int) -> list[str]:
    """The recurrent recipe of configs/sines.toml, its widths grown with the number of features."""
    width = 48 if features <= 8 else 96
    return [f"data.batch_size={min(128, n)}", "model.family=rnn", "model.z_dim=2", "model.z_global=16",
            f"model.g_hidden={width}", f"model.d_hidden={width}", "model.d_depth=1", "model.minibatch_std=true",
            "model.d_judge=step", "train.g_lr=2e-4", "train.d_lr=8e-4", "train.ema=0.999", "train.steps=5000"]


def table_recipe() -> list[str]:
    """The tabular recipe of the built-in tables (configs/wine.toml...: CTGAN's settings, with gankit's measured
    changes), for 3,000 steps."""
    return [f"{key}={value}" for key, value in TABLE_RECIPE]


TABLE_RECIPE = (("game.name", '"ctgan"'), ("loss.name", '"wgan-gp"'), ("data.holdout", 0.2), ("model.z_dim", 128),
                ("model.g_hidden", 256), ("model.d_hidden", 256), ("model.g_depth", 2), ("model.d_depth", 2),
                ("model.pack", 5), ("model.gumbel_tau", 0.2), ("data.batch_size", 500),
                ("train.g_lr", 5e-4), ("train.d_lr", 5e-4), ("train.g_betas", "[0.5, 0.9]"),
                ("train.d_betas", "[0.5, 0.9]"), ("train.ema", 0.99), ("train.steps", 3000))
