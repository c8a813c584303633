"""scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes): real data, no download.

Images [1, 8, 8]: the MLP models see them as rows of 64 values, the convolutional ones as images.
"""

from __future__ import annotations

import torch

from ..config import DataConfig
from .dataset import DATASETS, RawData


@DATASETS.register("digits")
def digits(config: DataConfig, seed: int) -> RawData:
    from sklearn.datasets import load_digits  # ships the data inside the package

    bunch = load_digits()
    return RawData(
        x=torch.from_numpy(bunch.images).float().unsqueeze(1),  # [1797, 1, 8, 8], grey levels 0..16
        y=torch.from_numpy(bunch.target).long(),
        class_names=[str(c) for c in bunch.target_names],
        normalize="minmax",
        value_range=(0.0, 16.0),
    )
