"""CycleGAN (Zhu, Park, Isola and Efros, ICCV 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks"): two translators G: A -> B and F: B -> A, two discriminators D_B (is it a real B?) and
D_A, trained on unpaired images of the two domains.

    G, F: L_adv(G; D_B(G(a))) + L_adv(F; D_A(F(b)))
          + lambda (||F(G(a)) - a||_1 + ||G(F(b)) - b||_1)              (cycle consistency)
          + lambda_id lambda (||G(b) - b||_1 + ||F(a) - a||_1)           (identity; when A and B have one shape)
    D_B:  L_adv(D_B(b), D_B(pool(G(a)))),  D_A alike

with ``loss.cycle_weight`` = lambda (10), ``loss.identity_weight`` = lambda_id (0.5), the least-squares loss of
the paper (loss.name = "least-squares" in the recipe; gankit's least-squares G loss is half the reference's MSE, so
the recipe's loss.adversarial_weight = 2 matches it) and D fed from a history of ``game.history`` generated
images (Shrivastava et al. 2017: each new image, once the history is full, is swapped for a stored one with
probability 1/2). G and F share one optimizer, as do D_A and D_B (the reference code chains their parameters).
Domain B's images are the data's ``x`` (epochs of it); domain A's are drawn uniformly at each step.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..config import Config
from ..data import Dataset
from ..engine import Context, Group, Phase
from .translation import TranslationGame, discriminator, generator, to_net


class ImageHistory:
    """The last ``size`` generated images D learns from (a device tensor and how many are stored)."""

    def __init__(self, size: int, shape: tuple[int, ...]):
        self.size, self.shape = size, shape
        self.images = torch.zeros(size, *shape)
        self.count = 0

    def to(self, device: torch.device) -> "ImageHistory":
        self.images = self.images.to(device)
        return self

    def query(self, fake: Tensor, generator: torch.Generator) -> Tensor:
        """What D sees for this batch of generated images [B, ...]: the first images fill the history and pass
        through; after that each is, with probability 1/2, swapped for a random stored one."""
        if not self.size:
            return fake
        fake = fake.detach()
        free = min(self.size - self.count, len(fake))
        if free:
            self.images[self.count:self.count + free] = fake[:free]
            self.count += free
        rest = fake[free:]
        if not len(rest):
            return fake
        swap = torch.rand(len(rest), generator=generator, device=fake.device) < 0.5  # [R]
        slot = torch.randint(self.size, (len(rest),), generator=generator, device=fake.device)  # [R]
        stored = self.images[slot]
        out = torch.where(swap[:, None, None, None], stored, rest)
        keep = torch.where(swap[:, None, None, None], rest, stored)
        self.images.index_copy_(0, slot, keep)  # a swapped slot now holds the new image
        return torch.cat([fake[:free], out])


class CycleGANGame(TranslationGame):
    name = "cyclegan"
    paired = False

    def __init__(self, config: Config, data: Dataset):
        super().__init__(config, data)
        a_channels, b_channels = self.translation.source.shape[1], data.shape[0]
        G = generator(config, self.name, a_channels, b_channels)
        F = generator(config, self.name, b_channels, a_channels)
        self.players = {"G": G, "F": F, "D_A": discriminator(config, a_channels), "D_B": discriminator(config, b_channels)}
        self.groups = [Group("g", ["G", "F"], ema=config.train.ema), Group("d", ["D_A", "D_B"])]
        self.phases = [Phase("g", self.g_loss), Phase("d", self.d_loss, repeat=config.train.d_steps)]
        self.identity = self.weights.identity_weight > 0 and tuple(self.translation.source.shape[1:]) == data.shape
        self.history_a = ImageHistory(config.game.history, tuple(self.translation.source.shape[1:]))
        self.history_b = ImageHistory(config.game.history, data.shape)
        self.describe(G)

    def setup(self, engine) -> None:
        self.device, self.world = engine.device, engine.world
        self.a = to_net(self.translation.source).to(engine.device)
        self.history_a.to(engine.device)
        self.history_b.to(engine.device)

    def _domain_a(self, ctx: Context) -> Tensor:
        """A batch of domain A, drawn uniformly (every rank draws the global batch and takes its slice)."""
        n = ctx.batch_size * self.world.size
        index = torch.randint(len(self.a), (n,), generator=ctx.generator, device=self.device)
        if self.world.distributed:
            index = index[self.world.rank * ctx.batch_size:(self.world.rank + 1) * ctx.batch_size]
        return self.a[index]

    def g_loss(self, ctx: Context) -> Tensor:
        G, F = ctx.G, ctx.F
        a, b = self._domain_a(ctx), ctx.batch()["x"]
        fake_b, fake_a = G(a), F(b)
        adversarial = self.adversarial_g(ctx.D_B, fake_b, b) + self.adversarial_g(ctx.D_A, fake_a, a)
        cycle = (F(fake_b).float() - a).abs().mean() + (G(fake_a).float() - b).abs().mean()
        w = self.weights
        loss = w.adversarial_weight * adversarial + w.cycle_weight * cycle
        names, values = ["g_adv", "cycle"], [adversarial, cycle]
        if self.identity:
            identity = (G(b).float() - b).abs().mean() + (F(a).float() - a).abs().mean()
            loss = loss + w.identity_weight * w.cycle_weight * identity
            names.append("identity")
            values.append(identity)
        ctx.scratch["cycle"] = (a, b, fake_a.detach(), fake_b.detach())
        ctx.log_many(("g_loss", *names), torch.stack([loss, *values]).detach())
        return loss

    def d_loss(self, ctx: Context) -> Tensor:
        a, b, fake_a, fake_b = ctx.scratch["cycle"]
        if ctx.repeat == 0:  # each generated batch enters the history once
            ctx.scratch["pooled"] = (self.history_a.query(fake_a, ctx.generator),
                                     self.history_b.query(fake_b, ctx.generator))
        pooled_a, pooled_b = ctx.scratch["pooled"]
        d_b = self.adversarial_d(ctx.D_B, b, pooled_b)  # least squares: (MSE(D(b), 1) + MSE(D(pool), 0)) / 2, the
        d_a = self.adversarial_d(ctx.D_A, a, pooled_a)  # reference's D loss
        loss = d_a + d_b
        ctx.log_many(("d_loss", "d_a", "d_b"), torch.stack([loss, d_a, d_b]).detach())
        return loss

    def state(self) -> tuple[dict[str, Tensor], dict]:
        """The histories, so a resumed run feeds D what an unbroken one would."""
        return ({"history.a": self.history_a.images, "history.b": self.history_b.images},
                {"history_count": [self.history_a.count, self.history_b.count]})

    def load_state(self, tensors: dict[str, Tensor], meta: dict) -> None:
        if "history.a" in tensors:
            self.history_a.images.copy_(tensors["history.a"])
            self.history_b.images.copy_(tensors["history.b"])
            self.history_a.count, self.history_b.count = meta["history_count"]
