"""Small CNN classifiers whose activations stand in for Inception's in GAN metrics on tiny images.

Inception-v3 features mean little on 28x28 or 8x8 grey images, so, as TF-GAN did for MNIST, we use a
classifier trained on the data set itself: its penultimate activations (``features``) feed a Fréchet
distance, its logits a classifier score. The weights ship in ``weights/{name}.safetensors`` with their
constructor arguments, class names and held-out accuracy in the file's metadata, so loading runs no code
and needs no guesswork; ``scripts/train_classifiers.py`` reproduces them.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..data.dataset import resize
from ..errors import GankitError

CLASSIFIERS_DIR = Path(__file__).parent / "weights"
KNOWN = ("fashion-mnist", "digits")  # the classifiers that ship with gankit


class SmallCNN(nn.Module):
    """Three conv-BN-ReLU blocks, each followed by 2x2 max-pooling while the map is at least 4 pixels
    wide (28 -> 14 -> 7 -> 3, or 8 -> 4 -> 2 -> 2), then a ReLU feature layer and a linear head.

    Takes pixels in [0, 1], [N, in_channels, image_size, image_size]. In eval mode BatchNorm uses its
    running statistics, so outputs do not depend on the batch they are computed in.

    With ``blur``, images of any size are resized to twice ``image_size`` and then to ``image_size``
    (``gankit.data.dataset.resize``), so a run on data enlarged by ``data.image_size`` (digits-dcgan:
    8 -> 16) is seen exactly as the native images are. Without it, that round trip's blur alone cost the
    8x8 digits net 10 points of accuracy (99.3% -> 89%).
    """

    def __init__(self, image_size: int, num_classes: int = 10, in_channels: int = 1, width: int = 32,
                 feature_dim: int = 128, blur: bool = False):
        super().__init__()
        self.image_size, self.in_channels, self.blur = image_size, in_channels, blur
        blocks, size, channels = [], image_size, in_channels
        for out in (width, 2 * width, 2 * width):
            blocks += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
            if size >= 4:
                blocks.append(nn.MaxPool2d(2))
                size //= 2
            channels = out
        self.conv = nn.Sequential(*blocks)
        self.fc = nn.Linear(channels * size * size, feature_dim)
        self.dropout = nn.Dropout(0.3)  # regularises training only; identity in eval mode
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations [N, feature_dim], after the ReLU: the embedding for Fréchet distances."""
        expected = (self.in_channels, self.image_size, self.image_size)
        if self.blur and x.ndim == 4 and x.shape[1] == self.in_channels:
            # Any size becomes image_size through 2x image_size: native images get the low-pass of that round
            # trip, and images gankit enlarged from image_size (data.image_size) come back to the same view.
            x = resize(resize(x, 2 * self.image_size), self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            dims = ", ".join(map(str, expected))
            raise GankitError(f"classifier input has shape {list(x.shape)}; expected [N, {dims}]")
        h = self.conv((x - 0.5) / 0.5)  # [N, C, s, s], pixels centred on 0
        return torch.relu(self.fc(h.flatten(1)))  # [N, feature_dim]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [N, num_classes]."""
        return self.head(self.dropout(self.features(x)))


def classifier_path(name: str) -> Path:
    """The weights file of a shipped classifier; a one-line error for an unknown name or a missing file."""
    path = CLASSIFIERS_DIR / f"{name}.safetensors"
    if name not in KNOWN:
        raise GankitError(f"classifier {name!r} is unknown ({path} does not ship); known: {', '.join(KNOWN)}")
    if not path.is_file():
        raise GankitError(f"{path}: not found; known classifiers: {', '.join(KNOWN)} "
                          f"(rebuild with scripts/train_classifiers.py --only {name})")
    return path


def classifier_info(name: str) -> dict:
    """The metadata of a shipped classifier, with JSON fields parsed: config, classes, test_accuracy,
    n_parameters, file_bytes, and the training details (seed, epochs, recipe, test_set, train_script, ...)."""
    from safetensors import safe_open

    path = classifier_path(name)
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
    for key in ("config", "classes", "recipe", "test_split"):
        if key in meta:
            meta[key] = json.loads(meta[key])
    for key, kind in (("test_accuracy", float), ("n_parameters", int), ("seed", int), ("epochs", int)):
        if key in meta:
            meta[key] = kind(meta[key])
    meta["file_bytes"] = path.stat().st_size
    return meta


def load_classifier(name: str) -> SmallCNN:
    """A shipped classifier ("fashion-mnist" or "digits"), in eval mode with frozen weights."""
    from safetensors.torch import load_file

    info = classifier_info(name)
    model = SmallCNN(**info["config"])
    model.load_state_dict(load_file(str(classifier_path(name))))
    model.eval().requires_grad_(False)
    return model
