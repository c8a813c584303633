"""CTGAN's networks (Xu et al., NeurIPS 2019, "Modeling Tabular Data using Conditional GAN") and its conditions.

A table is encoded span by span (``gankit.data.table_transform``): a continuous column as a value in [-1, 1]
(tanh) and a one-hot mode (softmax), a categorical column as a one-hot category (softmax). The generator is
CTGAN's residual MLP over [z, cond]; its raw outputs are activated span by span. The Gumbel noise that makes a
softmax span a sample comes from G's input, not from a random draw inside it, so G is a deterministic function
of (z, cond): the same seed gives the same rows, and the module exports to ONNX.

    z [n, z_dim] = [noise (model.z_dim) | one normal per softmax entry]    cond [n, C]: CTGAN's conditional vector
    G(z, cond) -> [n, D]: tanh on value spans; softmax spans: Gumbel-softmax at temperature tau (training),
                          the one-hot of argmax(logits + Gumbel) (eval: a sample of softmax(logits))
    D(x, cond) -> [n / pack]: PacGAN critic over packs of ``pack`` rows of [x, cond]

``condition_vectors`` draws the conditions for sampling (a discrete column uniformly, then its category with
the data's frequency, or one fixed category for ``--where column=value``); ``tabular_inputs`` gives a seed's
(z, cond); ``build_tabular_generator`` rebuilds G from a checkpoint's ``model`` section.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from ..errors import GankitError

SPAN_FIELDS = ("column", "start", "width", "activation", "role")
UNIFORM_EPS = 1e-6  # Phi(e) is kept in [eps, 1 - eps]: float32's 1 - 1e-7 rounds, and log(0) is -inf


def plain_spans(spans: Sequence[Any]) -> list[list]:
    """Spans (objects with SPAN_FIELDS, dicts, or lists in that order) as JSON-able lists in SPAN_FIELDS order."""
    out = []
    for s in spans:
        if isinstance(s, dict):
            values = [s[f] for f in SPAN_FIELDS]
        elif isinstance(s, (list, tuple)):
            values = list(s)
        else:
            values = [getattr(s, f) for f in SPAN_FIELDS]
        out.append([str(values[0]), int(values[1]), int(values[2]), str(values[3]), str(values[4])])
    return out


def gumbel_from_normal(e: Tensor) -> Tensor:
    """Gumbel(0, 1) noise from standard normals: u = Phi(e) ~ U(0, 1), then -log(-log u).

    The law torch's gumbel_softmax draws (-log of an Exp(1)), as a function of G's input; u is clamped to
    [1e-6, 1 - 1e-6], which cuts the tails at probability 1e-6 each.
    """
    u = 0.5 * (1.0 + torch.erf(e * math.sqrt(0.5)))
    return -torch.log(-torch.log(u.clamp(UNIFORM_EPS, 1.0 - UNIFORM_EPS)))


class Residual(nn.Module):
    """Linear -> BatchNorm1d -> ReLU, with the block's input concatenated to its output (CTGAN's G block)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.fc, self.bn = nn.Linear(in_dim, out_dim), nn.BatchNorm1d(out_dim)

    def forward(self, h: Tensor) -> Tensor:  # [n, in] -> [n, out + in]
        return torch.cat([torch.relu(self.bn(self.fc(h))), h], dim=1)


