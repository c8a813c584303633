"""Name -> factory tables. Built-ins register through the same call a user's code does."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from .errors import GankitError

F = TypeVar("F", bound=Callable)


class Registry(Generic[F]):
    """A table of named factories, e.g. data sets or model families.

    >>> DATASETS = Registry("data set")
    >>> @DATASETS.register("ring8")
    ... def ring8(cfg): ...
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, F] = {}

    def register(self, name: str) -> Callable[[F], F]:
        if not name or not isinstance(name, str):
            raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")

        def add(factory: F) -> F:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            if not callable(factory):
                raise TypeError(f"{self.kind} {name!r}: expected a callable, got {type(factory).__name__}")
            self._items[name] = factory
            return factory

        return add

    def get(self, name: str) -> F:
        try:
            return self._items[name]
        except KeyError:
            raise GankitError(f"unknown {self.kind} {name!r}; expected one of: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items
