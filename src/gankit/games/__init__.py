"""The built-in games, each a ``gankit.engine.Game``."""

from .classic import ClassicGame

__all__ = ["ClassicGame"]
