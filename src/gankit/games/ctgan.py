"""CTGAN (Xu, Skoularidou, Cuesta-Infante and Veeramachaneni, NeurIPS 2019), as sdv-dev/CTGAN trains it.

Players G (``models.tabular.TabularGenerator``) and D (``PacDiscriminator``), ``train.d_steps`` D updates per
G update. Training-by-sampling (section 4.3): each step draws a conditional vector per row, a discrete column
uniformly and one of its categories with probability proportional to log(1 + count), so rare categories are
seen; G is conditioned on it, and the real rows D compares with are drawn among the rows that have those
categories (the same conditions, shuffled, as the reference does). The losses (WGAN-GP, pac-wise):

    D: -(mean D(real, c') - mean D(G(z, c), c)) + lambda E[(||grad D(x^)||_2 - 1)^2],  x^ = a [real, c'] +
       (1 - a) [fake, c] with one a ~ U(0, 1) per pack, the norm over the whole pack (lambda = loss.gp_weight)
    G: -mean D(G(z, c), c) + CE(the chosen column's logits, the chosen category)

A table without discrete columns has no conditions: real rows come from the shuffled epochs (``ctx.batch()``).
Every draw is a device op on the engine's one seeded stream, so runs repeat and resume exactly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..config import Config
from ..data import Dataset
from ..engine import Context, Game, Group, Phase
from ..errors import GankitError
from ..models.tabular import PacDiscriminator, TabularGenerator, category_table, draw_conditions, one_hot, plain_spans
from ..products import TableProduct

D_STATS = ("d_loss", "gp", "w_distance")


class ConditionSampler:
    """CTGAN's training-by-sampling over the discrete spans of the encoded rows ``x`` [N, D].

    For the C categories of all discrete spans together: ``rows`` lists, span after span, the row indices sorted
    by category, and ``first``/``count`` say where each category's rows are in it.
    """

    def __init__(self, x: Tensor, discrete: list[list]):
        n = len(x)
        categories = [x[:, s[1]:s[1] + s[2]].argmax(1) for s in discrete]  # [N] per span
        counts = [torch.bincount(c, minlength=s[2]) for c, s in zip(categories, discrete)]
        self.frequencies = [(c.double() / n).tolist() for c in counts]  # the data's, for sampling
        log_counts = [torch.log1p(c.double()) for c in counts]
        self.cdf, self.offsets = category_table([(f / f.sum()).tolist() for f in log_counts])
        self.count = torch.cat(counts) if counts else torch.zeros(0, dtype=torch.long)  # [C]
        within = [torch.cumsum(c, 0) - c for c in counts]  # each category's first place in its span's sorted rows
        self.first = torch.cat([k * n + w for k, w in enumerate(within)]) if counts else self.count
        self.rows = torch.cat([torch.argsort(c, stable=True) for c in categories]) if counts else self.count
        # the conditional loss: cond index -> G's output column, and -> its span
        self.columns = torch.tensor([s[1] + j for s in discrete for j in range(s[2])], dtype=torch.long)
        self.span_of = torch.tensor([k for k, s in enumerate(discrete) for _ in range(s[2])], dtype=torch.long)
        self.width = int(self.count.numel())

    def to(self, device: torch.device) -> "ConditionSampler":
        for name in ("cdf", "offsets", "count", "first", "rows", "columns", "span_of"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def conditions(self, n: int, generator: torch.Generator) -> Tensor:  # [n] indices into cond
        return draw_conditions(self.cdf, self.offsets, n, generator)

    def real_rows(self, index: Tensor, generator: torch.Generator) -> Tensor:  # [n] rows with those categories
        u = torch.rand(index.shape, generator=generator, device=index.device)
        count = self.count[index]
        pick = (u * count).long().clamp_max_(count - 1)  # uniform among the category's rows
        return self.rows[self.first[index] + pick]

    def cross_entropy(self, raw: Tensor, index: Tensor) -> Tensor:
        """mean CE(logits of each row's chosen span, its chosen category): CTGAN's conditional loss."""
        logits = raw[:, self.columns]  # [n, C]
        chosen_span = self.span_of[index]  # [n]
        inside = self.span_of[None, :] == chosen_span[:, None]  # [n, C]
        lse = torch.logsumexp(logits.masked_fill(~inside, float("-inf")), dim=1)
        return (lse - logits.gather(1, index[:, None]).squeeze(1)).mean()


def pac_gradient_penalty(D: PacDiscriminator, real: Tensor, fake: Tensor, generator: torch.Generator | None = None,
                         scale: Tensor | None = None) -> Tensor:
    """E[(||grad_v D(v^)||_2 - 1)^2] over packs, v^ = a real + (1 - a) fake with one a ~ U[0, 1] per pack and the
    norm taken over the pack's m (D + C) inputs together (CTGAN's ``calc_gradient_penalty``; Gulrajani et al.
    2017 per sample). ``real``/``fake``: D's full inputs [B, D + C]; ``scale``: fp16's loss scale."""
    b, f = real.shape
    m = D.pack
    a = torch.rand(b // m, 1, 1, generator=generator, device=real.device).expand(b // m, m, f).reshape(b, f)
    v = (a * real.detach() + (1 - a) * fake.detach()).requires_grad_(True)  # [B, D + C]
    out = D.score(v).float().sum()
    (grad,) = torch.autograd.grad(out if scale is None else out * scale, v, create_graph=True)
    if scale is not None:
        grad = grad / scale
    return (grad.reshape(b // m, m * f).norm(dim=1) - 1.0).square().mean()


class CTGANGame(Game):
    def __init__(self, config: Config, data: Dataset):
        if not data.is_table:
            raise GankitError(f"game.name = \"ctgan\": needs a table (a CSV of mixed columns, gankit.from_dataframe, "
                              f"or a built-in table); data {data.name!r} is samples of shape {list(data.shape)}")
        table, model, train = data.table, config.model, config.train
        if data.normalize != "none" or data.x.dim() != 2 or data.x.shape[1] != table.width:
            raise GankitError(f"game.name = \"ctgan\": data {data.name!r} must be the table's encoded rows [N, "
                              f"{table.width}] with normalize = \"none\"; got {list(data.x.shape)}, {data.normalize!r}")
        if config.data.batch_size % model.pack:
            raise GankitError(f"game.name = \"ctgan\": data.batch_size = {config.data.batch_size} must be a multiple "
                              f"of model.pack = {model.pack} (D judges packs of rows)")
        self.config, self.data = config, data
        spans = plain_spans(table.spans)
        starts = [s[1] for s in spans]
        discrete = [starts.index(int(s.start)) for s in table.discrete]
        self.sampler = ConditionSampler(data.x, [spans[i] for i in discrete])
        cond_dim = self.sampler.width
        torch.manual_seed(config.seed)
        g_hidden, d_hidden = [model.g_hidden] * model.g_depth, [model.d_hidden] * model.d_depth
        G = TabularGenerator(spans, model.z_dim, cond_dim, g_hidden, model.gumbel_tau)
        D = PacDiscriminator(table.width, cond_dim, d_hidden, model.pack)
        self.players = {"G": G, "D": D}
        self.groups = [Group("g", ["G"], ema=train.ema), Group("d", ["D"])]
        self.phases = [Phase("d", self.d_loss, repeat=train.d_steps, freeze=()), Phase("g", self.g_loss)]
        self.product = TableProduct(G.z_dim, cond_dim=cond_dim)
        self.model_info = {"family": "tabular", "shape": [table.width], "num_classes": 0, "noise_dim": model.z_dim,
                           "z_dim": G.z_dim, "cond_dim": cond_dim, "spans": spans, "discrete": discrete,
                           "frequencies": self.sampler.frequencies, "g_hidden": g_hidden, "d_hidden": d_hidden,
                           "pack": model.pack, "gumbel_tau": model.gumbel_tau}
        self.joint = train.joint_d_batch  # real and fake in one pass of D: packs never straddle the two halves

    def setup(self, engine) -> None:
        self.device, self.world = engine.device, engine.world
        self.x = self.data.x.to(engine.device)
        self.sampler.to(engine.device)

    def fast_settings(self) -> dict[str, Any]:
        return {"joint_d_batch": self.joint}

    # ------------------------------------------------------------------------------------- pieces

    def _share(self, t: Tensor) -> Tensor:
        """This rank's slice of a global draw (every rank draws the whole batch, as ``engine.batches`` does)."""
        if not self.world.distributed:
            return t
        n = len(t) // self.world.size
        return t[self.world.rank * n:(self.world.rank + 1) * n]

    def _cond(self, index: Tensor) -> Tensor:  # [n] -> [n, C] one-hot
        return one_hot(index, self.sampler.width)

    def _conditions(self, ctx: Context) -> Tensor:
        return self._share(self.sampler.conditions(ctx.batch_size * self.world.size, ctx.generator))

    def _real(self, ctx: Context) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """(real rows [B, D], their conditions [B, C], G's conditions [B] as indices); None, None without
        discrete columns."""
        if not self.sampler.width:
            return ctx.batch()["x"], None, None
        n, g = ctx.batch_size * self.world.size, ctx.generator
        index = self.sampler.conditions(n, g)  # [n] for G
        real_index = index[torch.randperm(n, generator=g, device=self.device)]  # the same conditions, shuffled
        rows = self.sampler.real_rows(real_index, g)
        return self.x[self._share(rows)], self._cond(self._share(real_index)), self._share(index)

    # ------------------------------------------------------------------------------------- the phases

    def d_loss(self, ctx: Context) -> Tensor:
        G, D = ctx.G, ctx.D
        real, real_cond, index = self._real(ctx)
        cond = None if index is None else self._cond(index)
        with torch.no_grad():
            fake = G(ctx.noise(ctx.batch_size, G.z_dim), cond).float()
        real_in = real if cond is None else torch.cat([real, real_cond], dim=1)  # [B, D + C]
        fake_in = fake if cond is None else torch.cat([fake, cond], dim=1)
        if self.joint:
            real_scores, fake_scores = D.score(torch.cat([real_in, fake_in])).float().chunk(2)
        else:
            real_scores, fake_scores = D.score(real_in).float(), D.score(fake_in).float()
        distance = real_scores.mean() - fake_scores.mean()  # the critic's Wasserstein estimate
        gp = pac_gradient_penalty(D, real_in, fake_in, ctx.generator, ctx.loss_scale("d"))
        if ctx.scaling("d"):  # an fp16 step whose inner gradient overflowed is skipped by the scaler, not divergence
            gp = gp.nan_to_num(0.0, 0.0, 0.0)
        loss = -distance + self.config.loss.gp_weight * gp
        ctx.log_many(D_STATS, torch.stack([loss, gp, distance]).detach())
        return loss

    def g_loss(self, ctx: Context) -> Tensor:
        G, D = ctx.G, ctx.D
        index = self._conditions(ctx) if self.sampler.width else None
        cond = None if index is None else self._cond(index)
        fake, raw = G.outputs(ctx.noise(ctx.batch_size, G.z_dim), cond)
        adversarial = -D(fake, cond).float().mean()
        if index is None:
            ctx.log("g_loss", adversarial)
            return adversarial
        cond_loss = self.sampler.cross_entropy(raw, index)
        loss = adversarial + cond_loss
        ctx.log_many(("g_loss", "cond_loss"), torch.stack([loss, cond_loss]).detach())
        return loss
