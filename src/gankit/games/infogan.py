"""InfoGAN (Chen et al. 2016, "InfoGAN: Interpretable Representation Learning by Information Maximizing GANs").

G's input holds latent codes c beside the noise: categorical codes c_i ~ Cat(K_i) and continuous codes
c_j ~ U(-1, 1). A network Q, a head on D's features (its body is D's), predicts c from G(z, c), and both G
and Q (with D's body) minimise lambda * (-E log Q(c | G(z, c))), a lower bound on -I(c; G(z, c)) up to
the codes' entropy (TF-GAN's ``mutual_information_penalty``):

    L_D,Q = L_adv(D) + lambda * MI(c, Q(D_body(G(z, c))))
    L_G   = L_adv(G) + lambda * MI(c, Q(D_body(G(z, c))))

with MI = sum_i CE(logits_i, c_i) + sum_j (c_j - mu_j)^2 / 2 (a unit Gaussian's -log N(c_j; mu_j, 1)). D and Q are one optimizer group.

Each code is a function of one standard-normal slot u of G's input (c_i = floor(Phi(u) K_i), c_j =
2 Phi(u) - 1), so a generator of z ~ N(0, I) of ``z_dim + codes`` values draws valid codes: sampling,
evaluation, export, ONNX and serving need nothing new. ``code_slots`` turns chosen codes into their slots.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import Config
from ..data import Dataset
from ..engine import Context, Group, Phase
from ..models import MODELS, head_width, resolved
from ..models.codes import InfoGenerator
from ..products import GeneratorProduct
from .classic import ClassicGame


class QHead(nn.Module):
    """Q's own layers on D's features: categorical logits per code, and the mean of a unit-variance Gaussian per
    continuous code (the paper's factored Gaussian with its spread fixed: a learnt one drives -log Q of the
    continuous codes far below zero, and that term then swamps the categorical ones)."""

    def __init__(self, features: int, categorical: Sequence[int], continuous: int, hidden: int = 128):
        super().__init__()
        self.categorical, self.continuous = tuple(categorical), continuous
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(hidden, sum(self.categorical) + continuous))

    def forward(self, h: Tensor) -> tuple[list[Tensor], Tensor]:  # [B, F] -> [B, K_i] logits per code, [B, C]
        out = self.net(h).float()
        logits = list(out[:, :sum(self.categorical)].split(list(self.categorical), dim=1))
        return logits, out[:, sum(self.categorical):]


def mutual_information_penalty(q: tuple[list[Tensor], Tensor], cats: list[Tensor], cont: Tensor) -> Tensor:
    """-E log Q(c | x): cross-entropy of each categorical code plus the unit Gaussian's negative log-likelihood
    of each continuous code, 0.5 (c - mu)^2 (without the constant), summed over codes, averaged over the batch."""
    logits, mean = q
    ce = sum(F.cross_entropy(lg, c.long()) for lg, c in zip(logits, cats)) if cats else torch.zeros((), device=mean.device)
    nll = 0.5 * (cont - mean).square().sum(1).mean() if cont.shape[1] else 0.0
    return ce + nll


def infogan_models(config: Config, data: Dataset):
    game = config.game
    model, activation = resolved(config, data)
    torch.manual_seed(config.seed)
    build = MODELS.get(model.family)
    inner_dim = InfoGenerator.inner_dim(model.z_dim, game.categorical_codes, game.continuous_codes)
    inner, _ = build(replace(model, z_dim=inner_dim), data.shape, 0, activation)
    _, D = build(model, data.shape, 0, activation)
    G = InfoGenerator(inner, model.z_dim, game.categorical_codes, game.continuous_codes)
    Q = QHead(head_width(D, 'game.name = "infogan"'), game.categorical_codes, game.continuous_codes)
    codes = {"noise": model.z_dim, "categorical": list(game.categorical_codes), "continuous": game.continuous_codes}
    info = {"family": model.family, "shape": list(data.shape), "out_activation": activation, "infogan": codes}
    return G, D, Q, info


class InfoGANGame(ClassicGame):
    """Unsupervised (the data's labels are not used): players G, D and Q; groups g = [G], d = [D, Q]."""

    def __init__(self, config: Config, data: Dataset):
        G, D, Q, self.model_info = infogan_models(config, data)
        super().__init__(config, data, G, D)
        self.players["Q"] = Q
        self.groups = [Group("g", ["G"], ema=config.train.ema), Group("d", ["D", "Q"])]
        self.phases = [Phase("d", self.d_loss, repeat=config.train.d_steps, after=self.after_d),
                       Phase("g", self.g_loss)]
        self.conditional = False
        self.product = GeneratorProduct(G.z_dim)
        self.weight = config.game.info_weight

    def d_loss(self, ctx: Context) -> Tensor:
        G, D, Q = ctx.G, ctx.D, ctx.Q
        real = self.d_input(ctx.batch()["x"], ctx)
        z = ctx.noise(ctx.batch_size, G.z_dim)
        fake = self.d_input(G(z).float(), ctx)  # G is frozen in D's phase
        h_real, h_fake = D.features(real), D.features(fake)
        real_logits, fake_logits = D.last_layer(h_real).float(), D.last_layer(h_fake).float()
        adversarial = self.loss.d(real_logits, fake_logits)
        mi = mutual_information_penalty(Q(h_fake), *G.codes(z))
        loss = adversarial + self.weight * mi
        loss, logged = self.add_penalty(loss, adversarial, real, fake, None, ctx)
        self.log_d(ctx, logged, real_logits, fake_logits)
        ctx.log("mi_d", mi)
        return loss

    def g_loss(self, ctx: Context) -> Tensor:
        G, D, Q = ctx.G, ctx.D, ctx.Q
        z = ctx.noise(ctx.batch_size, G.z_dim)
        h = D.features(self.d_input(G(z).float(), ctx))
        q, (cats, cont) = Q(h), G.codes(z)
        mi = mutual_information_penalty(q, cats, cont)
        loss = self.loss.g(D.last_layer(h).float(), self.real_logits_for_g(ctx)) + self.weight * mi
        if cats:  # how often Q names the first categorical code G was given: the code is being used
            ctx.log("q_acc", (q[0][0].detach().argmax(1) == cats[0]).float().mean())
        ctx.log_many(("g_loss", "mi_g"), torch.stack([loss.detach(), mi.detach()]))
        return loss
