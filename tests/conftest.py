"""Shared helpers: tiny configs that train in a fraction of a second."""

from __future__ import annotations

import torch
import pytest

from gankit.config import Config, apply_overrides

torch.set_num_threads(1)  # deterministic and fair on a 2-core CI machine


def tiny_config(*overrides: str) -> Config:
    """ring8 with 2,000 rows, 16-unit networks, 20 steps: fast enough for any number of tests."""
    base = [
        "data.name=ring8", "data.n=2000", "data.batch_size=64",
        "model.g_hidden=16", "model.d_hidden=16", "model.z_dim=4",
        "train.steps=20", "train.log_every=5", "train.checkpoint_every=10", "train.plot_every=1000",
    ]
    return apply_overrides(Config(), base + list(overrides))


class StopAt:
    """A callback that asks the trainer to stop (and checkpoint) after a given step, as Ctrl-C would."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer):
        if trainer.step == self.step:
            trainer.request_stop()


@pytest.fixture
def tiny():
    return tiny_config
