"""The built-in games, each a ``gankit.engine.Game``, by their ``game.name``."""

from .acgan import ACGANGame
from .classic import ClassicGame
from .ctgan import CTGANGame
from .infogan import InfoGANGame
from .timegan import TimeGANGame

# game.name -> a function (config, data) -> Game; "classic" builds its models from model.* (gankit.api)
GAMES = {"acgan": ACGANGame, "ctgan": CTGANGame, "infogan": InfoGANGame, "timegan": TimeGANGame}

__all__ = ["ACGANGame", "CTGANGame", "ClassicGame", "GAMES", "InfoGANGame", "TimeGANGame"]
