"""What the image-to-image games share: G takes an image, not noise.

pix2pix, SRGAN and CycleGAN all train a translator ``G: A -> B`` on pixels scaled to [-1, 1]. This module checks
the data, builds the configured generator and PatchGAN discriminator, and says what the checkpoint records so
that ``gankit apply``, export and serve can rebuild G from JSON alone (``models.translators.build_translator``).

Model settings reused from ``model.*``: ``g_hidden`` is G's base width, ``g_depth`` its depth (U-Net levels,
residual blocks), ``d_hidden`` and ``d_depth`` the PatchGAN's base width and number of stride-2 layers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..config import Config
from ..data import Dataset
from ..engine import Context, Game
from ..errors import GankitError
from ..losses import get_loss
from ..models.translators import build_translator
from ..models.unet import PatchDiscriminator
from ..products import TranslatorProduct

DEFAULT_FAMILY = {"pix2pix": "unet", "srgan": "srresnet", "cyclegan": "resnet"}
FAMILIES = {"pix2pix": ("unet", "resnet"), "srgan": ("srresnet",), "cyclegan": ("resnet", "unet")}


def to_net(pixels: Tensor) -> Tensor:
    """Pixels in [0, 1] -> the networks' [-1, 1]."""
    return pixels * 2.0 - 1.0


def check_data(data: Dataset, game: str, paired: bool) -> None:
    if not data.is_translation:
        raise GankitError(f"game.name = {game!r} needs image-to-image data (data.name = \"pairs\", \"unpaired\" or "
                          f"a built-in task: sr-fashion-mnist, sr-photos, edges2fashion, sneaker2boot); data "
                          f"{data.name!r} holds samples of shape {list(data.shape)} alone")
    if paired and not data.translation.paired:
        raise GankitError(f"game.name = {game!r} learns from pairs; data {data.name!r} is unpaired (two domains): "
                          f"use game.name = \"cyclegan\"")
    if data.normalize != "minmax":
        raise GankitError(f"game.name = {game!r}: data.normalize = {data.normalize!r}; image-to-image games need "
                          f"\"minmax\" (or \"auto\"): pixels scaled to [-1, 1]")


def family(config: Config, game: str) -> str:
    """model.family, or the game's own generator when it is left at the rows' default (mlp)."""
    name = config.model.family
    if name == "mlp":
        return DEFAULT_FAMILY[game]
    if name not in FAMILIES[game]:
        raise GankitError(f"model.family = {name!r}: game.name = {game!r} trains a generator of family "
                          f"{' or '.join(FAMILIES[game])}")
    return name


def generator(config: Config, game: str, in_channels: int, out_channels: int, factor: int = 1) -> nn.Module:
    """The configured translator A -> B, seeded by the config."""
    model = config.model
    name = family(config, game)
    kwargs: dict[str, Any] = {"in_channels": in_channels, "out_channels": out_channels}
    if name == "unet":
        kwargs.update(base=model.g_hidden, levels=model.g_depth)
    elif name == "srresnet":
        kwargs.update(channels=model.g_hidden, blocks=model.g_depth, factor=factor)
    else:
        kwargs.update(base=model.g_hidden, blocks=model.g_depth)
    try:
        return build_translator(name, kwargs)
    except ValueError as e:
        raise GankitError(f"model.family = {name!r}: {e}") from None


def discriminator(config: Config, in_channels: int) -> PatchDiscriminator:
    model = config.model
    norm = "none" if model.d_norm == "none" or model.spectral_norm else "batch"
    return PatchDiscriminator(in_channels, base=model.d_hidden, layers=max(model.d_depth, 1), norm=norm,
                              spectral_norm=model.spectral_norm)


def check_size(G: nn.Module, data: Dataset) -> None:
    """The training images' sides must divide by G's multiple (a U-Net halves them ``levels`` times)."""
    m = int(getattr(G, "multiple", 1))
    h, w = data.translation.source.shape[-2:]
    if h % m or w % m:
        raise GankitError(f"model.g_depth = {getattr(G, 'levels', '?')}: G halves its input's sides until they "
                          f"divide by {m}, but data {data.name!r} has {h}x{w} inputs; lower model.g_depth or resize "
                          f"the images (data.image_size)")


class TranslationGame(Game):
    """The common part: the data's inputs on the device, the adversarial loss, the product and the model info."""

    name = ""
    paired = True

    def __init__(self, config: Config, data: Dataset):
        check_data(data, self.name, self.paired)
        self.config, self.data = config, data
        self.translation = data.translation
        self.loss = get_loss(config.loss.name, config.loss.label_smoothing)
        self.weights = config.loss
        torch.manual_seed(config.seed)

    def describe(self, G: nn.Module, player: str = "G") -> None:
        """Set the product and what the checkpoint records of G (rebuilt by ``build_translator``)."""
        self.product = TranslatorProduct(G.in_channels, G.out_channels, G.factor, G.multiple, player=player)
        self.model_info = {"family": family(self.config, self.name), "kwargs": G.config(),
                           "shape": list(self.data.shape), "num_classes": 0, "out_activation": "tanh"}

    def adversarial_d(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        """The configured D loss over every patch logit: D sees ``real`` and ``fake`` in two passes (its batch
        norm then normalises each batch on its own, as pix2pix does)."""
        return self.loss.d(D(real).float().flatten(), D(fake).float().flatten())

    def adversarial_g(self, D: nn.Module, fake: Tensor, real: Tensor | None = None) -> Tensor:
        real_logits = None
        if self.loss.relativistic:  # ESRGAN's relativistic average D: G's loss needs D's view of real images too
            with torch.no_grad():
                real_logits = D(real).float().flatten()
        return self.loss.g(D(fake).float().flatten(), real_logits)

    def pair(self, ctx: Context, fresh: bool = False) -> dict[str, Tensor]:
        """The step's batch of pairs: each D update draws one (``fresh``) and G's update reuses the last, as
        pix2pix updates both on one batch; without a D phase G draws its own."""
        if fresh or "pair" not in ctx.scratch:
            ctx.scratch["pair"] = ctx.batch()
        return ctx.scratch["pair"]
