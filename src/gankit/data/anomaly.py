"""Anomaly detection's data: normal samples to train on, normal samples held out to set the score's threshold,
and a labelled test set of normal and anomalous samples.

``load_data`` comes here when ``data.normal_class`` or ``data.normal_holdout`` is set. The splits are fixed: they
do not depend on the run's seed, so every method and every seed is trained and tested on the same samples.

- ``fashion-mnist`` (and any ``idx`` folder), which come split: training is the normal class of the train split,
  testing the whole test split -- the one-class protocol of Golan & El-Yaniv (2018, GEOM) and the papers after it.
- ``breast-cancer``: read as rows (its 30 measurements, standardised), not as a table; 60% of the normal class's
  rows (benign, as usual) train, the other 40% and every row of the other class test.
- ``digits`` and any other labelled set (a CSV or .npy with data.label_column, a folder of class sub-folders):
  a stratified split, 2/3 of each class to train and 1/3 to test.
- the user's unlabelled data (a folder of images, an .npy, a CSV of numbers): all of it normal; only the holdout.

The held-out share ``data.normal_holdout`` is the last share of a fixed permutation of the normal training samples.
Everything here is in the data's own units; ``load_data`` normalises it with the training samples' statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from ..config import DataConfig
from ..errors import GankitError
from .dataset import DATASETS, Anomaly, RawData, _image_options, configured_data_name, label_index

SPLIT_SEED = 0  # numpy RandomState of the stratified and the breast-cancer splits
HOLDOUT_SEED = 1  # numpy RandomState of the permutation whose last share is held out
TRAIN_SHARE = 2 / 3  # stratified split: share of each class that trains (digits, the user's labelled data)
ROWS_TRAIN_SHARE = 0.6  # breast-cancer: share of the normal class's rows that trains
OWN_SPLITS = ("fashion-mnist", "idx")  # sets with a train and a test split of their own


@dataclass
class Pool:
    """A labelled set cut into a part to train on and a part to test on, in the data's own units."""

    train: RawData  # x [N, *shape] and y [N] of the train part, and what the loader said of the data
    test_x: torch.Tensor  # [T, *shape]
    test_y: torch.Tensor  # [T] int64 class indices


def anomaly_data(config: DataConfig, seed: int) -> RawData:
    """The normal training samples as ``x`` (y None), with the held-out and test samples in ``anomaly``."""
    if config.name == "breast-cancer":
        return labelled(breast_cancer_rows(config), config)
    if config.name in OWN_SPLITS:
        return labelled(own_split(config, seed), config)
    raw = DATASETS.get(config.name)(config, seed)
    check_kind(raw, config)
    if raw.y is None:
        return unlabelled(raw, config)
    train, test = stratified(raw.y.numpy())
    pool = Pool(train=replace(raw, x=raw.x[train], y=raw.y[train]), test_x=raw.x[test], test_y=raw.y[test])
    return labelled(pool, config)


# --------------------------------------------------------------------------------------------- the splits


def labelled(pool: Pool, config: DataConfig) -> RawData:
    """Training: the normal class of the train part, less the held-out share; testing: the whole test part."""
    raw, names = pool.train, pool.train.class_names
    normal = normal_index(config, names)
    normal_x = raw.x[raw.y == normal]
    keep, held = holdout(len(normal_x), config)
    anomaly = Anomaly(held=options(raw, config, normal_x[held]), test_x=options(raw, config, pool.test_x),
                      test_y=(pool.test_y != normal).long(), test_classes=pool.test_y.long(),
                      normal=names[normal], class_names=list(names))
    return replace(raw, x=options(raw, config, normal_x[keep]), y=None, class_names=[names[normal]],
                   anomaly=anomaly)


def unlabelled(raw: RawData, config: DataConfig) -> RawData:
    """The user's normal data: all of it trains but the held-out share; there is no test set."""
    if config.normal_class:
        raise GankitError(f"data.normal_class = {config.normal_class!r}: data set {configured_data_name(config)!r} "
                          f"has no class labels; label it (data.label_column of a CSV or .npy, class sub-folders of "
                          f"images), or leave data.normal_class empty and set data.normal_holdout to take all of it "
                          f"as normal")
    raw = _image_options(raw, config)
    keep, held = holdout(len(raw.x), config)
    return replace(raw, x=raw.x[keep], anomaly=Anomaly(held=raw.x[held]))


