"""Recurrent G and D for sequences [B, T, F] and text (one-hot [B, T, V]), the RCGAN recipe (Esteban et al. 2017).

G reads noise at every step through a GRU or LSTM and writes one step of output per step: ``z_dim`` fresh
values per step beside ``z_global`` values drawn once per sequence (on sines, per-step noise alone made
jittery traces and dropped the slow ones: discriminative score 0.39 against 0.20 with it, 3,000 steps); D reads a
sequence through its own recurrent layers and judges either the whole sequence (its final state) or every
step (one logit per step, each a sample of the loss, as RCGAN's D does). Labels are embedded and fed at
every step of both, as RCGAN conditions.

G's input is one flat z ~ N(0, I) of ``1 + z_global + T * per_step`` values, so sampling, export and serving
treat it like any generator of a prior. Its first coordinate is the sequence's length: Phi(z_0) picks a
quantile of the data's length distribution (``fit_lengths``), and the steps after it are zero, as the
data's padding is; for data of one length it is unused. Text G feeds each emitted character back as the
next step's input and draws it by straight-through Gumbel-softmax (Jang et al. 2017): the forward pass
emits a one-hot sample, the backward pass the softmax's gradient. The Gumbel noise is the per-step
noise's last V coordinates, -log(-log Phi(z)), so a sample is a function of z alone (seeded, exportable).
After the end symbol (vocab[0]) every step is zero, like the data's padding; as the data's lengths count the end
symbol, an item still open at the last step of its drawn length ends there (every item has one end symbol).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from . import MODELS
from .mlp import batch_spread

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}
CELL_STEPS = {"gru": nn.GRUCell, "lstm": nn.LSTMCell}


def uniform(z: Tensor) -> Tensor:
    """N(0, 1) -> U(0, 1) by the normal CDF, kept inside (0, 1) so logs stay finite."""
    return (0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))).clamp(1e-6, 1 - 1e-6)


def drawn_lengths(z0: Tensor, cdf: Tensor) -> Tensor:
    """[B] lengths that z_0 ~ N(0, 1) draws from a length CDF [T] (P(length <= t + 1)): the first t with
    P(length <= t) >= Phi(z_0). What the generators compute, and what export and sampling recompute from z."""
    return 1 + (uniform(z0.float())[:, None] > cdf[:-1]).sum(1)


class RNNGenerator(nn.Module):
    def __init__(self, noise_dim: int, shape: tuple[int, ...], hidden: int = 64, depth: int = 2,
                 num_classes: int = 0, embed_dim: int = 16, out_activation: str = "none", cell: str = "gru",
                 gumbel_tau: float = 1.0, global_dim: int = 0):
        super().__init__()
        self.global_dim = global_dim  # noise drawn once per sequence, fed at every step beside the step's own
        self.steps, self.features = int(shape[0]), int(shape[1])
        self.shape = (self.steps, self.features)
        self.text = out_activation == "gumbel"
        self.noise_dim, self.num_classes, self.cell, self.tau = noise_dim, num_classes, cell, gumbel_tau
        self.per_step = noise_dim + (self.features if self.text else 0)  # text: V Gumbel coordinates per step
        self.z_dim = 1 + global_dim + self.steps * self.per_step
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        width = noise_dim + global_dim + (embed_dim if num_classes else 0) + (self.features if self.text else 0)
        if self.text:  # step by step: the previous character is part of the next step's input
            step = CELL_STEPS[cell]
            self.rnn = nn.ModuleList([step(width if i == 0 else hidden, hidden) for i in range(depth)])
        else:
            self.rnn = CELLS[cell](width, hidden, num_layers=depth, batch_first=True)
        self.out = nn.Linear(hidden, self.features)
        self.activation = {"tanh": nn.Tanh(), "sigmoid": nn.Sigmoid()}.get(out_activation, nn.Identity())
        # P(length <= t + 1) for t < T: all mass at T (every sequence full length) until fit_lengths
        self.register_buffer("length_cdf", torch.cat([torch.zeros(self.steps - 1), torch.ones(1)]))

    def fit_lengths(self, lengths: Tensor) -> None:
        """Draw lengths like the data's: the empirical CDF of ``lengths`` [N] (1..T)."""
        counts = torch.bincount(lengths.long().cpu() - 1, minlength=self.steps)[:self.steps].double()
        self.length_cdf.copy_((counts.cumsum(0) / counts.sum()).float())

    def lengths(self, z: Tensor) -> Tensor:
        """[B, z_dim] -> [B] the length each z draws (for the data's lengths; T for fixed-length data)."""
        return drawn_lengths(z[:, 0], self.length_cdf)

    def _conditioned(self, noise: Tensor, y: Tensor | None, extra: Tensor | None = None) -> Tensor:
        """Each step's noise with what every step sees: the sequence's own noise and the label's embedding."""
        parts = [noise] if extra is None or not extra.shape[1] else [noise, extra[:, None].expand(-1, self.steps, -1)]
        if self.embed is not None:
            if y is None:
                raise ValueError(f"RNNGenerator is conditional ({self.num_classes} classes) and needs labels y")
            parts.append(self.embed(y)[:, None].expand(-1, self.steps, -1))
        return torch.cat(parts, dim=2) if len(parts) > 1 else noise

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:  # [B, z_dim] -> [B, T, F]
        whole = z[:, 1:1 + self.global_dim]
        per = z[:, 1 + self.global_dim:].view(-1, self.steps, self.per_step)
        lengths = self.lengths(z)
        alive = (torch.arange(self.steps, device=z.device) < lengths[:, None]).to(z.dtype)  # [B, T]
        if self.text:
            return self._text(per, y, lengths, whole) * alive[:, :, None]
        h = self.rnn(self._conditioned(per, y, whole))[0]  # [B, T, hidden]
        return self.activation(self.out(h)) * alive[:, :, None]

    def _text(self, per: Tensor, y: Tensor | None, lengths: Tensor, whole: Tensor | None = None) -> Tensor:
        """One character per step, fed back; zero after the end symbol. The drawn length counts the end symbol,
        as the data's lengths do: an item still open at its last step (lengths - 1) ends there."""
        noise, gumbel_u = per[..., :self.noise_dim], uniform(per[..., self.noise_dim:])
        inputs = self._conditioned(noise, y, whole)  # [B, T, noise (+ global) (+ embed)]
        B = per.shape[0]
        state = [per.new_zeros(B, cell.hidden_size) for cell in self.rnn]
        memory = [per.new_zeros(B, cell.hidden_size) for cell in self.rnn] if self.cell == "lstm" else None
        previous = per.new_zeros(B, self.features)  # no character before the first
        ended = per.new_zeros(B, 1)
        outputs = []
        for t in range(self.steps):
            v = torch.cat([inputs[:, t], previous], dim=1)
            for i, cell in enumerate(self.rnn):
                if memory is None:
                    state[i] = cell(v, state[i])
                else:
                    state[i], memory[i] = cell(v, (state[i], memory[i]))
                v = state[i]
            logits = self.out(v) - torch.log(-torch.log(gumbel_u[:, t]))  # + Gumbel noise
            soft = torch.softmax(logits / self.tau, dim=1)
            hard = nn.functional.one_hot(soft.argmax(1), self.features).to(soft.dtype)
            char = (hard - soft).detach() + soft  # straight-through: one-hot forward, softmax backward
            last = (lengths == t + 1)[:, None].to(soft.dtype)  # the drawn length's last step: the end symbol
            char = char * (1 - last) + nn.functional.pad(last, (0, self.features - 1))
            char = char * (1 - ended)  # zero after the end symbol
            ended = torch.maximum(ended, torch.maximum(hard[:, :1].detach(), last))  # vocab[0] ends the item
            outputs.append(char)
            previous = char
        return torch.stack(outputs, dim=1)


