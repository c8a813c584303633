"""f-AnoGAN (Schlegl, Seeböck, Waldstein, Langs and Schmidt-Erfurth 2019, "f-AnoGAN: Fast unsupervised anomaly
detection with generative adversarial networks"), trained on normal data in two stages.

Stage 1, a Wasserstein GAN with gradient penalty (Gulrajani et al. 2017) on the normal data:

    D:  E[D(G(z))] - E[D(x)] + lambda E[(||grad D(x_hat)||_2 - 1)^2]       (train.d_steps critic updates per G's)
    G:  -E[D(G(z))]

Stage 2 (the last ``game.encoder_steps`` steps), G and D fixed: an encoder E learns to invert G on the data, the
paper's izi_f training:

    E:  ||x - G(E(x))||^2 / n + kappa ||f(x) - f(G(E(x)))||^2 / n_d

with f the critic's last hidden features and kappa = ``game.feature_weight`` (1). The anomaly score is the same
sum of residuals (``models.anomaly.FAnoGANScorer``). The stages are phases with step ranges, so resuming in either
stage needs no schedule state.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..config import Config
from ..data import Dataset
from ..engine import Context, Group, Phase
from ..regularizers import gradient_penalty
from .anomaly import AnomalyGame


class FAnoGANGame(AnomalyGame):
    """Players G, D and E; groups d = [D], g = [G] (stage 1) and e = [E] (stage 2)."""

    name = "fanogan"

    def __init__(self, config: Config, data: Dataset):
        super().__init__(config, data)
        switch = config.train.steps - config.game.encoder_steps  # the first step of stage 2
        self.gp_weight = config.loss.gp_weight
        self.kappa = config.game.feature_weight
        self.groups = [Group("d", ["D"]), Group("g", ["G"]), Group("e", ["E"])]
        self.phases = [Phase("d", self.d_loss, repeat=config.train.d_steps, stop=switch),
                       Phase("g", self.g_loss, stop=switch),
                       Phase("e", self.e_loss, start=switch)]

    def d_loss(self, ctx: Context) -> Tensor:
        x = ctx.batch()["x"]
        with torch.no_grad():
            fake = ctx.G(ctx.noise(len(x)))
        real_score, fake_score = ctx.D(x).float(), ctx.D(fake).float()
        critic = fake_score.mean() - real_score.mean()  # -(Wasserstein estimate)
        penalty = gradient_penalty(ctx.D, x, fake, generator=ctx.generator, scale=ctx.loss_scale("d"))
        loss = critic + self.gp_weight * penalty
        ctx.log_many(("d_loss", "wasserstein", "gp"), torch.stack([loss, -critic, penalty]).detach())
        return loss

    def g_loss(self, ctx: Context) -> Tensor:
        loss = -ctx.D(ctx.G(ctx.noise(ctx.batch_size))).float().mean()
        ctx.log("g_loss", loss.detach())
        return loss

    def e_loss(self, ctx: Context) -> Tensor:
        x = ctx.batch()["x"]
        rec = ctx.G(ctx.E(x))
        image = (x - rec).float().square().mean()
        features = (ctx.D.features(x) - ctx.D.features(rec)).float().square().mean()
        loss = image + self.kappa * features
        ctx.log_many(("e_loss", "e_image", "e_features"), torch.stack([loss, image, features]).detach())
        return loss
