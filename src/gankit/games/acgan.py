"""AC-GAN (Odena, Olah and Shlens 2017, "Conditional Image Synthesis with Auxiliary Classifier GANs").

G(z, y) is conditioned on a class as in the classic game; D is not: it sees x alone and has two heads on
the same features, a real/fake logit and K class logits. Both players add the auxiliary classification
loss (the paper's L_C) to their adversarial loss:

    L_D = L_adv(D) + w_D * (CE(C(x_real), y_real) + CE(C(G(z, y)), y))
    L_G = L_adv(G) + w_G * CE(C(G(z, y)), y)

with ``game.aux_weight_d`` = w_D and ``game.aux_weight_g`` = w_G (1 and 1 in the paper). Everything else of
the classic game applies: the configured adversarial loss, gradient penalties, DiffAugment, instance noise,
G's moving average.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import Config
from ..data import Dataset
from ..engine import Context
from ..errors import GankitError
from ..models import MODELS, head_width, resolved
from ..products import GeneratorProduct
from .classic import ClassicGame


class AuxiliaryClassifierD(nn.Module):
    """An unconditional D with a second head: K class logits on D's features (``D.features``, ``D.head``)."""

    def __init__(self, D: nn.Module, num_classes: int):
        super().__init__()
        self.d = D
        self.classes = nn.Linear(head_width(D, 'game.name = "acgan"'), num_classes)

    @property
    def batch_independent(self) -> bool:
        return bool(getattr(self.d, "batch_independent", False))

    def both(self, x: Tensor) -> tuple[Tensor, Tensor]:  # [B, ...] -> real/fake logits [B], class logits [B, K]
        h = self.d.features(x)
        return self.d.last_layer(h).float(), self.classes(h).float()

    def features(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.d.features(x)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:  # the real/fake logit alone (penalties use it)
        return self.d(x)


def acgan_models(config: Config, data: Dataset) -> tuple[nn.Module, nn.Module, dict]:
    """A class-conditional G and an unconditional D of the configured family, with D's class head."""
    if data.y is None or not data.num_classes:
        raise GankitError(f"game.name = \"acgan\" needs labelled data; {data.name} has no labels "
                          f"(for files: data.label_column)")
    model, activation = resolved(config, data)
    torch.manual_seed(config.seed)
    build = MODELS.get(model.family)
    G, _ = build(model, data.shape, data.num_classes, activation)
    _, D = build(model, data.shape, 0, activation)
    info = {"family": model.family, "shape": list(data.shape), "out_activation": activation}
    return G, AuxiliaryClassifierD(D, data.num_classes), info


class ACGANGame(ClassicGame):
    """The classic game's phases with the auxiliary classifier's terms added for both players."""

    def __init__(self, config: Config, data: Dataset):
        G, D, self.model_info = acgan_models(config, data)
        super().__init__(config, data, G, D)
        self.conditional = True  # the labels are what the class head learns, whatever model.conditional says
        self.product = GeneratorProduct(self.z_dim, data.num_classes)
        self.w_d, self.w_g, self.fake_d = config.game.aux_weight_d, config.game.aux_weight_g, config.game.aux_fake_d

    def d_loss(self, ctx: Context) -> Tensor:
        G, D = ctx.G, ctx.D
        batch = ctx.batch()
        real, y = batch["x"], batch["y"]  # [B, ...], [B]
        y_fake = ctx.labels(ctx.batch_size)
        fake = G(ctx.noise(ctx.batch_size, self.z_dim), y_fake).float()  # G is frozen in D's phase: no graph through G
        real, fake = self.d_input(real, ctx), self.d_input(fake, ctx)
        if self.joint_d:
            logits, classes = D.both(torch.cat([real, fake]))
            (real_logits, fake_logits), (real_classes, fake_classes) = logits.chunk(2), classes.chunk(2)
        else:
            (real_logits, real_classes), (fake_logits, fake_classes) = D.both(real), D.both(fake)
        adversarial = self.loss.d(real_logits, fake_logits)
        ce_real, ce_fake = F.cross_entropy(real_classes, y), F.cross_entropy(fake_classes, y_fake)
        loss = adversarial + self.w_d * (ce_real + self.fake_d * ce_fake)
        loss, logged = self.add_penalty(loss, adversarial, real, fake, None, ctx)
        self.log_d(ctx, logged, real_logits, fake_logits)
        ctx.log_many(("ce_real", "ce_fake", "class_acc_real"),
                     torch.stack([ce_real.detach(), ce_fake.detach(),
                                  (real_classes.detach().argmax(1) == y).float().mean()]))
        return loss

    def g_loss(self, ctx: Context) -> Tensor:
        G, D = ctx.G, ctx.D
        y = ctx.labels(ctx.batch_size)
        fake = self.d_input(G(ctx.noise(ctx.batch_size, self.z_dim), y).float(), ctx)
        fake_logits, fake_classes = D.both(fake)
        ce = F.cross_entropy(fake_classes, y)
        loss = self.loss.g(fake_logits, self.real_logits_for_g(ctx)) + self.w_g * ce
        ctx.log_many(("g_loss", "ce_g"), torch.stack([loss.detach(), ce.detach()]))
        return loss
