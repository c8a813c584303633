"""The built-in games, each a ``gankit.engine.Game``, by their ``game.name``."""

from .acgan import ACGANGame
from .classic import ClassicGame
from .infogan import InfoGANGame
from .timegan import TimeGANGame

# game.name -> a function (config, data) -> Game; "classic" builds its models from model.* (gankit.api)
GAMES = {"acgan": ACGANGame, "infogan": InfoGANGame, "timegan": TimeGANGame}

__all__ = ["ACGANGame", "ClassicGame", "GAMES", "InfoGANGame", "TimeGANGame"]
