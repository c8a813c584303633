"""The training engine: plays any GAN game (players, optimizer groups, phases) with checkpoints, exact
resume, AMP, moving averages, several processes, NaN rollback, callbacks and named statistics."""

from .batches import Batches, BatchSampler
from .context import Context
from .game import Game, Group, Phase
from .loop import Engine, resolve_device
from .stats import Statistics
from .updates import HistoricalAverage, grad_norm, lr_factor, make_ema, make_optimizer, match_layouts, update, update_ema

__all__ = ["Batches", "BatchSampler", "Context", "Engine", "Game", "Group", "Phase", "Statistics", "HistoricalAverage",
           "grad_norm", "lr_factor", "make_ema", "make_optimizer", "match_layouts", "update", "update_ema",
           "resolve_device"]