class TabularGenerator(nn.Module):
    """CTGAN's generator: residual blocks of ``hidden`` widths over [noise, cond], a linear layer to the D encoded
    features, activated per span (see the module docstring). ``outputs`` also gives the raw values, whose softmax
    spans are the logits of CTGAN's conditional loss."""

    def __init__(self, spans: Sequence[Any], noise_dim: int, cond_dim: int = 0, hidden: Sequence[int] = (256, 256),
                 tau: float = 0.2):
        super().__init__()
        self.spans = plain_spans(spans)
        self.noise_dim, self.cond_dim, self.hidden, self.tau = noise_dim, cond_dim, [int(h) for h in hidden], tau
        self.width = sum(s[2] for s in self.spans)
        if [s[1] for s in self.spans] != [sum(t[2] for t in self.spans[:i]) for i in range(len(self.spans))]:
            raise ValueError("TabularGenerator: spans must tile the encoded features in order, from 0")
        value_cols = [s[1] for s in self.spans if s[3] == "tanh"]
        soft = [s for s in self.spans if s[3] == "softmax"]
        if len(value_cols) + len(soft) != len(self.spans) or any(s[2] != 1 for s in self.spans if s[3] == "tanh"):
            raise ValueError("TabularGenerator: a span's activation is \"tanh\" (one value) or \"softmax\"")
        self.gumbel_dim = sum(s[2] for s in soft)
        self.z_dim = noise_dim + self.gumbel_dim
        w = max((s[2] for s in soft), default=0)
        # softmax spans padded to [S, W]: soft_cols reads their logits from the raw output (padding reads column
        # 0 and is masked), gumbel_slot their noise from z's tail; valid_pos picks the S*W grid's real entries
        soft_cols = torch.tensor([[s[1] + min(j, s[2] - 1) for j in range(w)] for s in soft],
                                 dtype=torch.long).reshape(len(soft), w)
        valid = torch.tensor([[j < s[2] for j in range(w)] for s in soft], dtype=torch.bool).reshape(len(soft), w)
        slot = torch.zeros(len(soft), w, dtype=torch.long)
        slot[valid] = torch.arange(self.gumbel_dim)
        cols = value_cols + soft_cols[valid].tolist()  # where [values | softmax entries] go in the output
        order = torch.empty(self.width, dtype=torch.long)
        order[torch.tensor(cols, dtype=torch.long)] = torch.arange(self.width)
        for name, t in (("value_cols", torch.tensor(value_cols, dtype=torch.long)), ("soft_cols", soft_cols.flatten()),
                        ("soft_valid", valid), ("gumbel_slot", slot.flatten()), ("slots", torch.arange(w)),
                        ("valid_pos", valid.flatten().nonzero().squeeze(1)), ("order", order)):
            self.register_buffer(name, t, persistent=False)  # derived from the spans: not part of the weights
        dim, blocks = noise_dim + cond_dim, []
        for h in self.hidden:
            blocks.append(Residual(dim, h))
            dim += h
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(dim, self.width)

    def outputs(self, z: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(activated rows [n, D], raw values [n, D]) for z [n, z_dim] and cond [n, cond_dim]."""
        if z.shape[1] != self.z_dim:
            raise ValueError(f"TabularGenerator: z has {z.shape[1]} values per row; expected z_dim = {self.z_dim} "
                             f"({self.noise_dim} noise + {self.gumbel_dim} Gumbel)")
        h = z[:, :self.noise_dim]
        if self.cond_dim:
            if cond is None:
                raise ValueError(f"TabularGenerator is conditional: it needs cond [n, {self.cond_dim}] "
                                 f"(gankit.models.tabular.condition_vectors)")
            h = torch.cat([h, cond.to(h.dtype)], dim=1)  # [n, noise + C]
        raw = self.head(self.body(h)).float()  # [n, D]
        parts = [torch.tanh(raw[:, self.value_cols])]  # [n, V]
        if self.gumbel_dim:
            n, (s, w) = z.shape[0], self.soft_valid.shape
            logits = raw[:, self.soft_cols].view(n, s, w)
            gumbel = gumbel_from_normal(z[:, self.noise_dim:].float())[:, self.gumbel_slot].view(n, s, w)
            y = (logits + gumbel).masked_fill(~self.soft_valid, float("-inf"))  # [n, S, W]
            if self.training:
                probs = torch.softmax(y / self.tau, dim=-1)
            else:  # argmax(logits + Gumbel) ~ Categorical(softmax(logits)): a one-hot sample
                probs = (self.slots == y.argmax(-1, keepdim=True)).to(raw.dtype)
            parts.append(probs.flatten(1)[:, self.valid_pos])  # [n, T]
        return torch.cat(parts, dim=1)[:, self.order], raw

    def forward(self, z: Tensor, cond: Tensor | None = None) -> Tensor:  # [n, z_dim], [n, C] -> [n, D]
        return self.outputs(z, cond)[0]


class PacDiscriminator(nn.Module):
    """CTGAN's critic: rows [x, cond] in packs of ``pack`` (PacGAN, Lin et al. 2018), Linear -> LeakyReLU(0.2)
    -> Dropout(0.5) per hidden layer, one score per pack."""

    def __init__(self, in_dim: int, cond_dim: int = 0, hidden: Sequence[int] = (256, 256), pack: int = 10):
        super().__init__()
        self.in_dim, self.cond_dim, self.pack = in_dim, cond_dim, pack
        dim, layers = pack * (in_dim + cond_dim), []
        for h in hidden:
            layers += [nn.Linear(dim, h), nn.LeakyReLU(0.2), nn.Dropout(0.5)]
            dim = h
        layers.append(nn.Linear(dim, 1))
        self.seq = nn.Sequential(*layers)

    def score(self, v: Tensor) -> Tensor:  # [B, D + C] -> [B / pack]
        if v.shape[0] % self.pack:
            raise ValueError(f"PacDiscriminator has pack = {self.pack} but got {v.shape[0]} rows; expected a multiple")
        return self.seq(v.reshape(v.shape[0] // self.pack, -1)).squeeze(1)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:  # [B, D], [B, C] -> [B / pack]
        return self.score(x if cond is None else torch.cat([x, cond.to(x.dtype)], dim=1))


# ------------------------------------------------------------------------------------------- conditions


def category_table(frequencies: Sequence[Sequence[float]], device: torch.device | str = "cpu"
                   ) -> tuple[Tensor, Tensor]:
    """Per discrete span, its categories' cumulative probabilities [K, W] (each row ends at exactly 1, and so is
    its padding), and the span's first index in the conditional vector [K]."""
    widths = [len(f) for f in frequencies]
    probs = torch.zeros(len(widths), max(widths, default=0), dtype=torch.float64)
    for k, f in enumerate(frequencies):
        probs[k, :len(f)] = torch.as_tensor(f, dtype=torch.float64)
    cdf = probs.cumsum(1)
    cdf = (cdf / cdf[:, -1:]).float() if len(widths) else cdf.float()  # x / x == 1 exactly: no category past the end
    offsets = torch.tensor([sum(widths[:k]) for k in range(len(widths))], dtype=torch.long)
    return cdf.to(device), offsets.to(device)


