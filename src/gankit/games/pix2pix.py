"""pix2pix (Isola, Zhu, Zhou and Efros, CVPR 2017, "Image-to-Image Translation with Conditional Adversarial
Networks"): a U-Net G maps an image a to its translation, a PatchGAN D judges (a, b) pairs patch by patch.

    D: [L_adv(D(a, b), D(a, G(a)))] / 2          (the paper halves D's loss, slowing D against G)
    G: w_adv L_adv(G; D(a, G(a))) + lambda ||b - G(a)||_1

with the configured adversarial loss (loss.name; pix2pix's is the logistic one), ``loss.adversarial_weight`` =
w_adv and ``loss.pixel_weight`` = lambda (100, as the paper). G's dropout is its noise: the paper found
noise inputs ignored. With ``loss.adversarial_weight = 0`` there is no D: the L1-only baseline of the paper's
table 1 ("L1"), the same G trained on the pixel loss alone.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..config import Config
from ..data import Dataset
from ..engine import Context, Group, Phase
from .translation import TranslationGame, check_size, discriminator, generator, to_net


class Pix2PixGame(TranslationGame):
    name = "pix2pix"

    def __init__(self, config: Config, data: Dataset):
        super().__init__(config, data)
        a_channels, b_channels = self.translation.source.shape[1], data.shape[0]
        G = generator(config, self.name, a_channels, b_channels)
        check_size(G, data)
        self.players = {"G": G}
        self.groups = [Group("g", ["G"], ema=config.train.ema)]
        self.phases = [Phase("g", self.g_loss)]
        self.adversarial = self.weights.adversarial_weight > 0
        if self.adversarial:
            self.players["D"] = discriminator(config, a_channels + b_channels)
            self.groups.append(Group("d", ["D"]))
            self.phases.insert(0, Phase("d", self.d_loss, repeat=config.train.d_steps))
        self.describe(G)

    def fields(self) -> dict[str, Tensor]:
        return {"a": to_net(self.translation.source)}

    def d_loss(self, ctx: Context) -> Tensor:
        pair = self.pair(ctx, fresh=True)
        a, b = pair["a"], pair["x"]
        with torch.no_grad():
            fake = ctx.G(a)
        loss = 0.5 * self.adversarial_d(ctx.D, torch.cat([a, b], 1), torch.cat([a, fake], 1))
        ctx.log("d_loss", loss.detach())
        return loss

    def g_loss(self, ctx: Context) -> Tensor:
        pair = self.pair(ctx)
        a, b = pair["a"], pair["x"]
        fake = ctx.G(a)
        l1 = (fake.float() - b).abs().mean()
        loss = self.weights.pixel_weight * l1
        if self.adversarial:
            adversarial = self.adversarial_g(ctx.D, torch.cat([a, fake], 1), torch.cat([a, b], 1))
            loss = loss + self.weights.adversarial_weight * adversarial
            ctx.log("g_adv", adversarial.detach())
        ctx.log_many(("g_loss", "l1"), torch.stack([loss, l1]).detach())
        return loss
