"""Backends from other packages: a distribution declares them in the entry-point group `hwnas.backends`

    [project.entry-points."hwnas.backends"]
    my-npu = "my_package.backend:MyNpuBackend"     # a `Backend` subclass

and every process that looks a backend up -- the CLI, and a Ray worker measuring on another node where the package
is installed -- finds it by name (`BACKENDS` reads the group on its first lookup). A plugin that fails to load does
not break hwnas: it is listed as unavailable with the reason (`hwnas latency backends`)."""
from __future__ import annotations

from typing import Any

from latency_tables.backends.base import Backend

GROUP = "hwnas.backends"


def check_backend(name: str, cls: Any) -> type[Backend]:
    """What an entry point must load: a `Backend` subclass whose `name` is the entry point's."""
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise TypeError(f"{cls!r} is not a latency_tables Backend subclass")
    if getattr(cls, "name", None) != name:
        raise TypeError(f"its name is {getattr(cls, 'name', None)!r}, the entry point says {name!r}")
    return cls


def broken_backend(name: str, value: str, reason: str) -> type[Backend]:
    """A registered stand-in whose `available()` says why the plugin cannot be used."""

    class Broken(Backend):
        @classmethod
        def available(cls) -> tuple[bool, str]:
            return False, reason

        def _device(self) -> dict[str, Any]:
            raise AssertionError("never constructed: not available")

        def open(self, onnx_path, input_shape, protocol):  # type: ignore[no-untyped-def]
            raise AssertionError("never constructed: not available")

    Broken.name = name
    Broken.__qualname__ = Broken.__name__ = f"Broken[{value}]"
    return Broken