class RNNDiscriminator(nn.Module):
    """x [B, T, F] (+ label embedding at every step) -> recurrent layers -> logits: [B] for ``judge = "sequence"``
    (the final state; both directions' when bidirectional), [B * T] for ``judge = "step"`` (one per step, RCGAN).
    ``features`` is the final state, or the mean of the per-step states, before the linear head."""

    def __init__(self, shape: tuple[int, ...], hidden: int = 64, depth: int = 1, num_classes: int = 0,
                 embed_dim: int = 16, cell: str = "gru", bidirectional: bool = False, judge: str = "sequence",
                 minibatch_std: bool = False):
        super().__init__()
        self.minibatch_std = minibatch_std  # the batch's spread as one more feature (Karras et al. 2018)
        self.steps, self.features_in = int(shape[0]), int(shape[1])
        self.num_classes, self.judge, self.cell = num_classes, judge, cell
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        width = self.features_in + (embed_dim if num_classes else 0)
        self.rnn = CELLS[cell](width, hidden, num_layers=depth, batch_first=True, bidirectional=bidirectional)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1) + int(minibatch_std), 1)

    @property
    def batch_independent(self) -> bool:
        """No batch statistics (unless minibatch std): real and fake may share one pass."""
        return not self.minibatch_std

    def _states(self, x: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor]:
        if self.embed is not None:
            if y is None:
                raise ValueError(f"RNNDiscriminator is conditional ({self.num_classes} classes) and needs labels y")
            x = torch.cat([x, self.embed(y)[:, None].expand(-1, x.shape[1], -1)], dim=2)
        out, last = self.rnn(x)  # [B, T, H * dirs]; GRU: h [layers * dirs, B, H]; LSTM: (h, c)
        h = last[0] if self.cell == "lstm" else last
        dirs = 2 if self.rnn.bidirectional else 1
        return out, torch.cat([h[-dirs:][i] for i in range(dirs)], dim=1)  # the last layer's final states

    def _spread(self, out: Tensor, final: Tensor) -> Tensor:  # [B, 1]
        return batch_spread(out.mean(1) if self.judge == "step" else final)

    def features(self, x: Tensor, y: Tensor | None = None) -> Tensor:  # [B, T, F] -> [B, H * dirs (+ 1)]
        out, final = self._states(x, y)
        h = out.mean(1) if self.judge == "step" else final
        return torch.cat([h, self._spread(out, final)], dim=1) if self.minibatch_std else h

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        out, final = self._states(x, y)
        if self.judge == "step":
            if self.minibatch_std:
                out = torch.cat([out, self._spread(out, final)[:, None].expand(-1, out.shape[1], -1)], dim=2)
            return self.head(out).reshape(-1)  # [B * T]: each step a sample of the loss
        if self.minibatch_std:
            final = torch.cat([final, self._spread(out, final)], dim=1)
        return self.head(final).squeeze(1)  # [B]


@MODELS.register("rnn")
def build_rnn(cfg: ModelConfig, shape: tuple, num_classes: int, out_activation: str):
    if len(shape) != 2:
        from ..errors import GankitError
        raise GankitError(f"model.family = \"rnn\" reads sequences [T, F]; this data's samples have shape "
                          f"{list(shape)} (use mlp for rows, dcgan for images)")
    G = RNNGenerator(cfg.z_dim, shape, cfg.g_hidden, cfg.g_depth, num_classes, cfg.embed_dim, out_activation,
                     cfg.cell, cfg.gumbel_tau, cfg.z_global)
    D = RNNDiscriminator(shape, cfg.d_hidden, cfg.d_depth, num_classes, cfg.embed_dim, cfg.cell,
                         cfg.d_bidirectional, cfg.d_judge, cfg.minibatch_std)
    return G, D
