"""Feature extractors: samples -> (features [N, D], logits [N, K] or None), found by name.

Built-ins register the way a user's own does::

    from gankit.metrics import EXTRACTORS, Extractor

    @EXTRACTORS.register("my-net")
    def my_net(weights: str) -> Extractor:
        net = load_my_net().eval()
        return Extractor("my-net", lambda x: (net.features(x), net(x)), pixels=True, shape=(3, 64, 64))

``weights`` is ``eval.inception_weights`` (only the Inception extractor uses it). Extractors that
take ``pixels`` get images scaled to [0, 1]; the others get samples in the data's own units. An
extractor that says ``standardize`` has its features standardised by the real samples' mean and std
before the distance-based scores (``metrics.evaluate``): it cannot do that itself, as it sees one set at
a time.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor

from ..data.dataset import resize
from ..errors import GankitError
from ..registry import Registry

Net = Callable[[Tensor], "tuple[Tensor, Tensor | None]"]


@dataclass
class Extractor:
    name: str
    net: Net  # a batch -> (features, logits or None)
    pixels: bool = False  # True: images [N, C, H, W] in [0, 1]; False: samples in the data's units
    shape: tuple[int, ...] | None = None  # the one sample shape it accepts (rows of as many values are reshaped)
    any_size: bool = False  # with shape: images of its channels but another size go to the net as they are
    has_logits: bool = False  # whether ``net`` gives logits (for the classifier/Inception score)
    classes: list[str] = field(default_factory=list)  # the data classes its logits name, if they do
    info: dict[str, Any] = field(default_factory=dict)  # provenance: weights file, accuracy...
    batch_size: int = 500
    standardize: bool = False  # rows: FID, KID and the k-NN scores see each feature in units of the real std

    @torch.no_grad()
    def __call__(self, x: Tensor, batch_size: int | None = None) -> tuple[Tensor, Tensor | None]:
        """Features (float64) and logits of ``x``, in batches; the result does not depend on the batch size."""
        x = self.check(torch.as_tensor(x))
        size = batch_size or self.batch_size
        feats, logits = [], []
        for batch in x.split(size):
            f, lg = self.net(batch.float())
            feats.append(f.reshape(len(batch), -1).double())
            if lg is not None:
                logits.append(lg.double())
        return torch.cat(feats), (torch.cat(logits) if logits else None)

    def check(self, x: Tensor) -> Tensor:
        if self.shape is None:
            return x
        if tuple(x.shape[1:]) == self.shape:
            return x
        if math.prod(x.shape[1:]) == math.prod(self.shape):  # rows of a flattened image
            return x.reshape(len(x), *self.shape)
        if x.dim() == 4 and len(self.shape) == 3 and x.shape[1] == self.shape[0] and self.shape[1] == self.shape[2]:
            # another size: the net resizes it itself, or it is resized as the data pipeline does it
            return x if self.any_size else resize(x.float(), self.shape[1])
        raise GankitError(f"features {self.name!r} take samples of shape {list(self.shape)}, got "
                          f"{list(x.shape[1:])}; choose other features (e.g. --features raw)")


# weights path (eval.inception_weights, may be "") -> Extractor
EXTRACTORS: Registry[Callable[[str], Extractor]] = Registry("feature extractor")


def _values(x: Tensor) -> tuple[Tensor, None]:
    return x.reshape(len(x), -1), None  # [N, ...] -> [N, D]


@EXTRACTORS.register("raw")
def raw(weights: str = "") -> Extractor:
    """The values as given: the standard formulas on the numbers in the files. For rows in one unit; for
    images only a rough, pixel-space signal."""
    return Extractor("raw", _values, batch_size=4096, info={"description": "the sample values as given"})


@EXTRACTORS.register("standardized")
def standardized(weights: str = "") -> Extractor:
    """The values, each column standardised by the real samples' mean and std: rows of mixed units (grams beside
    metres), where on the values as given the column with the largest numbers alone decides (the default for rows)."""
    return Extractor("standardized", _values, batch_size=4096, standardize=True,
                     info={"description": "the sample values, each column standardised by the real samples' mean "
                                          "and std"})


def _classifier(name: str) -> Extractor:
    from .classifier import classifier_info, load_classifier

    net = load_classifier(name)
    info = classifier_info(name)
    cfg = info["config"]
    shape = (cfg["in_channels"], cfg["image_size"], cfg["image_size"])
    def features_and_logits(x: Tensor) -> tuple[Tensor, Tensor]:
        f = net.features(x)
        return f, net.head(f)  # = net(x) in eval mode (its dropout is off), without a second pass

    return Extractor(name, features_and_logits, pixels=True, shape=shape, any_size=net.blur, has_logits=True,
                     classes=list(info["classes"]),
                     info={"weights": f"gankit/metrics/weights/{name}.safetensors", "test_accuracy": info["test_accuracy"],
                           "test_set": info["test_set"], "feature_dim": cfg["feature_dim"]})


@EXTRACTORS.register("fashion-mnist")
def fashion_mnist(weights: str = "") -> Extractor:
    """Penultimate features and logits of gankit's bundled Fashion-MNIST CNN (scripts/train_classifiers.py)."""
    return _classifier("fashion-mnist")


@EXTRACTORS.register("digits")
def digits(weights: str = "") -> Extractor:
    """Penultimate features and logits of gankit's bundled CNN for scikit-learn's 8x8 digits."""
    return _classifier("digits")


@EXTRACTORS.register("inception")
def inception(weights: str = "") -> Extractor:
    """InceptionV3 pool features (2,048) and logits (1,008) of the standard FID network: FID comparable with papers."""
    from .inception import load_fid_inception

    path = inception_weights(weights)
    net = load_fid_inception(path or None)
    return Extractor("inception", net, pixels=True, has_logits=True, batch_size=50,
                     info={"weights": str(path), "description": "FID InceptionV3 (pool3 features, 2048-d)"})


def inception_weights(weights: str = "") -> str:
    """The Inception weights file: ``weights`` (eval.inception_weights, --inception-weights), else
    $GANKIT_INCEPTION_WEIGHTS, else ""."""
    from .inception import INCEPTION_ENV

    return weights or os.environ.get(INCEPTION_ENV, "")


def get_extractor(name: str, weights: str = "") -> Extractor:
    return EXTRACTORS.get(name)(weights)