def holdout(n: int, config: DataConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (in order) of the ``n`` normal samples that train and of those held out: the last
    ``round(normal_holdout * n)`` of a fixed permutation."""
    m = int(round(config.normal_holdout * n))
    if n - m < 2 or (config.normal_holdout and m < 1):
        raise GankitError(f"data.normal_holdout = {config.normal_holdout} of the {n} normal training samples of "
                          f"{configured_data_name(config)!r} holds out {m} and leaves {n - m} to train on; expected "
                          f"at least 1 held out and 2 to train on")
    order = np.random.RandomState(HOLDOUT_SEED).permutation(n)
    return torch.from_numpy(np.sort(order[:n - m])), torch.from_numpy(np.sort(order[n - m:]))


def stratified(y: np.ndarray, share: float = TRAIN_SHARE) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (in order) of the train and test parts: ``round(share * n_k)`` of each class k train."""
    rng = np.random.RandomState(SPLIT_SEED)
    train, test = [], []
    for k in range(int(y.max()) + 1):
        members = rng.permutation(np.flatnonzero(y == k))
        cut = int(round(share * len(members)))
        train.append(members[:cut])
        test.append(members[cut:])
    return torch.from_numpy(np.sort(np.concatenate(train))), torch.from_numpy(np.sort(np.concatenate(test)))


def own_split(config: DataConfig, seed: int) -> Pool:
    """A set's own train and test splits (Fashion-MNIST: 60,000 and 10,000 images)."""
    if config.split != "train":  # config validation refuses it too; here for a DataConfig built in Python
        raise GankitError(f"data.split = {config.split!r}: anomaly detection and semi-supervised data train on the "
                          f"train split and test on the test split; expected \"train\"")
    load = DATASETS.get(config.name)
    train, test = load(replace(config, split="train"), seed), load(replace(config, split="test"), seed)
    names = max(train.class_names, test.class_names, key=len)  # idx folders name classes 0..(largest label)
    return Pool(train=replace(train, class_names=names), test_x=test.x, test_y=test.y)


def breast_cancer_rows(config: DataConfig) -> Pool:
    """scikit-learn's Wisconsin diagnostic breast cancer (569 rows, 30 measurements) as rows of numbers:
    60% of the normal class's rows (a fixed permutation) train; the rest of them and the other class test."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    names = [str(c) for c in bunch.target_names]  # ["malignant", "benign"]: target 0 and 1
    y = bunch.target.astype(np.int64)
    normal = normal_index(config, names)
    members = np.random.RandomState(SPLIT_SEED).permutation(np.flatnonzero(y == normal))
    cut = int(round(ROWS_TRAIN_SHARE * len(members)))
    train = np.sort(members[:cut])
    test = np.sort(np.concatenate([members[cut:], np.flatnonzero(y != normal)]))
    x = torch.from_numpy(bunch.data).float()  # [569, 30], the measurements' own units
    labels = torch.from_numpy(y)
    raw = RawData(x=x[train], y=labels[train], class_names=names, columns=[str(c) for c in bunch.feature_names],
                  normalize="standard")
    return Pool(train=raw, test_x=x[test], test_y=labels[test])


# --------------------------------------------------------------------------------------------- helpers


def normal_index(config: DataConfig, class_names: list[str]) -> int:
    """data.normal_class as a class index, by name (case-insensitive where unambiguous) or by index."""
    name = configured_data_name(config)
    if not config.normal_class:
        raise GankitError(f"data.normal_holdout = {config.normal_holdout}: data set {name!r} is labelled; set "
                          f"data.normal_class to the normal class, one of: {', '.join(class_names)}")
    if len(class_names) < 2:
        raise GankitError(f"data.normal_class = {config.normal_class!r}: data set {name!r} has one class "
                          f"({class_names[0]}); expected at least 2, the normal one and anomalous ones")
    try:
        return label_index(class_names, config.normal_class)
    except GankitError:
        raise GankitError(f"data.normal_class = {config.normal_class!r}: not a class of {name!r}; expected one of: "
                          f"{', '.join(class_names)} (or an index 0..{len(class_names) - 1})") from None


def unsupported_kind(raw: RawData) -> str:
    """What the data is when it is neither rows of numbers nor images ("" when it is one of them): anomaly
    detection and semi-supervised learning take only those, which their products read back."""
    return ("a table of mixed columns" if raw.table is not None else
            "image-to-image pairs" if raw.translation is not None else
            "sequences" if raw.x.dim() == 3 else "")


def check_kind(raw: RawData, config: DataConfig) -> None:
    """Anomaly detection takes rows of numbers and images: refuse what the scorer could not read back."""
    what = unsupported_kind(raw)
    if what:
        key, value = (("data.normal_class", config.normal_class) if config.normal_class else
                      ("data.normal_holdout", config.normal_holdout))
        raise GankitError(f"{key} = {value!r}: data set {configured_data_name(config)!r} holds {what}; anomaly "
                          f"detection takes rows of numbers (a .npy, a CSV of numbers: data.name = \"file\", "
                          f"breast-cancer) or images")


def options(raw: RawData, config: DataConfig, x: torch.Tensor) -> torch.Tensor:
    """data.image_size and data.channels applied to some of a set's images (the same as to its training images)."""
    return _image_options(replace(raw, x=x), config).x
