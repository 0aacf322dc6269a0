"""A small name -> object registry whose lookup errors list the known names and the closest.

With `entry_points="hwnas.NAME"`, other distributions add to it without touching this repository:

    [project.entry-points."hwnas.samplers"]
    my-sampler = "my_package.sampler:MY_SAMPLER"

The group is read on the first lookup (`get`, `names`, `in`, ...), in whichever process looks: the CLI, a test, a Ray
worker on another node where the package is installed. A plugin that fails to load does not break hwnas: its name
is left out of `names()` and `get(name)` says why (`broken`)."""
from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from search_spaces.errors import InputError, UnknownNameError

T = TypeVar("T")


def one_line(e: BaseException) -> str:
    """'Type: first line of the message' (at most 300 characters): an error that fits in one report line."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]


class Registry(Generic[T]):
    """Maps names to objects (classes, factories, specs) for one kind of thing.

    `entry_points`: the entry-point group plugins register in; `check(name, obj) -> obj` validates what a plugin's
    entry point loads (raise to refuse it); `on_broken(name, value, reason)`: what to register instead of a plugin
    that fails (default: nothing, the reason is kept in `broken`). `sort`: list names sorted (else in registration
    order, e.g. the default first)."""

    def __init__(self, kind: str, entry_points: str | None = None, check: Callable[[str, Any], T] | None = None,
                 on_broken: Callable[[str, str, str], T] | None = None, sort: bool = True) -> None:
        self.kind = kind
        self.group = entry_points
        self._check = check
        self._on_broken = on_broken
        self._sort = sort
        self._items: dict[str, T] = {}
        self.broken: dict[str, str] = {}  # plugin name -> why it could not be loaded
        self._plugins_read = entry_points is None

    def register(self, name: str, item: T | None = None) -> Callable[[T], T] | T:
        """Register `item` under `name`; without `item`, return a decorator."""

        def add(obj: T) -> T:
            if name in self._items:
                raise InputError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return add(item) if item is not None else add

    def unregister(self, name: str) -> T:
        """Remove `name` (a test that registered something takes it out again)."""
        self._load_plugins()
        if name not in self._items:
            raise UnknownNameError(self.unknown_message(name))
        return self._items.pop(name)

    def load_plugins(self) -> list[str]:
        """Read the entry-point group again (e.g. after a package was put on `sys.path`); the names added."""
        self._plugins_read = self.group is None
        before = set(self._items)
        self._load_plugins()
        return [n for n in self._items if n not in before]

    def _load_plugins(self) -> None:
        if self._plugins_read:
            return
        self._plugins_read = True  # first: a plugin that looks names up while it is imported must not recurse
        from importlib.metadata import entry_points

        for ep in entry_points(group=self.group):
            if ep.name in self._items or ep.name in self.broken:
                continue
            try:
                obj = ep.load()
                if ep.name in self._items:  # importing it registered it (a decorator in the plugin's module)
                    continue
                obj = self._check(ep.name, obj) if self._check is not None else obj
            except Exception as e:  # noqa: BLE001 -- any failure of third-party code: report it, do not crash
                reason = f"entry point {ep.name} = {ep.value} failed to load ({one_line(e)})"
                if self._on_broken is None:
                    self.broken[ep.name] = reason
                    continue
                obj = self._on_broken(ep.name, ep.value, reason)
            self._items[ep.name] = obj

    def get(self, name: str) -> T:
        self._load_plugins()
        try:
            return self._items[name]
        except (KeyError, TypeError):
            if name in self.broken:
                raise InputError(f"{self.kind} {name!r}: {self.broken[name]}") from None
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: object) -> str:
        known = self.names()
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f" (closest: {close[0]})" if close else ""
        return f"unknown {self.kind} {name!r}; known: {', '.join(known)}{hint}"

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._items) if self._sort else list(self._items)

    def items(self) -> list[tuple[str, T]]:
        return [(n, self._items[n]) for n in self.names()]

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        try:
            return name in self._items
        except TypeError:  # an unhashable value is no name
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load_plugins()
        return len(self._items)
