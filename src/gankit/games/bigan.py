"""EGBAD (Zenati, Foo, Lecouat, Manek and Chandrasekhar 2018, "Efficient GAN-Based Anomaly Detection"), a BiGAN
(Donahue, Krähenbühl and Darrell 2017, "Adversarial Feature Learning") trained on normal data.

G maps z ~ N(0, I) to x, an encoder E maps x to z, and D judges pairs: real (x, E(x)) against generated
(G(z), z). G and E learn together (one optimizer group) to make D mistake each kind for the other:

    D:     L_adv(D(x, E(x)), D(G(z), z))                 (real pairs labelled 1, generated 0)
    G, E:  L_adv(D(G(z), z), D(x, E(x)))                 (the labels swapped)

with the configured adversarial loss (loss.name; the paper's is the logistic one). At the optimum E inverts
G on the data, so a normal x is reconstructed by G(E(x)) and an anomaly is not. The anomaly score
(``models.anomaly.BiGANScorer``) is (1 - w) ||x - G(E(x))||_1 + w * D's term, w = ``game.score_weight``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..config import Config
from ..data import Dataset
from ..engine import Context, Group, Phase
from .anomaly import AnomalyGame


class BiGANGame(AnomalyGame):
    """Players G, E and D; groups d = [D] and g = [G, E]."""

    name = "bigan"

    def __init__(self, config: Config, data: Dataset):
        super().__init__(config, data)
        self.groups = [Group("d", ["D"]), Group("g", ["G", "E"])]
        self.phases = [Phase("d", self.d_loss, repeat=config.train.d_steps), Phase("g", self.ge_loss)]

    def d_loss(self, ctx: Context) -> Tensor:
        x = self.batch(ctx, fresh=True)
        z = ctx.noise(len(x))
        with torch.no_grad():
            ex, gz = ctx.E(x), ctx.G(z)
        real, fake = ctx.D(x, ex).float(), ctx.D(gz, z).float()
        loss = self.loss.d(real, fake)
        self.log_d(ctx, loss, real, fake)
        return loss

    def ge_loss(self, ctx: Context) -> Tensor:
        x = self.batch(ctx)
        z = ctx.noise(len(x))
        ex = ctx.E(x)
        real, fake = ctx.D(x, ex).float(), ctx.D(ctx.G(z), z).float()
        loss = self.loss.d(fake, real)  # D's game with the labels swapped
        ctx.log("g_loss", loss.detach())
        if ctx.measure:  # how well G inverts E on this batch: what the score mostly measures
            with torch.no_grad():
                ctx.log("rec_l1", (ctx.G(ex.detach()) - x).abs().mean().float())
        return loss
