"""GANomaly (Akcay, Atapour-Abarghouei and Breckon 2018, "GANomaly: Semi-Supervised Anomaly Detection via
Adversarial Training"), trained on normal data.

G is an encoder-decoder-encoder: z = G_E(x), x_hat = G_D(z), z_hat = E(x_hat). D judges x against x_hat. G
minimises three terms (the paper's eq. 4-7, with its weights as the defaults of the recipes):

    L_G = w_adv ||f(x) - f(x_hat)||_2 + w_con ||x - x_hat||_1 + w_enc ||z - z_hat||_2
    L_D = L_adv(D(x), D(x_hat))

with f D's last hidden features (feature matching), each norm a mean over the values as in the reference code,
w_adv = ``loss.adversarial_weight`` (1), w_con = ``loss.pixel_weight`` (the recipes' 50) and w_enc =
``game.encoder_weight`` (1). The anomaly score is ||z - z_hat||^2 averaged over the latent
(``models.anomaly.GANomalyScorer``): an anomaly's code is not kept through the decoder that only learnt normal
data. (The reference also re-initialises D when its loss falls below 1e-5; not done here.)
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..config import Config
from ..data import Dataset
from ..engine import Context, Group, Phase
from .anomaly import AnomalyGame


class GANomalyGame(AnomalyGame):
    """Players G (encoder-decoder-encoder) and D; groups d = [D] and g = [G]."""

    name = "ganomaly"

    def __init__(self, config: Config, data: Dataset):
        super().__init__(config, data)
        self.weights = (config.loss.adversarial_weight, config.loss.pixel_weight, config.game.encoder_weight)
        self.groups = [Group("d", ["D"]), Group("g", ["G"])]
        self.phases = [Phase("d", self.d_loss, repeat=config.train.d_steps), Phase("g", self.g_loss)]

    def d_loss(self, ctx: Context) -> Tensor:
        x = self.batch(ctx, fresh=True)
        with torch.no_grad():
            x_hat = ctx.G(x)[0]
        real, fake = ctx.D(x).float(), ctx.D(x_hat).float()
        loss = self.loss.d(real, fake)
        self.log_d(ctx, loss, real, fake)
        return loss

    def g_loss(self, ctx: Context) -> Tensor:
        x = self.batch(ctx)
        x_hat, z, z_hat = ctx.G(x)
        w_adv, w_con, w_enc = self.weights
        adversarial = (ctx.D.features(x) - ctx.D.features(x_hat)).float().square().mean()
        contextual = (x - x_hat).float().abs().mean()
        encoder = (z - z_hat).float().square().mean()
        loss = w_adv * adversarial + w_con * contextual + w_enc * encoder
        ctx.log_many(("g_loss", "g_adv", "g_con", "g_enc"),
                     torch.stack([loss, adversarial, contextual, encoder]).detach())
        return loss
