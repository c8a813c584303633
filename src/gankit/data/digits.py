"""scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes): real data, no download."""

from __future__ import annotations

import torch

from ..config import DataConfig
from .dataset import DATASETS, RawData


@DATASETS.register("digits")
def digits(config: DataConfig, seed: int) -> RawData:
    from sklearn.datasets import load_digits  # ships the data inside the package

    bunch = load_digits()
    return RawData(
        x=torch.from_numpy(bunch.data).float(),  # [1797, 64], grey levels 0..16
        y=torch.from_numpy(bunch.target).long(),
        class_names=[str(c) for c in bunch.target_names],
        columns=[f"pixel_{r}_{c}" for r in range(8) for c in range(8)],
        normalize="minmax",
        value_range=(0.0, 16.0),
    )
