"""What a game's loss functions see: the players, this rank's batches, noise, labels, and a place to log.

    def d_loss(ctx):
        real = ctx.batch()["x"]
        fake = ctx.G(ctx.noise(len(real))).detach()
        loss = losses.least_squares_d(ctx.D(real), ctx.D(fake))  # gankit.losses
        ctx.log("d_loss", loss)
        return loss
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from .loop import Engine


class Context:
    def __init__(self, engine: "Engine"):
        self._engine = engine
        self.players: dict[str, nn.Module] = engine.players
        self.config, self.data, self.device = engine.config, engine.data, engine.device
        self.world = engine.world  # this process's place among the ranks (World() alone)
        self.batch_size = engine.batches.size  # this rank's share of data.batch_size
        self.generator: torch.Generator = engine.batches.generator  # the one seeded stream of a step's randomness
        self.scratch: dict[str, Any] = {}  # shared by the phases of one step, cleared at the next
        self.repeat = 0  # which of a phase's repeats is running
        self.measure = False  # this step ends a log window

    def __getattr__(self, name: str) -> nn.Module:  # ctx.G, ctx.D: the players by name
        players = self.__dict__.get("players", {})
        if name in players:
            return players[name]
        raise AttributeError(f"the context has no attribute or player {name!r}; players: {sorted(players)}")

    @property
    def step(self) -> int:
        return self._engine.step

    def ema(self, name: str) -> nn.Module:
        """The moving average of player ``name`` (the player itself when its group keeps none)."""
        return self._engine.emas.get(name, self.players[name])

    def batch(self) -> dict[str, Tensor]:
        """This rank's share of the next data batch: ``{"x": [B, ...]}``, plus ``"y"`` [B] when labels are used and
        ``"lengths"`` [B] when sequences vary in length."""
        return self._engine.batches.next()

    def noise(self, n: int, dim: int | None = None) -> Tensor:  # [n, dim] (default model.z_dim) standard normal
        return self._engine.batches.noise(n, self.config.model.z_dim if dim is None else dim)

    def labels(self, n: int) -> Tensor | None:  # [n] drawn with the data's class frequencies, or None
        return self._engine.batches.labels(n)

    def log(self, name: str, value: Tensor, last: bool = False) -> None:
        """Add ``value`` to statistic ``name`` (the record shows the window's mean; ``last``: the latest value).
        Stays on the device; names ending in ``_loss`` are checked for NaN/Inf at each log."""
        self._engine.stats.add(name, value, last)

    def log_many(self, names: tuple[str, ...], values: Tensor) -> None:
        """Several statistics in one addition: ``values`` [len(names)]."""
        self._engine.stats.add_many(names, values)

    def loss_scale(self, group: str) -> Tensor | None:
        """fp16's current loss scale of ``group`` (a device tensor), for gradients taken inside a loss (gradient
        penalties); None when no scaling is on."""
        scaler = self._engine.scalers[group]
        return scaler.scale(torch.ones((), device=self.device)) if scaler.is_enabled() else None

    def scaling(self, group: str) -> bool:
        return self._engine.scalers[group].is_enabled()

    def warn(self, kind: str, text: str) -> None:
        self._engine.warn(kind, text)
