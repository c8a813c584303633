"""Image-to-image generators by family name, rebuilt from their JSON config.

Each generator records its constructor arguments (``G.config()``, JSON-serialisable), so a checkpoint
or export stores (family, config) next to the weights and ``build_translator(family, config)`` rebuilds
the module with no code in the file. Every translator has ``in_channels``, ``out_channels``, ``factor``
(the output is ``factor`` times the input's size) and ``multiple`` (input sides must divide by it).
"""

from __future__ import annotations

import inspect

from torch import nn

from ..errors import GankitError
from .resnet import ResnetGenerator
from .srresnet import SRResNet
from .unet import UNetGenerator

TRANSLATORS: dict[str, type[nn.Module]] = {
    "unet": UNetGenerator,  # pix2pix
    "srresnet": SRResNet,  # SRGAN
    "resnet": ResnetGenerator,  # CycleGAN
}


def build_translator(family: str, kwargs: dict) -> nn.Module:
    """``TRANSLATORS[family](**kwargs)``; an unknown family, unknown or missing arguments, or a bad value
    raise GankitError naming the family and what was expected."""
    if family not in TRANSLATORS:
        raise GankitError(f"translator family {family!r} is unknown; expected one of {', '.join(TRANSLATORS)}")
    cls = TRANSLATORS[family]
    try:
        inspect.signature(cls).bind(**kwargs)  # unknown or missing keys, before building anything
    except TypeError as e:
        accepted = ", ".join(inspect.signature(cls).parameters)
        raise GankitError(f"translator {family!r}: {e}; its arguments are {accepted}") from None
    try:
        return cls(**kwargs)
    except ValueError as e:
        raise GankitError(f"translator {family!r}: {e}") from None
