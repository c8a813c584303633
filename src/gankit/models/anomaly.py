"""Networks of the anomaly-detection games, and the scorers a trained game is used through.

EGBAD / BiGAN (``games.bigan``): G: z -> x, an encoder E: x -> z, and a D that judges (x, z) pairs.
GANomaly (``games.ganomaly``): an encoder-decoder-encoder G: x -> (x_hat, z, z_hat), and a plain D.
f-AnoGAN (``games.fanogan``): a Wasserstein GAN's G and critic D, then an encoder E: x -> z trained to invert G.

Images use the DCGAN family's convolutions (``models.dcgan``), rows the MLP family's layers. Every network is
made by ``anomaly_players(settings)`` from one JSON dict of settings, so a run's scorer is rebuilt from its
checkpoint's ``model.scorer`` section and safetensors alone (``build_scorer``). A ``Scorer`` wraps the players a
score needs: ``scorer(x) -> (score [N], reconstruction [N, *shape])``, higher scores more anomalous; its
``state_dict`` keys are the checkpoint's player keys (``G.*``, ``E.*``, ``D.*``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .dcgan import DCGANDiscriminator, DCGANGenerator
from .mlp import MLPDiscriminator, MLPGenerator, _stack

GAMES = ("bigan", "ganomaly", "fanogan")


class Encoder(nn.Module):
    """x -> z: DCGAN D's strided convolutions (batch norm, LeakyReLU) then a linear map to ``z_dim`` for images;
    LeakyReLU hidden layers for rows."""

    def __init__(self, shape: tuple[int, ...], z_dim: int, width: int, depth: int):
        super().__init__()
        self.shape, self.z_dim = tuple(shape), z_dim
        if len(self.shape) == 3:
            conv = DCGANDiscriminator(self.shape, width, 0, norm="batch")
            self.body = nn.Sequential(conv.body, nn.Flatten())
            self.out = nn.Linear(conv.last_size, z_dim)
        else:
            self.body = _stack(math.prod(self.shape), width, depth, width, lambda: nn.LeakyReLU(0.2))[:-1]
            self.out = nn.Linear(width if depth else math.prod(self.shape), z_dim)

    def forward(self, x: Tensor) -> Tensor:  # [B, *shape] -> [B, z_dim]
        return self.out(self.body(x if len(self.shape) == 3 else x.flatten(1)))


class PairDiscriminator(nn.Module):
    """BiGAN's D(x, z): an x branch (D's convolutions, or a hidden layer for rows), a z branch (one hidden layer),
    and a joint hidden layer whose output is the intermediate layer EGBAD's feature-matching score compares.
    Zenati et al. 2018's MNIST D: convolutions 64, 128 on x, 512 units on z, 1024 joint units."""

    def __init__(self, shape: tuple[int, ...], z_dim: int, width: int, hidden: int):
        super().__init__()
        self.shape = tuple(shape)
        if len(self.shape) == 3:
            conv = DCGANDiscriminator(self.shape, width, 0, norm="batch")
            self.x_branch = nn.Sequential(conv.body, nn.Flatten())
            x_width = conv.last_size
        else:
            self.x_branch = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(self.shape), hidden), nn.LeakyReLU(0.2))
            x_width = hidden
        self.z_branch = nn.Sequential(nn.Linear(z_dim, hidden), nn.LeakyReLU(0.2))
        self.joint = nn.Sequential(nn.Linear(x_width + hidden, hidden), nn.LeakyReLU(0.2))
        self.head = nn.Linear(hidden, 1)

    def features(self, x: Tensor, z: Tensor) -> Tensor:  # [B, *shape], [B, z_dim] -> [B, hidden]
        return self.joint(torch.cat([self.x_branch(x), self.z_branch(z)], dim=1))

    def forward(self, x: Tensor, z: Tensor) -> Tensor:  # -> [B] logits
        return self.head(self.features(x, z)).squeeze(1)


class EncoderDecoderEncoder(nn.Module):
    """GANomaly's G: G_E(x) = z, G_D(z) = x_hat, E(x_hat) = z_hat (Akcay et al. 2018, figure 2)."""

    def __init__(self, shape: tuple[int, ...], z_dim: int, g_width: int, e_width: int, depth: int,
                 out_activation: str):
        super().__init__()
        self.encoder = Encoder(shape, z_dim, e_width, depth)
        self.decoder = generator(shape, z_dim, g_width, depth, out_activation)
        self.reencoder = Encoder(shape, z_dim, e_width, depth)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:  # [B, *shape] -> x_hat, z [B, z_dim], z_hat
        z = self.encoder(x)
        x_hat = self.decoder(z)
        return x_hat, z, self.reencoder(x_hat)


def generator(shape: tuple[int, ...], z_dim: int, width: int, depth: int, out_activation: str) -> nn.Module:
    """z -> x: DCGAN's transposed convolutions for images, an MLP for rows."""
    if len(shape) == 3:
        return DCGANGenerator(z_dim, tuple(shape), width, 0, out_activation=out_activation)
    return MLPGenerator(z_dim, tuple(shape), width, depth, out_activation=out_activation)


