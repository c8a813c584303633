"""Maximum-likelihood baselines a GAN on the same data is compared against.

A text GAN is only worth its trouble if it beats the plain way: a character language model trained by
teacher forcing. ``CharLM`` is that model (a GRU), trained for a fixed WALL TIME so the comparison is
"same size, same wall time"; its samples are drawn ancestrally and scored like a generator's.
"""

from __future__ import annotations

import sys
import time

import torch
from torch import nn

from .data.dataset import Dataset, steps_mask
from .data.text import decode
from .errors import GankitError


class CharLM(nn.Module):
    """A character GRU language model over one-hot inputs: p(c_t | c_<t) = softmax(W h_t).

    The input at step t is the one-hot of character t-1; at step 0 it is the all-zero vector, the start
    symbol (no character has come yet). Index 0 of the vocabulary is the end token."""

    def __init__(self, vocab_size: int, hidden: int = 128, layers: int = 1):
        super().__init__()
        self.vocab_size = vocab_size
        self.gru = nn.GRU(vocab_size, hidden, num_layers=layers, batch_first=True)
        self.out = nn.Linear(hidden, vocab_size)

    def forward(self, inputs: torch.Tensor, state: torch.Tensor | None = None):
        """inputs [B, T, V] one-hot (zero = start) -> (logits [B, T, V] of the next character, GRU state)."""
        h, state = self.gru(inputs, state)
        return self.out(h), state


def _codes(data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes [N, T] int64 symbol indices, lengths [N]) of a text data set, whatever its normalisation."""
    if not data.is_text or data.lengths is None:
        raise GankitError(f"data set {data.name!r} is not text; a character language model needs one-hot "
                          f"sequences with a vocabulary (data.name = words or lines)")
    return data.to_raw(data.x).argmax(-1), data.lengths


def _inputs_targets(codes: torch.Tensor, lengths: torch.Tensor, vocab_size: int):
    """Teacher forcing on a batch: inputs [B, T, V] (start, c_0 .. c_{T-2}), targets [B, T] (c_0 .. end),
    and the mask [B, T] of valid steps, all cut to the batch's longest item."""
    steps = int(lengths.max())
    codes = codes[:, :steps]
    inputs = torch.nn.functional.one_hot(codes[:, :-1], vocab_size).float()
    inputs = torch.cat([inputs.new_zeros(len(codes), 1, vocab_size), inputs], dim=1)
    return inputs, codes, steps_mask(lengths, steps)


def _loss(model: CharLM, codes, lengths) -> torch.Tensor:
    inputs, targets, mask = _inputs_targets(codes, lengths, model.vocab_size)
    logits, _ = model(inputs)
    return nn.functional.cross_entropy(logits[mask], targets[mask])


@torch.no_grad()
def char_lm_cross_entropy(model: CharLM, data: Dataset, batch_size: int = 1024) -> float:
    """Mean next-character cross-entropy (nats per step, the end token included) over every item of ``data``."""
    codes, lengths = _codes(data)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(codes), batch_size):
        inputs, targets, mask = _inputs_targets(codes[i:i + batch_size], lengths[i:i + batch_size],
                                                model.vocab_size)
        logits, _ = model(inputs)
        total += float(nn.functional.cross_entropy(logits[mask], targets[mask], reduction="sum"))
        count += int(mask.sum())
    model.train(was_training)
    return total / count


def train_char_lm(data: Dataset, hidden: int = 128, layers: int = 1, seconds: float = 60.0, batch_size: int = 256,
                  lr: float = 2e-3, seed: int = 0, progress: bool = False) -> tuple[CharLM, dict]:
    """Train a ``CharLM`` on text ``data`` by teacher forcing for ``seconds`` of wall time (Adam, batches of
    ``batch_size`` items drawn uniformly with replacement). Returns the model (in eval mode) and info:
    steps, seconds, steps_per_second, loss (mean over the last 50 steps, nats/step) and parameters.

    Deterministic given ``seed`` except for how many steps fit in the time; at least one step is taken."""
    codes, lengths = _codes(data)
    if seconds <= 0:
        raise GankitError(f"seconds = {seconds}: expected a positive wall-time budget")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CharLM(len(data.vocab), hidden, layers).to(data.x.device)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    recent: list[float] = []
    steps, start = 0, time.perf_counter()
    next_report = start + 5.0
    while True:
        batch = torch.randint(len(codes), (batch_size,), generator=generator).to(codes.device)
        loss = _loss(model, codes[batch], lengths[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        steps += 1
        recent = (recent + [loss.item()])[-50:]
        now = time.perf_counter()
        if progress and now >= next_report:
            print(f"char-lm: step {steps}, {now - start:.0f}/{seconds:.0f} s, loss {sum(recent) / len(recent):.3f}",
                  file=sys.stderr)
            next_report = now + 5.0
        if now - start >= seconds:
            break
    elapsed = time.perf_counter() - start
    model.eval()
    info = {"steps": steps, "seconds": elapsed, "steps_per_second": steps / elapsed,
            "loss": sum(recent) / len(recent), "parameters": sum(p.numel() for p in model.parameters())}
    return model, info


@torch.no_grad()
def sample_char_lm(model: CharLM, vocab: list[str], n: int, max_steps: int, temperature: float = 1.0,
                   seed: int = 0) -> list[str]:
    """``n`` items drawn ancestrally, each until the end token or ``max_steps`` steps (then taken whole, of
    ``max_steps`` characters). ``temperature`` divides the logits; 0 takes the most likely character."""
    if len(vocab) != model.vocab_size:
        raise GankitError(f"vocabulary of {len(vocab)} symbols; the model was trained on {model.vocab_size}")
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    inputs = torch.zeros(n, 1, model.vocab_size, device=device)  # the start symbol
    state, codes = None, []
    alive = torch.ones(n, dtype=torch.bool)
    for _ in range(max_steps):
        logits, state = model(inputs, state)
        logits = logits[:, 0].float().cpu()
        if temperature > 0:
            code = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=generator)[:, 0]
        else:
            code = logits.argmax(-1)
        codes.append(code)
        alive &= code != 0
        if not alive.any():
            break
        inputs = nn.functional.one_hot(code, model.vocab_size).float()[:, None].to(device)
    model.train(was_training)
    return decode(torch.stack(codes, 1), vocab) if codes else [""] * n
