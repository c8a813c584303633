"""The built-in games, each a ``gankit.engine.Game``, by their ``game.name``."""

from .acgan import ACGANGame
from .bigan import BiGANGame
from .classic import ClassicGame
from .ctgan import CTGANGame
from .cyclegan import CycleGANGame
from .fanogan import FAnoGANGame
from .ganomaly import GANomalyGame
from .infogan import InfoGANGame
from .pix2pix import Pix2PixGame
from .semisup import SemiSupervisedGame
from .srgan import SRGANGame
from .timegan import TimeGANGame

# game.name -> a function (config, data) -> Game; "classic" builds its models from model.* (gankit.api)
GAMES = {"acgan": ACGANGame, "bigan": BiGANGame, "ctgan": CTGANGame, "cyclegan": CycleGANGame,
         "fanogan": FAnoGANGame, "ganomaly": GANomalyGame, "infogan": InfoGANGame, "pix2pix": Pix2PixGame,
         "srgan": SRGANGame, "ssgan": SemiSupervisedGame, "timegan": TimeGANGame}

__all__ = ["ACGANGame", "BiGANGame", "CTGANGame", "ClassicGame", "CycleGANGame", "FAnoGANGame", "GAMES", "GANomalyGame",
           "InfoGANGame", "Pix2PixGame", "SRGANGame", "SemiSupervisedGame", "TimeGANGame"]