def draw_conditions(cdf: Tensor, offsets: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
    """[n] indices into the conditional vector: a span uniformly, then its category by inverse CDF on ``cdf``
    [K, W] (CTGAN's sampling). Device ops on the generator's stream, no host sync (torch.multinomial checks its
    input on the host); a category of probability 0 is never drawn."""
    span = torch.randint(len(offsets), (n,), generator=generator, device=cdf.device)
    u = torch.rand(n, generator=generator, device=cdf.device)
    category = (cdf[span] < u[:, None]).sum(1)  # the first category whose cumulative probability reaches u
    return offsets[span] + category


def one_hot(index: Tensor, width: int) -> Tensor:
    """[n] -> [n, width] float one-hots, without F.one_hot's host-side range check."""
    return torch.zeros(len(index), width, device=index.device).scatter_(1, index[:, None], 1.0)


def condition_vectors(discrete: Sequence[Any], frequencies: Sequence[Sequence[float]], n: int,
                      generator: torch.Generator | None = None, fixed: tuple[int, int] | None = None) -> Tensor:
    """Conditions [n, C] for sampling: each row one-hot in one discrete span's block, as CTGAN's
    ``sample_original_condvec`` (span uniformly, its category with the data's frequency); ``fixed`` = (span
    index, category): every row conditioned on that category. ``discrete``: the spans (or their widths)."""
    widths = [int(getattr(s, "width", s[2] if isinstance(s, (list, tuple)) else s)) for s in discrete]
    if [len(f) for f in frequencies] != widths:
        raise ValueError(f"condition_vectors: frequencies of {[len(f) for f in frequencies]} categories for spans "
                         f"of widths {widths}")
    device = generator.device if generator is not None else torch.device("cpu")
    cdf, offsets = category_table(frequencies, device)
    if fixed is not None:
        k, c = fixed
        if not (0 <= k < len(widths) and 0 <= c < widths[k]):
            raise GankitError(f"condition (column {k}, category {c}): the table has {len(widths)} discrete columns "
                              f"of {widths} categories")
        index = torch.full((n,), int(offsets[k]) + c, dtype=torch.long, device=device)
    elif not widths:
        return torch.zeros(n, 0, device=device)
    else:
        index = draw_conditions(cdf, offsets, n, generator)
    return one_hot(index, sum(widths))  # [n, C]


def tabular_inputs(model: dict[str, Any], n: int, seed: int = 0, fixed: tuple[int, int] | None = None
                   ) -> tuple[Tensor, Tensor | None]:
    """The seeded (z [n, z_dim], cond [n, C] or None) of a checkpoint's ``model`` section: the same seed, the same
    rows. z is drawn first, then the conditions, from one generator."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, model["z_dim"], generator=g)
    if not model["cond_dim"]:
        return z, None
    discrete = [model["spans"][i] for i in model["discrete"]]
    return z, condition_vectors(discrete, model["frequencies"], n, g, fixed)


def build_tabular_generator(model: dict[str, Any]) -> TabularGenerator:
    """G as a checkpoint's ``model`` section (the ctgan game's ``model_info``) describes it, with fresh weights."""
    return TabularGenerator(model["spans"], model["noise_dim"], model["cond_dim"], model["g_hidden"],
                            model["gumbel_tau"])
