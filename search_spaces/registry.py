"""A small name -> object registry whose lookup errors list the known names and the closest."""
from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from search_spaces.errors import InputError, UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects (classes, factories, specs) for one kind of thing."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T | None = None) -> Callable[[T], T] | T:
        """Register `item` under `name`; without `item`, return a decorator."""

        def add(obj: T) -> T:
            if name in self._items:
                raise InputError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return add(item) if item is not None else add

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        known = sorted(self._items)
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f" (closest: {close[0]})" if close else ""
        return f"unknown {self.kind} {name!r}; known: {', '.join(known)}{hint}"

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
