"""SRGAN (Ledig et al., CVPR 2017, "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial
Network"), with ESRGAN's choices as options (Wang et al. 2018): an SRResNet G upsamples a low-resolution image
by ``data.factor``; D judges high-resolution images alone, patch by patch.

    D: L_adv(D(x_HR), D(G(x_LR)))
    G: lambda_pix ||G(x_LR) - x_HR||_1 + lambda_content ||phi(G(x_LR)) - phi(x_HR)||^2 + lambda_adv L_adv(G)

``loss.pixel_weight`` = lambda_pix (ESRGAN's L1; SRGAN used MSE), ``loss.content_weight`` = lambda_content on the
feature network phi of ``loss.content_network`` (a bundled classifier, or VGG-19 weights given as a file, never
downloaded: SRGAN's VGG54), ``loss.adversarial_weight`` = lambda_adv (SRGAN's 1e-3). ``loss.name =
"relativistic"`` is ESRGAN's relativistic average D. With ``loss.adversarial_weight = 0`` there is no D: SRResNet,
the paper's pixel-loss baseline.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..config import Config
from ..data import Dataset
from ..engine import Context, Group, Phase
from ..errors import GankitError
from .translation import TranslationGame, discriminator, generator, to_net


class SRGANGame(TranslationGame):
    name = "srgan"

    def __init__(self, config: Config, data: Dataset):
        super().__init__(config, data)
        factor = self.translation.factor
        if factor not in (2, 4, 8):
            raise GankitError(f"game.name = \"srgan\": data {data.name!r} has targets {factor}x its inputs' side; "
                              f"SRResNet upsamples by 2, 4 or 8 (for translation at one size use game.name = "
                              f"\"pix2pix\")")
        G = generator(config, self.name, self.translation.source.shape[1], data.shape[0], factor)
        self.players = {"G": G}
        self.groups = [Group("g", ["G"], ema=config.train.ema)]
        self.phases = [Phase("g", self.g_loss)]
        self.adversarial = self.weights.adversarial_weight > 0
        if self.adversarial:
            self.players["D"] = discriminator(config, data.shape[0])
            self.groups.append(Group("d", ["D"]))
            self.phases.insert(0, Phase("d", self.d_loss, repeat=config.train.d_steps))
        self.content = None
        if self.weights.content_weight > 0:
            if not self.weights.content_network:
                raise GankitError("loss.content_weight > 0 needs loss.content_network: fashion-mnist, digits (the "
                                  "bundled classifiers) or a VGG-19 .safetensors file")
            from ..models.content import content_network

            self.content = content_network(self.weights.content_network, data.shape[0])
        self.describe(G)

    def setup(self, engine) -> None:
        if self.content is not None:
            self.content.to(engine.device)

    def fields(self) -> dict[str, Tensor]:
        return {"a": to_net(self.translation.source)}

    def d_loss(self, ctx: Context) -> Tensor:
        pair = self.pair(ctx, fresh=True)
        with torch.no_grad():
            fake = ctx.G(pair["a"])
        loss = self.adversarial_d(ctx.D, pair["x"], fake)
        ctx.log("d_loss", loss.detach())
        return loss

    def g_loss(self, ctx: Context) -> Tensor:
        pair = self.pair(ctx)
        real = pair["x"]
        fake = ctx.G(pair["a"]).float()
        pixel = (fake - real).abs().mean()
        loss = self.weights.pixel_weight * pixel
        names, values = ["pixel_l1"], [pixel]
        if self.content is not None:
            from ..models.content import content_loss

            content = content_loss(self.content, fake, real)
            loss = loss + self.weights.content_weight * content
            names.append("content")
            values.append(content)
        if self.adversarial:
            adversarial = self.adversarial_g(ctx.D, fake, real)
            loss = loss + self.weights.adversarial_weight * adversarial
            names.append("g_adv")
            values.append(adversarial)
        ctx.log_many(("g_loss", *names), torch.stack([loss, *values]).detach())
        return loss
