"""Networks of the semi-supervised game (``games.semisup``), and the classifier a trained game is used through.

D is a K-class classifier whose fake class is implicit (Salimans et al. 2016): its K logits l(x) give the
classes, and log Z(x) = logsumexp_k l_k(x) is its real/fake logit, so D(real | x) = Z / (Z + 1) =
sigmoid(logsumexp l(x)). As in the reference (openai/improved-gan, ``train_mnist_feature_matching.py``) every
layer is weight-normalised, and Gaussian noise is added to D's input and to its hidden layers while it trains
(``input_noise``, ``hidden_noise``: the reference's 0.3 and 0.5); G is matched on D's last hidden layer.

Rows (and images with ``model.family = "mlp"``): ReLU layers of the given ``widths`` (the reference's MNIST D:
1000, 500, 250, 250, 250). Images (``"dcgan"``): DCGAN-style strided convolutions (3x3, then 4x4 stride 2 to
halve the side), LeakyReLU, then the mean over the map; ``width`` channels, doubled at each halving.

Every network is made from one JSON dict of settings, so a run's classifier is rebuilt from its checkpoint's
``model.classifier`` section and safetensors alone (``build_classifier``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

from .anomaly import generator


class GaussianNoise(nn.Module):
    """x + std * N(0, 1) while training; the identity in eval mode (evaluation, export)."""

    def __init__(self, std: float):
        super().__init__()
        self.std = std

    def forward(self, x: Tensor) -> Tensor:
        return x + self.std * torch.randn_like(x) if self.training and self.std else x


class ClassifierD(nn.Module):
    """x [B, *shape] -> K class logits [B, K]; ``features(x)`` is the layer G's feature matching compares, and
    ``both(x)`` gives (logits, features) from one pass."""

    def __init__(self, settings: dict[str, Any]):
        super().__init__()
        shape, K = tuple(settings["shape"]), settings["classes"]
        noise_in, noise_hidden = settings["input_noise"], settings["hidden_noise"]
        layers: list[nn.Module] = [GaussianNoise(noise_in)]
        if settings["family"] == "dcgan":
            channels, side, width = shape[0], min(shape[1:]), settings["width"]
            layers += [weight_norm(nn.Conv2d(channels, width, 3, 1, 1)), nn.LeakyReLU(0.2)]
            while side >= 4:  # halve the side down to 2 or 3 (28 -> 14 -> 7 -> 3; 8 -> 4 -> 2)
                out = min(2 * width, 8 * settings["width"])
                layers += [weight_norm(nn.Conv2d(width, out, 4, 2, 1)), nn.LeakyReLU(0.2), GaussianNoise(noise_hidden),
                           weight_norm(nn.Conv2d(out, out, 3, 1, 1)), nn.LeakyReLU(0.2)]
                width, side = out, side // 2
            layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        else:
            width = math.prod(shape)
            layers.insert(0, nn.Flatten())
            for i, hidden in enumerate(settings["widths"]):
                if i:
                    layers.append(GaussianNoise(noise_hidden))
                layers += [weight_norm(nn.Linear(width, hidden)), nn.ReLU()]
                width = hidden
        self.body = nn.Sequential(*layers)
        self.noise = GaussianNoise(noise_hidden)  # on the features before the class layer, as on every hidden one
        self.head = weight_norm(nn.Linear(width, K))

    def both(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.body(x)
        return self.head(self.noise(h)), h

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.both(x)[0]


class BatchNormMLPGenerator(nn.Module):
    """The reference's MNIST G: z -> (Linear, BatchNorm, Softplus) x depth -> a weight-normalised Linear -> the
    output activation, reshaped to the sample's shape (rows, or images with model.family = "mlp")."""

    def __init__(self, z_dim: int, shape: tuple[int, ...], hidden: int, depth: int, out_activation: str):
        super().__init__()
        self.z_dim, self.shape = z_dim, tuple(shape)
        layers: list[nn.Module] = []
        width = z_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.Softplus()]
            width = hidden
        layers.append(weight_norm(nn.Linear(width, math.prod(self.shape))))
        if out_activation == "tanh":
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:  # [B, z_dim] -> [B, *shape]; y unused, as
        return self.net(z).view(-1, *self.shape)  # the other unconditional generators'


def semisup_players(settings: dict[str, Any]) -> dict[str, nn.Module]:
    """G (DCGAN's transposed convolutions for images with family "dcgan", else the reference's MLP) and D."""
    shape, z_dim, width = tuple(settings["shape"]), settings["z_dim"], settings["g_hidden"]
    if settings["family"] == "dcgan":
        G = generator(shape, z_dim, width, settings["g_depth"], settings["out_activation"])
    else:
        G = BatchNormMLPGenerator(z_dim, shape, width, settings["g_depth"], settings["out_activation"])
    return {"G": G, "D": ClassifierD(settings)}


class Classifier(nn.Module):
    """x [N, *shape] in the networks' units -> class probabilities [N, K] (softmax of D's K logits: the
    probabilities given that x is real). ``settings`` is the JSON ``build_classifier`` rebuilds it from."""

    def __init__(self, settings: dict[str, Any], D: nn.Module | None = None):
        super().__init__()
        self.settings = dict(settings)
        self.D = D if D is not None else ClassifierD(settings)

    def forward(self, x: Tensor) -> Tensor:
        return torch.softmax(self.D(x).float(), dim=1)


def build_classifier(settings: dict[str, Any]) -> Classifier:
    """A classifier with fresh weights from a checkpoint's ``model.classifier`` settings; its ``state_dict`` keys
    are the checkpoint's ``D.*`` keys."""
    return Classifier(settings)
