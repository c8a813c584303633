"""The classic game: G(z, y) against D(x, y), ``train.d_steps`` D updates per G update.

Everything the first gankit trainer did, as two phases: the configured loss (``loss.name``), gradient
penalties taken lazily every ``loss.penalty_every`` D updates, DiffAugment and instance noise on what D
sees, feature matching and historical averaging, Wasserstein weight clipping, PacGAN packing and
minibatch std (in the models), G's moving average (``train.ema``), the reuse of D's last fake batch for
G's update (``train.reuse_fake``), and the warning when D has won.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..augment import annealed_std, diff_augment, instance_noise, parse_policy
from ..config import Config
from ..data import Dataset
from ..engine import Context, Game, Group, HistoricalAverage, Phase
from ..errors import GankitError
from ..losses import get_loss
from ..products import GeneratorProduct
from ..regularizers import clip_weights, dragan_penalty, gradient_penalty, r1_penalty, r2_penalty

D_WON_LOGS = 5  # logged intervals in a row with D rejecting fakes confidently before the warning
# D's statistics, added in one operation per D update; "d_acc_fake" is summed as the share of fakes *above* the
# threshold (one comparison for both batches) and turned around in summarize().
D_STATS = ("d_loss", "d_real", "d_fake", "p_real", "p_fake", "d_acc_real", "d_acc_fake")


class ClassicGame(Game):
    """G and D of any architecture: ``G(z, y=None) -> x`` and ``D(x, y=None) -> logits [B]``."""

    def __init__(self, config: Config, data: Dataset, G: nn.Module, D: nn.Module):
        train, loss_cfg = config.train, config.loss
        self.config, self.data = config, data
        self.players = {"G": G, "D": D}
        self.groups = [Group("g", ["G"], ema=train.ema), Group("d", ["D"])]
        self.phases = [Phase("d", self.d_loss, repeat=train.d_steps, freeze=(), after=self.after_d),
                       Phase("g", self.g_loss, after=self.after_g)]
        self.conditional = data.y is not None and config.model.conditional
        self.z_dim = int(getattr(G, "z_dim", config.model.z_dim))  # a recurrent G reads noise for every step
        self.product = GeneratorProduct(self.z_dim, data.num_classes if self.conditional else 0)
        self.loss = get_loss(loss_cfg.name, loss_cfg.label_smoothing)
        self.penalty = loss_cfg.penalty if loss_cfg.penalty != "none" else ("gp" if loss_cfg.name == "wgan-gp" else "none")
        self.augment = parse_policy(train.augment)
        if self.augment and not data.is_image:
            raise GankitError(f"train.augment = {train.augment!r}: DiffAugment transforms images; this data is rows "
                              f"of {data.num_features} values (use train.instance_noise instead)")
        if loss_cfg.feature_matching and not callable(getattr(D, "features", None)):
            raise GankitError("loss.feature_matching needs D.features(x, y) (the built-in models have it); "
                              "your D has no features method")
        self.history: dict[str, HistoricalAverage] | None = None  # made in setup(), on the device
        # Where D's output separates real (above) from fake (below): 0 for logits, 1/2 for least squares' targets.
        self.d_threshold = 0.5 if loss_cfg.name == "least-squares" else 0.0
        self._d_won_logs = 0

    def setup(self, engine) -> None:
        self.engine = engine
        weight = self.config.loss.historical_averaging
        if weight:
            self.history = {name: HistoricalAverage(self.players[name], weight) for name in ("G", "D")}
        # D's real and fake batches in one pass, where D says each sample's score depends on that sample alone
        self.joint_d = self.config.train.joint_d_batch and bool(getattr(self.players["D"], "batch_independent", False))

    def fast_settings(self) -> dict[str, Any]:
        return {"joint_d_batch": self.joint_d, "reuse_fake": self.config.train.reuse_fake}


    # ------------------------------------------------------------------------------------- the phases

    def d_loss(self, ctx: Context) -> Tensor:
        """D on a fresh real batch and a fresh fake batch. On the last of D's updates with ``train.reuse_fake``,
        the fake batch is made with G's graph and kept for G's update, which saves that update a pass of G."""
        G, D = ctx.G, ctx.D
        keep_fake = self.config.train.reuse_fake and ctx.repeat == self.config.train.d_steps - 1
        batch = ctx.batch()
        real, y = batch["x"], batch.get("y")  # [B, ...], [B]
        with torch.set_grad_enabled(keep_fake):
            fake = G(ctx.noise(ctx.batch_size, self.z_dim), y).float()
        if keep_fake:
            ctx.scratch["fake"], fake = (fake, y), fake.detach()
        real, fake = self.d_input(real, ctx), self.d_input(fake, ctx)
        if self.joint_d:  # one pass over both batches: half the calls, larger products
            both = D(torch.cat([real, fake]), None if y is None else torch.cat([y, y])).float()
            real_logits, fake_logits = both.chunk(2)
        else:
            real_logits, fake_logits = D(real, y).float(), D(fake, y).float()
        loss = self.loss.d(real_logits, fake_logits)
        loss, logged = self.add_penalty(loss, loss, real, fake, y, ctx)
        if self.history is not None:
            h = self.history["D"].penalty(D)
            loss, logged = loss + h, logged + h
        self.log_d(ctx, logged, real_logits, fake_logits)
        return loss

    def add_penalty(self, loss: Tensor, logged: Tensor, real: Tensor, fake: Tensor, y: Tensor | None,
                    ctx: Context) -> tuple[Tensor, Tensor]:
        """(loss, logged) plus the configured gradient penalty at this D update, if it is one."""
        penalty = self.d_penalty(real, fake, y, ctx)
        if penalty is None:
            return loss, logged
        # fp16: a loss scale too large for the penalty's inner gradient makes it inf at this step; the scaler then
        # skips the step and halves its scale, which is not divergence (nor logged as such)
        return loss + penalty, logged + (penalty.nan_to_num(0.0, 0.0, 0.0) if ctx.scaling("d") else penalty)

    def log_d(self, ctx: Context, logged: Tensor, real_logits: Tensor, fake_logits: Tensor) -> None:
        """D's loss and scores (D_STATS) in one addition to the window sums."""
        logits = torch.stack([real_logits.detach(), fake_logits.detach()])  # [2, B]: few, batched ops per step
        ctx.log_many(D_STATS, torch.cat([logged.detach().reshape(1), logits.mean(1), torch.sigmoid(logits).mean(1),
                                         (logits > self.d_threshold).float().mean(1)]))

    def real_logits_for_g(self, ctx: Context) -> Tensor | None:
        """D's logits on a real batch for G's relativistic losses (None for the others)."""
        if not self.loss.relativistic:
            return None
        with torch.no_grad():
            return ctx.D(self.d_input(ctx.batch()["x"], ctx)).float()

    def after_d(self, ctx: Context) -> None:
        if self.history is not None:
            self.history["D"].update(ctx.D)
        if self.config.loss.name == "wasserstein":
            clip_weights(ctx.D, self.config.loss.clip)

    def g_loss(self, ctx: Context) -> Tensor:
        """G through D on the kept fake batch or a fresh one (and a real batch, for the relativistic losses and
        feature matching)."""
        G, D = ctx.G, ctx.D
        kept = ctx.scratch.pop("fake", None)
        if kept is not None:
            fake, y = kept
        else:
            y = ctx.labels(ctx.batch_size)
            fake = G(ctx.noise(ctx.batch_size, self.z_dim), y).float()
        fake = self.d_input(fake, ctx)
        fake_logits = D(fake, y).float()
        real_logits = None
        fm_weight = self.config.loss.feature_matching
        if self.loss.relativistic or fm_weight:
            batch = ctx.batch()
            real, y_real = self.d_input(batch["x"], ctx), batch.get("y")
            if self.loss.relativistic:
                with torch.no_grad():
                    real_logits = D(real, y_real).float()
        loss = self.loss.g(fake_logits, real_logits)
        if fm_weight:  # Salimans et al. 2016, 3.1: match the mean of D's features on real and generated batches
            with torch.no_grad():
                real_features = D.features(real, y_real).mean(0)
            loss = loss + fm_weight * (D.features(fake, y).mean(0) - real_features).square().sum()
        if self.history is not None:
            loss = loss + self.history["G"].penalty(G)
        ctx.log("g_loss", loss)  # a NaN/Inf loss makes the window's sum non-finite: checked at the log
        return loss

    def after_g(self, ctx: Context) -> None:
        if self.history is not None:
            self.history["G"].update(ctx.G)

    def d_input(self, x: Tensor, ctx: Context) -> Tensor:
        """What D sees of a real or generated batch: DiffAugment, then annealed instance noise, when configured.

        Both go to real and fake alike (and to G's step): augmenting only the real data would teach G to
        generate the augmentations (Zhao et al. 2020).
        """
        if self.augment:
            x = diff_augment(x, self.augment, ctx.generator)
        train = self.config.train
        if train.instance_noise:
            x = instance_noise(x, annealed_std(train.instance_noise, ctx.step, train.steps), ctx.generator)
        return x

    def d_penalty(self, real: Tensor, fake: Tensor, y: Tensor | None, ctx: Context) -> Tensor | None:
        """The configured gradient penalty, every ``loss.penalty_every`` D updates and then weighted as many times
        (lazy regularisation, Karras et al. 2020): the same expected push for a fraction of the cost."""
        every = self.config.loss.penalty_every
        d_updates = ctx.step * self.config.train.d_steps + ctx.repeat
        if self.penalty == "none" or d_updates % every:
            return None
        weight = self.config.loss.gp_weight * every
        D = ctx.D
        # fp16: the inner gradient is taken at the loss scale too (the scaler's factor, kept on the device)
        scale = ctx.loss_scale("d")
        scaled = {"scale": scale} if scale is not None else {}
        if self.penalty == "gp":
            return weight * gradient_penalty(D, real, fake, y, ctx.generator, **scaled)
        if self.penalty == "r1":
            return weight / 2 * r1_penalty(D, real, y, **scaled)  # gamma/2 E||grad D(x)||^2, Mescheder et al. 2018
        if self.penalty == "r2":
            return weight / 2 * r2_penalty(D, fake, y, **scaled)
        return weight * dragan_penalty(D, real, y, ctx.generator, **scaled)

    # ------------------------------------------------------------------------------------- the record and state

    def summarize(self, record: dict[str, Any]) -> dict[str, Any]:
        if "d_acc_fake" in record:
            record["d_acc_fake"] = 1.0 - record["d_acc_fake"]
        return record

    def watch(self, record: dict[str, Any], engine) -> None:
        """Warn once when D has won: it rejects generated samples confidently for several logged intervals."""
        name = self.config.loss.name
        if name in ("wasserstein", "wgan-gp") or "p_fake" not in record:
            return  # a critic's scores have no 'confident' level
        won = (record["d_fake"] < 0.1 and record["d_real"] > 0.9) if name == "least-squares" \
            else record["p_fake"] < 0.05 and record["d_acc_fake"] > 0.99
        self._d_won_logs = self._d_won_logs + 1 if won else 0
        if self._d_won_logs >= D_WON_LOGS:
            engine.warn("d-won", f"D has won: it has rejected generated samples with confidence (D(fake) = "
                                 f"{record['p_fake']:.3f}) for {D_WON_LOGS} logged intervals up to step {engine.step}, "
                                 f"so G's gradients are vanishing. Try loss.penalty = \"r1\", model.spectral_norm = "
                                 f"true, a lower train.d_lr, train.instance_noise, or the non-saturating loss")

    def state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        if self.history is None:
            return {}, {}
        tensors = {f"history.{name}.{i}": m for name, h in self.history.items() for i, m in enumerate(h.mean)}
        return tensors, {"history_count": {name: h.count for name, h in self.history.items()}}

    def load_state(self, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
        if self.history is None:
            return
        device = self.engine.device
        for name, h in self.history.items():
            if f"history.{name}.0" in tensors:
                h.mean = [tensors[f"history.{name}.{i}"].to(device) for i in range(len(h.mean))]
                h.count = meta["history_count"][name]
