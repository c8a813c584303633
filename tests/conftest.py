"""Shared helpers: tiny configs that train in a fraction of a second."""

from __future__ import annotations

import io

import numpy as np

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


def png(array: np.ndarray) -> bytes:
    """The PNG bytes of uint8 pixels [H, W] or [H, W, 3], as a client posts them."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def npy(array: np.ndarray) -> bytes:
    """The .npy bytes of an array, as a client posts them."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def check_repeats_and_resumes(train, weights, stop: int = 10) -> None:
    """``train(name, callbacks=())`` trains a run named ``name`` and returns its TrainResult; ``weights(run_dir)``
    its tensors. Two runs give the same bytes, and a run stopped at step ``stop`` then resumed gives them too."""
    import gankit

    one, two = train("one"), train("two")
    expected = weights(one.run_dir)
    assert all(torch.equal(v, weights(two.run_dir)[k]) for k, v in expected.items())
    part = train("resumed", callbacks=[StopAt(stop)])
    assert part.step == stop
    gankit.train(run_dir=part.run_dir, resume=True, progress=False)
    resumed = weights(part.run_dir)
    assert resumed.keys() == expected.keys()
    for k in expected:
        assert torch.equal(resumed[k], expected[k]), k
