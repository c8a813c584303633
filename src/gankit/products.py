"""What a trained game is for, and so what sampling, pictures, evaluation and export ask of a run.

A generator from a prior maps z ~ N(0, I) of ``z_dim`` values (and a class label when ``num_classes`` > 0) to a
sample; a table generator takes CTGAN's conditional vector instead of the label. Later products (a translator that takes an image, a
scorer, a classifier) declare their own inputs the same way, so export and serve need no rewrite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn


@dataclass(frozen=True)
class GeneratorProduct:
    """``player(z [n, z_dim], y [n] | None) -> samples``; its moving average is used where the game keeps one."""
    z_dim: int
    num_classes: int = 0
    player: str = "G"
    kind: str = "generator"

    def module(self, engine) -> nn.Module:
        """The network to draw samples from: the player's moving average when it has one."""
        return engine.emas.get(self.player, engine.players[self.player])

    def describe(self) -> dict[str, Any]:
        """What the checkpoint's ``model`` section records of the product (what ``gankit sample`` rebuilds)."""
        return {"z_dim": self.z_dim, "num_classes": self.num_classes}

    def inputs(self) -> list[dict[str, Any]]:
        """The exported module's inputs, as the export manifest names them."""
        z = {"name": "z", "shape": ["n", self.z_dim], "dtype": "float32", "prior": "standard normal"}
        return [z, {"name": "y", "shape": ["n"], "dtype": "int64", "classes": self.num_classes}] if self.num_classes else [z]


@dataclass(frozen=True)
class TableProduct(GeneratorProduct):
    """``G(z [n, z_dim], cond [n, cond_dim]) -> encoded rows [n, D]``: a table generator with CTGAN's conditional
    vector as its second input (``models.tabular.tabular_inputs`` gives a seed's inputs)."""
    kind: str = "table"
    cond_dim: int = 0

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "cond_dim": self.cond_dim}

    def inputs(self) -> list[dict[str, Any]]:
        z = {"name": "z", "shape": ["n", self.z_dim], "dtype": "float32", "prior": "standard normal"}
        cond = {"name": "cond", "shape": ["n", self.cond_dim], "dtype": "float32",
                "meaning": "one-hot in one discrete column's block (CTGAN's conditional vector)"}
        return [z, cond] if self.cond_dim else [z]


@dataclass(frozen=True)
class TranslatorProduct:
    """``player(image [n, in_channels, h, w]) -> image [n, out_channels, h * factor, w * factor]``, both scaled to
    [-1, 1] (pixels * 2 - 1): an image translator (pix2pix, CycleGAN's A -> B) or a super-resolver (factor > 1).
    Fully convolutional generators take any size whose sides divide by ``multiple``."""
    in_channels: int
    out_channels: int
    factor: int = 1
    multiple: int = 1  # input sides must be multiples of this (a U-Net's 2 ** levels)
    player: str = "G"
    kind: str = "translator"

    def module(self, engine) -> nn.Module:
        return engine.emas.get(self.player, engine.players[self.player])

    def describe(self) -> dict[str, Any]:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels, "factor": self.factor,
                "multiple": self.multiple, "player": self.player}

    def inputs(self) -> list[dict[str, Any]]:
        return [{"name": "image", "shape": ["n", self.in_channels, "h", "w"], "dtype": "float32",
                 "scaling": "pixels in [0, 1] as 2 * p - 1", "multiple": self.multiple}]

    def outputs(self) -> list[dict[str, Any]]:
        f = self.factor
        h, w = ("h", "w") if f == 1 else (f"{f}h", f"{f}w")
        return [{"name": "image", "shape": ["n", self.out_channels, h, w], "dtype": "float32",
                 "scaling": "pixels in [0, 1] as 2 * p - 1"}]


@dataclass(frozen=True)
class ScorerProduct:
    """``scorer(x [n, *shape]) -> (score [n], reconstruction [n, *shape])``: an anomaly scorer (EGBAD, GANomaly, f-AnoGAN),
    higher scores more anomalous, inputs in the networks' units ((u - shift) / scale of the data's units u).
    ``settings`` is the JSON ``models.anomaly.build_scorer`` rebuilds the scorer from."""
    shape: tuple[int, ...]
    settings: dict[str, Any]
    fpr: float = 0.05  # the threshold's false-positive rate on the held normal data
    kind: str = "scorer"

    def module(self, engine) -> nn.Module:
        from .models.anomaly import scorer_of

        scorer = scorer_of(self.settings, engine.players)
        extra = engine.game.scorer_state() if callable(getattr(engine.game, "scorer_state", None)) else {}
        if extra:  # tensors of the scorer beyond the players' weights (f-AnoGAN's kNN memory)
            scorer.load_state_dict(extra, strict=False)
        return scorer

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "scorer": dict(self.settings), "fpr": self.fpr}

    def inputs(self) -> list[dict[str, Any]]:
        return [{"name": "x", "shape": ["n", *self.shape], "dtype": "float32",
                 "scaling": "(u - shift) / scale of the data's units u (images: 2 * pixels - 1)"}]

    def outputs(self) -> list[dict[str, Any]]:
        return [{"name": "score", "shape": ["n"], "dtype": "float32", "meaning": "higher = more anomalous"},
                {"name": "reconstruction", "shape": ["n", *self.shape], "dtype": "float32",
                 "scaling": "the networks' units, as x"}]


@dataclass(frozen=True)
class ClassifierProduct:
    """``classifier(x [n, *shape]) -> probabilities [n, K]``: a semi-supervised GAN's D as a K-class classifier
    (its moving average where the game keeps one), inputs in the networks' units ((u - shift) / scale of the
    data's units u). ``settings`` is the JSON ``models.semisup.build_classifier`` rebuilds it from."""
    shape: tuple[int, ...]
    settings: dict[str, Any]
    class_names: tuple[str, ...]
    player: str = "D"
    kind: str = "classifier"

    def module(self, engine) -> nn.Module:
        from .models.semisup import Classifier

        return Classifier(self.settings, engine.emas.get(self.player, engine.players[self.player]))

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "classifier": dict(self.settings), "class_names": list(self.class_names)}

    def inputs(self) -> list[dict[str, Any]]:
        return [{"name": "x", "shape": ["n", *self.shape], "dtype": "float32",
                 "scaling": "(u - shift) / scale of the data's units u (images: 2 * pixels - 1)"}]

    def outputs(self) -> list[dict[str, Any]]:
        return [{"name": "probabilities", "shape": ["n", len(self.class_names)], "dtype": "float32",
                 "classes": list(self.class_names)}]
