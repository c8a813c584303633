"""TimeGAN (Yoon, Jarrett and van der Schaar, NeurIPS 2019), as its reference code trains it (jsyoon0823/TimeGAN).

Five recurrent networks: an embedder E (x -> latent h) and a recovery R (h -> x), a generator (noise ->
latent), a supervisor S (latent h_t -> h_{t+1}) and a discriminator D on latents. Three stages:

1. ``game.embedding_steps`` autoencoder steps: E and R minimise 10 sqrt(MSE(x, R(E(x)))).
2. ``game.supervised_steps`` supervised steps: S (with the generator's group) minimises MSE(h_{t+1}, S(h)_t).
3. joint steps, each two (G, then E and R) updates and one D update:
   G:    BCE(D(S(G(z))), 1) + BCE(D(G(z)), 1) + 100 sqrt(MSE_S) + 100 (|sd(x^) - sd(x)| + |mean(x^) - mean(x)|)
   E, R: 10 sqrt(MSE(x, R(E(x)))) + 0.1 MSE_S
   D:    BCE(D(E(x)), 1) + BCE(D(S(G(z))), 0) + BCE(D(G(z)), 0), only while that loss is above
         ``game.d_threshold`` (0.15 in the reference), judged on the batch it would learn from.

The generator, supervisor and recovery are one player, ``G`` (``TimeGANGenerator``): z -> x, the product that
sampling, evaluation and export use; its parts learn in two groups ("g": generator and supervisor; "e": the
embedder and G's recovery). The reference code's noise is U(0, 1) per step and feature; here it is Phi(z)
of z ~ N(0, I), the same law, so G is a generator of a standard-normal prior like every other. All losses
are taken in [0, 1] units as the reference's min-max scaled data are (gankit's minmax data are [-1, 1]:
halved and shifted for the losses); variable lengths are masked out of every term.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import distributed
from ..config import Config
from ..data import Dataset
from ..data.dataset import steps_mask
from ..engine import Context, Game, Group, Phase
from ..errors import GankitError
from ..models.timegan import RNNStack, build_timegan
from ..products import GeneratorProduct


def masked_mse(a: Tensor, b: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return F.mse_loss(a, b)
    m = mask[:, :, None].to(a.dtype).expand_as(a)
    return ((a - b).square() * m).sum() / m.sum().clamp_min(1)


def masked_bce(logits: Tensor, target: float, mask: Tensor | None) -> Tensor:
    full = F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target), reduction="none")
    if mask is None:
        return full.mean()
    m = mask[:, :, None].to(full.dtype)
    return (full * m).sum() / m.sum().clamp_min(1)


def moments(x: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """Mean and standard deviation over the batch at each step and feature ([T, F] each), valid entries only."""
    if mask is None:
        return x.mean(0), (x.var(0, unbiased=False) + 1e-6).sqrt()
    m = mask[:, :, None].to(x.dtype)
    n = m.sum(0).clamp_min(1)
    mean = (x * m).sum(0) / n
    var = ((x - mean).square() * m).sum(0) / n
    return mean, (var + 1e-6).sqrt()


class TimeGANGame(Game):
    def __init__(self, config: Config, data: Dataset):
        if not data.is_sequence or data.is_text:
            raise GankitError(f"game.name = \"timegan\" trains on numeric sequences [N, T, F]; data {data.name!r} is "
                              f"{'text' if data.is_text else f'samples of shape {list(data.shape)}'}")
        if data.shape[1] < 1:
            raise GankitError(f"data {data.name!r} has no features")
        game, model = config.game, config.model
        self.config, self.data = config, data
        self.unit = 0.5 if data.normalize == "minmax" else 1.0  # the reference's losses are in [0, 1] units
        activation = "tanh" if data.normalize == "minmax" else "none"
        torch.manual_seed(config.seed)
        G, D = build_timegan(model, data.shape, 0, activation)
        if data.lengths is not None:
            G.fit_lengths(data.lengths)
        E = RNNStack(data.shape[1], model.g_hidden, model.g_depth, model.g_hidden, "sigmoid", model.cell)
        self.players = {"E": E, "G": G, "D": D}
        train = config.train
        self.groups = [Group("e", ["E", "G.recovery"], lr=train.g_lr, betas=train.g_betas),
                       Group("g", ["G.generator", "G.supervisor"]), Group("d", ["D"])]
        a, b = game.embedding_steps, game.embedding_steps + game.supervised_steps
        joint = [Phase("g", self.g_joint, start=b), Phase("e", self.e_joint, start=b)]
        self.phases = [Phase("e", self.e_autoencoder, stop=a), Phase("g", self.g_supervised, start=a, stop=b),
                       *joint, *joint, Phase("d", self.d_loss, start=b)]
        self.product = GeneratorProduct(G.z_dim)
        self.model_info = {"family": "timegan", "shape": list(data.shape), "out_activation": activation}
        self.d_threshold = game.d_threshold

    # ------------------------------------------------------------------------------------- pieces

    def _real(self, ctx: Context) -> tuple[Tensor, Tensor | None]:
        batch = ctx.batch()
        lengths = batch.get("lengths")
        return batch["x"], None if lengths is None else steps_mask(lengths, batch["x"].shape[1])

    def _noise(self, ctx: Context, n: int) -> tuple[Tensor, Tensor | None]:
        z = ctx.noise(n, ctx.G.z_dim)
        if self.data.lengths is None:
            return z, None
        return z, steps_mask(ctx.G.lengths(z), self.data.shape[0])

    def _supervised(self, ctx: Context, h: Tensor, mask: Tensor | None) -> Tensor:
        """MSE(h_{t+1}, S(h)_t): the supervisor's one-step-ahead error on latents h."""
        s = ctx.G.supervisor(h)
        return masked_mse(h[:, 1:], s[:, :-1], None if mask is None else mask[:, 1:])

    def _reconstruction(self, ctx: Context, x: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        h = ctx.E(x)
        mse = masked_mse(ctx.G.to_data(h) * self.unit, x * self.unit, mask)
        return h, mse

    # ------------------------------------------------------------------------------------- the stages

    def e_autoencoder(self, ctx: Context) -> Tensor:
        x, mask = self._real(ctx)
        _, mse = self._reconstruction(ctx, x, mask)
        ctx.log("e_rec", mse.detach().sqrt())
        loss = 10 * mse.sqrt()
        ctx.log("e_loss", loss)
        return loss

    def g_supervised(self, ctx: Context) -> Tensor:
        x, mask = self._real(ctx)
        with torch.no_grad():
            h = ctx.E(x)
        loss = self._supervised(ctx, h, mask)
        ctx.log("s_loss", loss)
        return loss

    def g_joint(self, ctx: Context) -> Tensor:
        x, mask = ctx.scratch["real"] = self._real(ctx)  # the embedder's update after this one learns from it too
        z, fake_mask = self._noise(ctx, len(x))
        G, D = ctx.G, ctx.D
        e_hat, h_hat = G.latent(z)
        x_hat = G.to_data(h_hat)
        adversarial = masked_bce(D(h_hat), 1.0, fake_mask) + masked_bce(D(e_hat), 1.0, fake_mask)
        with torch.no_grad():
            h = ctx.E(x)
        supervised = self._supervised(ctx, h, mask)
        mean_hat, sd_hat = moments(x_hat * self.unit, fake_mask)
        mean, sd = moments(x * self.unit, mask)
        moment = (sd_hat - sd).abs().mean() + (mean_hat - mean).abs().mean()
        loss = adversarial + 100 * (supervised + 1e-12).sqrt() + 100 * moment
        ctx.log_many(("g_adv", "s_loss", "g_moments"), torch.stack([adversarial, supervised, moment]).detach())
        ctx.log("g_loss", loss)
        return loss

    def e_joint(self, ctx: Context) -> Tensor:
        x, mask = ctx.scratch.pop("real")  # the batch G's update just used, as the reference feeds both the same
        h, mse = self._reconstruction(ctx, x, mask)
        loss = 10 * mse.sqrt() + 0.1 * self._supervised(ctx, h, mask)
        ctx.log("e_rec", mse.detach().sqrt())
        ctx.log("e_loss", loss)
        return loss

    def d_loss(self, ctx: Context) -> Tensor | None:
        x, mask = self._real(ctx)
        z, fake_mask = self._noise(ctx, len(x))
        with torch.no_grad():
            h = ctx.E(x)
            e_hat, h_hat = ctx.G.latent(z)
        D = ctx.D
        loss = masked_bce(D(h), 1.0, mask) + masked_bce(D(h_hat), 0.0, fake_mask) + masked_bce(D(e_hat), 0.0, fake_mask)
        ctx.log("d_loss", loss)
        level = loss.detach().float()
        if ctx.world.distributed:  # every rank decides on the mean, so all update or none does
            level = distributed.sum_over_ranks(level.clone()) / ctx.world.size
        learns = bool(level > self.d_threshold)  # a host sync per joint step, as the reference's check is
        ctx.log("d_updates", torch.tensor(float(learns), device=loss.device))
        return loss if learns else None