def anomaly_players(settings: dict[str, Any]) -> dict[str, nn.Module]:
    """The game's networks from its settings: ``game`` (bigan | ganomaly), ``shape``, ``z_dim``, ``g_hidden``,
    ``d_hidden``, ``depth`` and ``out_activation``."""
    shape, z, g, d = tuple(settings["shape"]), settings["z_dim"], settings["g_hidden"], settings["d_hidden"]
    depth, activation = settings["depth"], settings["out_activation"]
    if settings["game"] == "bigan":
        return {"G": generator(shape, z, g, depth, activation), "E": Encoder(shape, z, d, depth),
                "D": PairDiscriminator(shape, z, d, 4 * d if len(shape) == 3 else d)}
    if settings["game"] == "ganomaly":
        D = (DCGANDiscriminator(shape, d, 0, norm="batch") if len(shape) == 3
             else MLPDiscriminator(math.prod(shape), d, depth))
        return {"G": EncoderDecoderEncoder(shape, z, g, d, depth, activation), "D": D}
    if settings["game"] == "fanogan":  # a critic without batch norm: WGAN-GP's penalty is per sample
        D = (DCGANDiscriminator(shape, d, 0, norm="none") if len(shape) == 3
             else MLPDiscriminator(math.prod(shape), d, depth))
        return {"G": generator(shape, z, g, depth, activation), "E": Encoder(shape, z, d, depth), "D": D}
    raise ValueError(f"unknown anomaly game {settings['game']!r}; expected one of {GAMES}")


class Scorer(nn.Module):
    """x [N, *shape] in the networks' units -> (score [N] float32, higher = more anomalous, reconstruction
    [N, *shape]). ``settings()`` is the JSON that ``build_scorer`` rebuilds it from."""

    def __init__(self, settings: dict[str, Any], players: dict[str, nn.Module]):
        super().__init__()
        self._settings = dict(settings)
        for name, module in players.items():
            self.add_module(name, module)

    def settings(self) -> dict[str, Any]:
        return dict(self._settings)


class BiGANScorer(Scorer):
    """EGBAD's score (Zenati et al. 2018, section 3):

        A(x) = (1 - w) ||x - G(E(x))||_1 + w L_D(x)

    with L_D the feature-matching distance ||f(x, E(x)) - f(G(E(x)), E(x))||_1 on D's intermediate layer f
    (``score_term = "fm"``) or D's cross-entropy of the reconstruction, -log sigmoid(D(G(E(x)), E(x)))
    (``"ce"``); w = 0.1 as in the reference code. Norms are sums over a sample's values, as there."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = self.E(x)  # [N, z_dim]
        rec = self.G(z)  # [N, *shape]
        residual = (x - rec).abs().flatten(1).sum(1)  # [N]
        if self._settings["score_term"] == "ce":
            discriminator = F.softplus(-self.D(rec, z))  # -log sigmoid(logit)
        else:
            discriminator = (self.D.features(x, z) - self.D.features(rec, z)).abs().sum(1)
        w = self._settings["score_weight"]
        return ((1 - w) * residual + w * discriminator).float(), rec


class GANomalyScorer(Scorer):
    """GANomaly's score (Akcay et al. 2018, eq. 8): A(x) = ||G_E(x) - E(G(x))||_2^2, here averaged over the latent's
    units (the paper's mean squared error), so the scale does not grow with z_dim."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        rec, z, z_hat = self.G(x)
        return (z - z_hat).square().mean(1).float(), rec


class FAnoGANScorer(Scorer):
    """f-AnoGAN's score (Schlegl et al. 2019, eq. 5), the izi_f residuals E's training minimises
    (``score_term = "izif"``):

        A(x) = ||x - G(E(x))||^2 / n + kappa ||f(x) - f(G(E(x)))||^2 / n_d

    with f the critic's last hidden features, n and n_d the numbers of values, kappa = ``feature_weight`` (1).

    ``score_term = "knn"`` (gankit's variant, measured better on Fashion-MNIST's classes: bench/anomaly.py): the
    mean Euclidean distance from f(x) to its ``KNN`` nearest features among ``memory`` normal training samples,
    kept in the buffer ``memory`` [M, n_d]. The critic, trained on normal data alone, is the feature extractor;
    its features separate classes better than pixels do, where raw-pixel kNN is the strongest classical detector.
    """

    KNN = 5  # neighbours averaged (pyod's KNN default)

    def __init__(self, settings: dict[str, Any], players: dict[str, nn.Module]):
        super().__init__(settings, players)
        if settings.get("score_term") == "knn":
            self.register_buffer("memory", torch.zeros(settings["memory"], self.D.head.in_features))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        rec = self.G(self.E(x))
        if self._settings.get("score_term") == "knn":
            return self.nearest(self.D.features(x).float()), rec
        image = (x - rec).square().flatten(1).mean(1)
        features = (self.D.features(x) - self.D.features(rec)).square().mean(1)
        return (image + self._settings["feature_weight"] * features).float(), rec

    def nearest(self, f: Tensor) -> Tensor:  # [N, n_d] -> [N]: mean distance to the KNN nearest of memory
        squared = (f.square().sum(1, keepdim=True) - 2.0 * f @ self.memory.T
                   + self.memory.square().sum(1)[None, :])  # [N, M] = ||f_i - m_j||^2, by one matrix product
        k = min(self.KNN, self.memory.shape[0])
        return squared.clamp_min(0.0).sqrt().topk(k, dim=1, largest=False).values.mean(1)


SCORERS = {"bigan": BiGANScorer, "ganomaly": GANomalyScorer, "fanogan": FAnoGANScorer}
NEEDS = {"bigan": ("G", "E", "D"), "ganomaly": ("G",), "fanogan": ("G", "E", "D")}  # the players a score uses


def scorer_of(settings: dict[str, Any], players: dict[str, nn.Module]) -> Scorer:
    """The scorer over (shared) player modules: a trained engine's, or freshly built ones."""
    return SCORERS[settings["game"]](settings, {k: players[k] for k in NEEDS[settings["game"]]})


def build_scorer(settings: dict[str, Any]) -> Scorer:
    """A scorer with fresh weights from a checkpoint's ``model.scorer`` section; load the run's tensors into it."""
    return scorer_of(settings, anomaly_players(settings))
