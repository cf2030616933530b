"""Registries: the names users write in YAML, mapped to what builds them (fvcore's Registry, in small)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(dict[str, T], Generic[T]):
    """A dict filled by a decorator: loud on a name registered twice, and a lookup error that lists
    every name there is."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            if name in self:
                raise KeyError(f"{self.kind} {name!r} is registered twice")
            self[name] = item
            return item

        return add

    def lookup(self, name: str) -> T:
        if name not in self:
            raise KeyError(f"unknown {self.kind} {name!r}; allowed: {', '.join(self)}")
        return self[name]
