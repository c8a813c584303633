"""Settings for a user's file picked from its shape (``gankit train --data FILE``): rows get an MLP sized by
their columns, sequences the recurrent recipe of configs/sines.toml sized by their features."""

from __future__ import annotations

from .config import Config, apply_overrides
from .data.dataset import DATASETS


def toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def defaults_for_file(path: str, overrides: list[str] = ()) -> Config:
    """Sensible settings for a user's file, from its shape: wider nets and more noise for more columns; for
    sequences (a 3-D array, an .npz, a long CSV, or a series with data.window), the recurrent recipe."""
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
