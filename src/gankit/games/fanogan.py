"""f-AnoGAN (Schlegl, Seeböck, Waldstein, Langs and Schmidt-Erfurth 2019, "f-AnoGAN: Fast unsupervised anomaly
detection with generative adversarial networks"), trained on normal data in two stages.

Stage 1, a Wasserstein GAN with gradient penalty (Gulrajani et al. 2017) on the normal data:

    D:  E[D(G(z))] - E[D(x)] + lambda E[(||grad D(x_hat)||_2 - 1)^2]       (train.d_steps critic updates per G's)
    G:  -E[D(G(z))]

Stage 2 (the last ``game.encoder_steps`` steps, by default a third of them), G and D fixed: an encoder E learns to invert G on the data, the
paper's izi_f training:

    E:  ||x - G(E(x))||^2 / n + kappa ||f(x) - f(G(E(x)))||^2 / n_d

with f the critic's last hidden features and kappa = ``game.feature_weight`` (1). The anomaly score is the same
sum of residuals (``game.score_term = "izif"``, the paper's), or (``"knn"``, gankit's variant) the mean distance of
a sample's critic features to its 5 nearest among ``game.memory`` normal training samples' (``models.anomaly.
FAnoGANScorer``); their features are computed from the critic at each checkpoint and travel with it. The stages
are phases with step ranges, so resuming in either stage needs no schedule state.
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
        steps = config.train.steps
        switch = steps - (config.game.encoder_steps or max(steps // 3, 1))  # the first step of stage 2
        self.gp_weight = config.loss.gp_weight
        self.kappa = config.game.feature_weight
        self.groups = [Group("d", ["D"]), Group("g", ["G"]), Group("e", ["E"])]
        self.memory_rows = None
        if self.settings["score_term"] == "knn":  # a fixed sample of the normal training data, drawn once
            pick = torch.Generator().manual_seed(config.seed)
            self.memory_rows = torch.randperm(len(data), generator=pick)[:config.game.memory]
            self.settings["memory"] = len(self.memory_rows)
        self.phases = [Phase("d", self.d_loss, repeat=config.train.d_steps, stop=switch),
                       Phase("g", self.g_loss, stop=switch),
                       Phase("e", self.e_loss, start=switch)]

    def state(self) -> tuple[dict[str, Tensor], dict]:
        return self.scorer_state(), {}

    @torch.no_grad()
    def scorer_state(self) -> dict[str, Tensor]:
        """The critic's features of the memory samples, as the scorer's ``memory`` buffer (kNN scores only)."""
        if self.memory_rows is None:
            return {}
        D = self.players["D"]
        device = next(D.parameters()).device
        rows = self.data.x[self.memory_rows]
        features = [D.features(rows[i:i + 512].to(device)).float().cpu() for i in range(0, len(rows), 512)]
        return {"memory": torch.cat(features)}

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
