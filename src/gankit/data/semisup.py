"""Semi-supervised data: a few labelled training samples, many unlabelled ones, and a labelled test set.

``load_data`` comes here when ``data.labels_per_class`` or ``data.semisupervised`` is set. Training's ``x`` is
every training sample, labelled or not (the reference, openai/improved-gan, uses the labelled ones as
unlabelled data too); the labelled ones are also in ``semisup.labelled_x`` / ``labelled_y``.

- ``fashion-mnist`` (and any ``idx`` folder): the train split trains, the test split tests.
- ``digits`` and the other fully labelled sets: the stratified split of ``gankit.data.anomaly`` (2/3 of each
  class train, 1/3 test; fixed, whatever the seed).
- ``data.labels_per_class = N``: N labels of each class are kept, chosen by the run's seed; the others are
  dropped. A class with fewer than N labelled samples is an error naming it.
- the user's partly labelled data (``data.semisupervised = true``): the loaders mark unlabelled samples with the
  label -1 (a CSV's or .npy's empty or NaN label or ``data.unlabelled``; an image folder's ``unlabelled/``
  sub-folder), and its classes are those of the labelled samples. All of it trains; there is no test set. Data
  without labels is an error; data with no unlabelled sample trains (on the labelled samples alone), with a warning,
  as it is more likely a mistake (a marker not matched) than a choice.

Semi-supervised data holds rows of numbers or images, with labelled samples of at least 2 classes.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import torch

from ..config import DataConfig
from ..errors import GankitError
from .anomaly import OWN_SPLITS, options, own_split, stratified, unsupported_kind
from .dataset import DATASETS, RawData, Semisup, _image_options, configured_data_name

UNLABELLED = -1  # the label the loaders give unlabelled samples of semi-supervised data
SHOWN = 6  # classes named in a message before "and N more"


def semisup_data(config: DataConfig, seed: int) -> RawData:
    """Every training sample as ``x`` (y None), the labelled ones and the test set in ``semisup``."""
    if config.name in OWN_SPLITS:
        pool = own_split(config, seed)
        raw, test_x, test_y = pool.train, pool.test_x, pool.test_y
    else:
        raw = DATASETS.get(config.name)(config, seed)
        check_labelled(raw, config)
        if config.semisupervised:  # the user's partly labelled data: all of it trains; no test set of its own
            test_x = test_y = None
        else:
            train, test = stratified(raw.y.numpy())
            raw, test_x, test_y = replace(raw, x=raw.x[train], y=raw.y[train]), raw.x[test], raw.y[test]
    names = list(raw.class_names)
    labelled = kept_labels(raw.y, names, config, seed)
    semisup = Semisup(labelled_x=options(raw, config, raw.x[labelled]), labelled_y=raw.y[labelled].clone(),
                      test_x=None if test_x is None else options(raw, config, test_x), test_y=test_y,
                      class_names=names)
    return replace(_image_options(raw, config), y=None, semisup=semisup)


def check_labelled(raw: RawData, config: DataConfig) -> None:
    """Semi-supervised learning takes rows of numbers or images, some of them labelled with 2 classes or more."""
    key, name = semisup_key(config), configured_data_name(config)
    what = unsupported_kind(raw)
    if what:
        raise GankitError(f"{key}: data set {name!r} holds {what}; semi-supervised learning takes rows of numbers "
                          f"(a .npy or a CSV of numbers with data.label_column: data.name = \"file\") or images")
    if raw.y is None:
        raise GankitError(f"{key}: data set {name!r} has no class labels; label some of it (data.label_column of "
                          f"a CSV or .npy, class sub-folders of images)")
    if len(raw.class_names) < 2:
        have = (f"labelled samples of one class only ({raw.class_names[0]!r})" if raw.class_names else
                "no labelled sample")
        raise GankitError(f"{key}: data set {name!r} has {have}; expected labelled samples of at least 2 classes")
    if config.semisupervised and not config.labels_per_class and bool((raw.y >= 0).all()):
        print(f"gankit: warning: {key}: every one of the {len(raw.y)} samples of {name!r} is labelled, so there "
              f"is no unlabelled sample beyond them; mark the unlabelled ones (an empty label or data.unlabelled "
              f"in a CSV or .npy, an image folder's unlabelled/ sub-folder), or keep a few labels of each class "
              f"with data.labels_per_class", file=sys.stderr)


def kept_labels(y: torch.Tensor, names: list[str], config: DataConfig, seed: int) -> torch.Tensor:
    """Indices (in order) of the samples whose labels are kept: all the labelled ones, or N of each class
    (``data.labels_per_class``) drawn by the seed. A class with fewer (or none) is an error naming it."""
    per_class = config.labels_per_class
    counts = np.bincount(y[y >= 0].numpy(), minlength=len(names))  # [K] labelled training samples of each class
    short = [k for k in range(len(names)) if counts[k] < max(per_class, 1)]
    if short:
        raise short_classes(config, names, counts, short)
    if not per_class:
        return torch.nonzero(y >= 0)[:, 0]
    rng = np.random.RandomState(seed)
    kept = [rng.permutation(np.flatnonzero(y.numpy() == k))[:per_class] for k in range(len(names))]
    return torch.from_numpy(np.sort(np.concatenate(kept)))


def short_classes(config: DataConfig, names: list[str], counts: np.ndarray, short: list[int]) -> GankitError:
    """The error for classes with no labelled training sample, or fewer than data.labels_per_class; it names the
    class with the fewest and lists the short ones."""
    fewest = min(short, key=lambda k: counts[k])
    listed = ", ".join(f"{names[k]} ({counts[k]})" for k in short[:SHOWN])
    listed += f" and {len(short) - SHOWN} more" if len(short) > SHOWN else ""
    start = f"{semisup_key(config)}: data set {configured_data_name(config)!r}: class {names[fewest]!r} has"
    if counts[fewest] == 0:
        return GankitError(f"{start} no labelled training sample; expected at least "
                           f"{max(config.labels_per_class, 1)} of each class (short: {listed})")
    return GankitError(f"{start} only {counts[fewest]} labelled training samples; expected data.labels_per_class "
                       f"<= {counts[fewest]}, the fewest any class has (short of {config.labels_per_class}: {listed})")


def semisup_key(config: DataConfig) -> str:
    return (f"data.labels_per_class = {config.labels_per_class}" if config.labels_per_class
            else "data.semisupervised = true")
