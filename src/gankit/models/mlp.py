"""Multilayer perceptrons for vectors and table rows; conditional when given a number of classes.

Conditioning follows Mirza & Osindero 2014 ("Conditional GANs"): a learned label embedding is
concatenated to z in G and to x in D.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from . import MODELS
from .layers import MinibatchDiscrimination, apply_spectral_norm, pack_samples


def _stack(in_dim: int, hidden: int, depth: int, out_dim: int, act) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(in_dim, hidden), act()]
        in_dim = hidden
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class _Conditioned(nn.Module):
    """Shared label handling: an embedding concatenated to the input when there are classes."""

    def __init__(self, num_classes: int, embed_dim: int):
        super().__init__()
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None

    def _with_label(self, v: Tensor, y: Tensor | None) -> Tensor:
        if self.embed is None:
            return v
        if y is None:
            raise ValueError(f"{type(self).__name__} is conditional ({self.num_classes} classes) and needs labels y")
        return torch.cat([v, self.embed(y)], dim=1)  # [B, in + embed]


def discrete_latent(z: Tensor, k: int) -> Tensor:
    """[B, z_dim] ~ N(0, I) -> [B, k + z_dim - 1]: z_0 picks one of k equally likely categories (by the normal CDF,
    so each has probability 1/k), given one-hot; the other coordinates pass through.

    A continuous G fed a connected Gaussian must stretch across the gaps between separated modes and put
    samples there; a discrete latent lets it jump (as DeLiGAN, Gurumurthy et al. 2017, and
    Khayatkhoei et al. 2018 argue). The prior is still z ~ N(0, I): sampling and export are unchanged.
    """
    u = 0.5 * (1.0 + torch.erf(z[:, 0] / math.sqrt(2.0)))  # Phi(z_0) ~ U(0, 1)
    category = (u * k).long().clamp_(0, k - 1)
    return torch.cat([nn.functional.one_hot(category, k).to(z.dtype), z[:, 1:]], dim=1)


class MLPGenerator(_Conditioned):
    def __init__(self, z_dim: int, shape: tuple[int, ...], hidden: int = 128, depth: int = 2, num_classes: int = 0,
                 embed_dim: int = 16, out_activation: str = "none", latent_classes: int = 0):
        super().__init__(num_classes, embed_dim)
        self.z_dim, self.shape, self.latent_classes = z_dim, tuple(shape), latent_classes
        in_dim = z_dim + (latent_classes - 1 if latent_classes else 0) + (embed_dim if num_classes else 0)
        self.net = _stack(in_dim, hidden, depth, math.prod(shape), nn.ReLU)
        self.out = nn.Tanh() if out_activation == "tanh" else nn.Identity()

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:  # [B, z_dim] -> [B, *shape]
        if self.latent_classes:
            z = discrete_latent(z, self.latent_classes)
        return self.out(self.net(self._with_label(z, y))).view(-1, *self.shape)


class MLPDiscriminator(_Conditioned):
    """x (+ label embedding) -> LeakyReLU hidden layers -> features h -> one logit.

    Options, all off by default: ``minibatch_std`` and ``minibatch_features`` K append the batch's
    spread and K minibatch-discrimination features to h; ``pack`` m judges packs of m samples (their
    inputs and label embeddings concatenated, so the first layer is m times wider); ``spectral_norm``
    normalises every linear layer. ``features`` gives the input of the last layer, for feature matching.
    """

    def __init__(self, in_dim: int, hidden: int = 128, depth: int = 2, num_classes: int = 0, embed_dim: int = 16,
                 minibatch_std: bool = False, minibatch_features: int = 0, pack: int = 1,
                 spectral_norm: bool = False):
        super().__init__(num_classes, embed_dim)
        self.pack = pack
        body = _stack(pack * (in_dim + (embed_dim if num_classes else 0)), hidden, depth, 1,
                      lambda: nn.LeakyReLU(0.2))
        self.body = body[:-1]  # everything up to the last hidden features
        self.minibatch_std = minibatch_std
        last = body[-1]
        self.minibatch = MinibatchDiscrimination(last.in_features, minibatch_features) if minibatch_features else None
        self.head = nn.Linear(last.in_features + int(minibatch_std) + minibatch_features, 1)
        if spectral_norm:
            apply_spectral_norm(self)

    @property
    def batch_independent(self) -> bool:
        """Whether each sample's score depends on it alone, so real and fake batches may share one pass."""
        return self.pack == 1 and not self.minibatch_std and self.minibatch is None

    def features(self, x: Tensor, y: Tensor | None = None) -> Tensor:  # [B, in_dim] -> [B/m, F]
        v = pack_samples(self._with_label(x.flatten(1), y), self.pack, type(self).__name__)  # [B/m, m*(in+E)]
        h = self.body(v)  # [B/m, hidden]
        parts = [h]
        if self.minibatch_std:
            parts.append(batch_spread(h))  # [B/m, 1]
        if self.minibatch is not None:
            parts.append(self.minibatch(h))  # [B/m, K]
        return torch.cat(parts, dim=1)  # [B/m, hidden (+ 1) (+ K)]

    def last_layer(self, h: Tensor, y: Tensor | None = None) -> Tensor:  # [B/m, F] -> [B/m]
        return self.head(h).squeeze(1)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:  # [B, in_dim] -> [B/m]
        return self.last_layer(self.features(x, y), y)


def batch_spread(h: Tensor) -> Tensor:
    """The batch's mean per-feature standard deviation, as one more feature of every sample: [B, F] -> [B, 1].

    Minibatch standard deviation (Karras et al. 2018, "Progressive Growing of GANs", section 3): D
    sees how varied the batch is, so a generator that collapses onto few outputs is easy to reject.
    """
    variance = (h - h.mean(0)).square().mean(0)  # [F], over the batch (faster than torch.std on CPU)
    spread = (variance + 1e-8).sqrt().mean()  # the epsilon keeps the gradient finite for a collapsed batch
    return spread.expand(h.shape[0], 1)


@MODELS.register("mlp")
def build_mlp(cfg: ModelConfig, shape: tuple, num_classes: int, out_activation: str):
    features = math.prod(shape)
    G = MLPGenerator(cfg.z_dim, shape, cfg.g_hidden, cfg.g_depth, num_classes, cfg.embed_dim, out_activation,
                     cfg.latent_classes)
    D = MLPDiscriminator(features, cfg.d_hidden, cfg.d_depth, num_classes, cfg.embed_dim, cfg.minibatch_std,
                         cfg.minibatch_features, cfg.pack, cfg.spectral_norm)
    return G, D
