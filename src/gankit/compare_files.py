"""``gankit compare`` (``gankit.compare``): metrics of two sets of samples on disk, with no run folder.

The samples are .npy/.csv files (rows, or .npy images) or image folders, read as the training loaders read them;
images are scaled to [0, 1]. A CSV of mixed columns or a .parquet is a table and gets the table scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import GankitError


def compare(real: str | Path, fake: str | Path, features: str = "auto", metrics: str = "auto",
            seed: int = 0, inception_weights: str = "", target: str = "") -> dict[str, Any]:
    """Metrics of the samples in ``fake`` against those in ``real``, with no run: .npy/.csv files (rows, or
    .npy images [N, H, W] / [N, C, H, W]) or image folders. Images are scaled to [0, 1] (from 0..255). Tables
    (a CSV of mixed columns, a .parquet) get the table scores (``target``: for machine-learning efficacy)."""
    from .metrics import compare as compare_sets
    from .file_recipes import file_data_name

    if Path(real).is_file() and file_data_name(str(real)) == "table":  # a CSV of mixed columns, or a .parquet
        from .table_eval import compare_tables

        return compare_tables(real, fake, target, seed)
    x_real, x_fake = read_samples(real, "--real"), read_samples(fake, "--fake")
    if x_real.shape[1:] != x_fake.shape[1:]:
        raise GankitError(f"--real {real} holds samples of shape {list(x_real.shape[1:])}, --fake {fake} of shape "
                          f"{list(x_fake.shape[1:])}; expected the same")
    result = compare_sets(x_real, x_fake, features, metrics, seed=seed, weights=inception_weights)
    result["how"].update(real=str(real), fake=str(fake))
    return result


def read_samples(path: str | Path, flag: str) -> torch.Tensor:
    """Samples from a .npy/.csv file (rows, or .npy images) or an image folder; images in [0, 1]."""
    from .config import DataConfig
    from .data.dataset import DATASETS

    path = Path(path)
    if path.is_dir():
        x = DATASETS.get("images")(DataConfig(name="images", path=str(path)), 0).x / 255.0
    elif path.suffix.lower() == ".csv":
        x = DATASETS.get("file")(DataConfig(name="file", path=str(path)), 0).x
    elif path.suffix.lower() == ".npy":
        if not path.is_file():
            raise GankitError(f"{flag} {path}: file not found")
        try:
            array = np.load(path, allow_pickle=False)
        except (ValueError, OSError):  # not .npy at all, or pickled objects (which gankit never unpickles)
            raise GankitError(f"{flag} {path}: not a .npy array of numbers (saved with numpy.save, without "
                              f"Python objects)") from None
        if array.ndim not in (2, 3, 4) or not np.issubdtype(array.dtype, np.number):
            raise GankitError(f"{flag} {path}: holds {array.dtype} of shape {list(array.shape)}; expected numbers as "
                              f"rows [N, F] or images [N, H, W] / [N, C, H, W] / [N, H, W, C]")
        x = torch.from_numpy(array.astype(np.float32))
        if x.dim() == 3:
            x = x.unsqueeze(1)
        if x.dim() == 4 and x.shape[1] not in (1, 3) and x.shape[3] in (1, 3):
            x = x.permute(0, 3, 1, 2).contiguous()  # [N, H, W, C] -> [N, C, H, W]
        if x.dim() == 4 and (array.dtype == np.uint8 or float(x.max()) > 1.0):
            x = x / 255.0
    else:
        raise GankitError(f"{flag} {path}: expected a .npy or .csv file, or a folder of images")
    if len(x) < 2:
        raise GankitError(f"{flag} {path}: holds {len(x)} sample(s); the metrics need at least 2 (better thousands)")
    return x
