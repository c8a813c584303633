"""The built-in games, each a ``gankit.engine.Game``, by their ``game.name``."""

from .acgan import ACGANGame
from .classic import ClassicGame

# game.name -> a function (config, data) -> Game; "classic" builds its models from model.* (gankit.api)
GAMES = {"acgan": ACGANGame}

__all__ = ["ACGANGame", "ClassicGame", "GAMES"]
