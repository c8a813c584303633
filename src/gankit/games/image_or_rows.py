"""What the games built for images or rows of numbers alone (the anomaly games, ssgan) refuse alike."""

from __future__ import annotations

from ..config import Config
from ..data import Dataset
from ..errors import GankitError


def check_images_or_rows(config: Config, data: Dataset, game: str) -> None:
    """Images or rows of numbers, and a model family that builds for them: DCGAN-style convolutions for images
    ("dcgan"), MLPs for rows and flattened images ("mlp")."""
    if data.is_sequence or data.is_table or data.is_translation:
        raise GankitError(f"game.name = {game!r} takes images or rows of numbers; data {data.name!r} holds "
                          f"{'sequences' if data.is_sequence else 'a table' if data.is_table else 'image pairs'}")
    family = config.model.family
    if family not in ("mlp", "dcgan"):
        raise GankitError(f"model.family = {family!r}: game.name = {game!r} builds DCGAN-style convolutions for "
                          f"images (\"dcgan\") or MLPs (\"mlp\"); expected one of them")
    if family == "dcgan" and not data.is_image:
        raise GankitError(f"model.family = \"dcgan\": data {data.name!r} holds rows of {data.num_features} values, "
                          f"not images; use model.family = \"mlp\"")
