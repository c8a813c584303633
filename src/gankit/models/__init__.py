"""Model families. Each family's factory builds a (G, D) pair from the model config and the data's shape.

A user's own modules work too: the trainer needs only ``G(z, y=None) -> x`` and ``D(x, y=None) -> logits [B]``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Callable

from torch import nn

from ..config import ModelConfig
from ..registry import Registry

# (config, sample shape, number of classes (0 = unconditional), output activation) -> (G, D)
ModelFactory = Callable[[ModelConfig, tuple, int, str], tuple[nn.Module, nn.Module]]
MODELS: Registry[ModelFactory] = Registry("model family")

if TYPE_CHECKING:
    from ..config import Config
    from ..data import Dataset


def resolved(config: "Config", data: "Dataset") -> tuple[ModelConfig, str]:
    """The model settings with "auto" resolved for this loss and data, and G's output activation."""
    model = config.model
    if model.d_norm == "auto":  # batch norm mixes samples, which a per-sample gradient penalty must not see
        model = replace(model, d_norm="none" if config.loss.name == "wgan-gp" else "batch")
    if data.is_text:  # one character per step, drawn by straight-through Gumbel-softmax (models.rnn)
        return model, "gumbel"
    activation = model.out_activation if model.out_activation != "auto" else \
        ("tanh" if data.normalize == "minmax" else "none")
    return model, activation


def head_width(D: nn.Module, who: str) -> int:
    """The width of D's features, for a second head on them (``D.features(x)`` and a linear ``D.head``)."""
    from ..errors import GankitError

    head = getattr(D, "head", None)
    if not (callable(getattr(D, "features", None)) and isinstance(head, nn.Linear)):
        raise GankitError(f"{who} needs a D with features(x) and a linear head (the built-in models have both)")
    return head.in_features


from . import dcgan, mlp, rnn, timegan  # noqa: E402,F401  (register the built-in families)

__all__ = ["MODELS", "ModelFactory", "head_width", "resolved"]
