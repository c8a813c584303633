"""``Trainer(config, data, G, D)``: the classic game on the engine, under the name the first gankit used.

Kept for code that builds a trainer by hand; ``gankit.train(config, game=...)`` and ``gankit.engine.Engine``
are what replace it. Its attributes (``G``, ``D``, ``G_ema``, ``opt_g``, ``opt_d``, ``scaler_g``,
``scaler_d``, ``z_dim``) name the classic game's players, groups and scalers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from torch import nn

from .config import Config
from .data import Dataset
from .engine import Engine, HistoricalAverage, lr_factor, make_ema, make_optimizer, resolve_device, update_ema
from .games import ClassicGame

__all__ = ["Trainer", "HistoricalAverage", "lr_factor", "make_ema", "make_optimizer", "resolve_device", "update_ema"]


class Trainer(Engine):
    """Trains G against D on a ``Dataset`` as the config says (the classic game)."""

    def __init__(self, config: Config, data: Dataset, G: nn.Module, D: nn.Module, *,
                 callbacks: Iterable[Any] = (), checkpoint_path: str | Path | None = None,
                 model_info: dict[str, Any] | None = None):
        super().__init__(config, data, ClassicGame(config, data, G, D), callbacks=callbacks,
                         checkpoint_path=checkpoint_path, model_info=model_info)

    G = property(lambda self: self.players["G"])
    D = property(lambda self: self.players["D"])
    G_ema = property(lambda self: self.emas.get("G"))
    opt_g = property(lambda self: self.optimizers["g"])
    opt_d = property(lambda self: self.optimizers["d"])
    scaler_g = property(lambda self: self.scalers["g"])
    scaler_d = property(lambda self: self.scalers["d"])

