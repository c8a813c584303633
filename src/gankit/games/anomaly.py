"""What the anomaly-detection games share: trained on normal data alone, used through a scorer.

A game here learns what normal data looks like; its product (``products.ScorerProduct``) is a ``Scorer``
(``models.anomaly``) that says how poorly the trained networks explain a sample. The data must carry the
normal data held out of training (``data.normal_class`` or ``data.normal_holdout``), which sets the score's
threshold at ``game.fpr`` after training (``gankit.anomaly_scores``).

Networks: DCGAN-style convolutions for images, MLPs for rows (``model.family`` is chosen by the data's shape);
``model.z_dim`` the latent's size, ``g_hidden`` / ``d_hidden`` the generator's and the encoders' and D's widths,
``g_depth`` the MLPs' hidden layers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..config import Config
from ..data import Dataset
from ..engine import Context, Game
from ..errors import GankitError
from ..losses import get_loss
from ..models import resolved
from ..models.anomaly import anomaly_players
from ..products import ScorerProduct
from .image_or_rows import check_images_or_rows


PAPER_SCORES = {"bigan": "fm", "ganomaly": "latent", "fanogan": "izif"}  # what game.score_term = "auto" means


def score_term(game: str, term: str) -> str:
    return PAPER_SCORES[game] if term == "auto" else term


def check_data(data: Dataset, game: str) -> None:
    if getattr(data, "anomaly", None) is None:
        raise GankitError(f"game.name = {game!r} learns normal data and sets its score threshold on normal data kept "
                          f"out of training: set data.normal_class (a labelled set: the normal class) or "
                          f"data.normal_holdout (your data of normal samples alone: the share kept out, e.g. 0.1)")


class AnomalyGame(Game):
    """The common part: the data check, the networks from one JSON dict of settings, the product, and the
    checkpoint's model section (``gankit.product_loader.load_scorer`` rebuilds the scorer from it)."""

    name = ""

    def __init__(self, config: Config, data: Dataset):
        check_data(data, self.name)
        check_images_or_rows(config, data, self.name)
        self.config, self.data = config, data
        model, activation = resolved(config, data)
        game = config.game
        self.settings: dict[str, Any] = {
            "game": self.name, "shape": list(data.shape), "z_dim": model.z_dim, "g_hidden": model.g_hidden,
            "d_hidden": model.d_hidden, "depth": model.g_depth, "out_activation": activation,
            "score_weight": game.score_weight, "score_term": score_term(self.name, game.score_term),
            "feature_weight": game.feature_weight}
        torch.manual_seed(config.seed)
        self.players = anomaly_players(self.settings)
        self.loss = get_loss(config.loss.name, config.loss.label_smoothing)
        self.product = ScorerProduct(tuple(data.shape), self.settings, game.fpr)
        self.model_info = {"family": self.name, "shape": list(data.shape), "num_classes": 0,
                           "out_activation": activation, "z_dim": model.z_dim}

    def scorer_state(self) -> dict[str, Tensor]:
        """Tensors of the scorer beyond the players' weights (f-AnoGAN's kNN memory), for the checkpoint."""
        return {}

    def batch(self, ctx: Context, fresh: bool = False) -> Tensor:
        """The step's real batch: D's update draws one (``fresh``) and the generator's update reuses it."""
        if fresh or "x" not in ctx.scratch:
            ctx.scratch["x"] = ctx.batch()["x"]
        return ctx.scratch["x"]

    def log_d(self, ctx: Context, loss: Tensor, real: Tensor, fake: Tensor) -> None:
        """D's loss and its mean belief that real and generated samples are real."""
        ctx.log_many(("d_loss", "p_real", "p_fake"),
                     torch.stack([loss.detach(), torch.sigmoid(real.detach()).mean(),
                                  torch.sigmoid(fake.detach()).mean()]))
