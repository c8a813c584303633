"""Model families. Each family's factory builds a (G, D) pair from the model config and the data's shape.

A user's own modules work too: the trainer needs only ``G(z, y=None) -> x`` and ``D(x, y=None) -> logits [B]``.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from ..config import ModelConfig
from ..registry import Registry

# (config, sample shape, number of classes (0 = unconditional), output activation) -> (G, D)
ModelFactory = Callable[[ModelConfig, tuple, int, str], tuple[nn.Module, nn.Module]]
MODELS: Registry[ModelFactory] = Registry("model family")

from . import dcgan, mlp  # noqa: E402,F401  (register the built-in families)

__all__ = ["MODELS", "ModelFactory"]
