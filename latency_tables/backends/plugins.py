"""Backends from other packages: a distribution declares them in the entry-point group `hwnas.backends`

    [project.entry-points."hwnas.backends"]
    my-npu = "my_package.backend:MyNpuBackend"     # a `Backend` subclass

and every process that imports `latency_tables.backends` -- the CLI, and a Ray worker measuring on another node
where the package is installed -- finds it by name. A plugin that fails to load does not break hwnas: it is
listed as unavailable with the reason (`hwnas latency backends`)."""
from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

from latency_tables.backends.base import BACKENDS, Backend, one_line

GROUP = "hwnas.backends"


def _broken(name: str, ep: EntryPoint, reason: str) -> type[Backend]:
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
    Broken.__qualname__ = Broken.__name__ = f"Broken[{ep.value}]"
    return Broken


def load_entry_point_backends() -> list[str]:
    """Register every `hwnas.backends` entry point not registered yet; returns the names added."""
    added = []
    for ep in entry_points(group=GROUP):
        if ep.name in BACKENDS:
            continue
        try:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Backend)):
                raise TypeError(f"{ep.value} is {cls!r}, not a latency_tables Backend subclass")
            if getattr(cls, "name", None) != ep.name:
                raise TypeError(f"{ep.value}.name is {getattr(cls, 'name', None)!r}, the entry point says {ep.name!r}")
        except Exception as e:  # noqa: BLE001 -- any failure of third-party code: report it, do not crash
            cls = _broken(ep.name, ep, f"entry point {ep.name} = {ep.value} failed to load ({one_line(e)})")
        BACKENDS.register(ep.name, cls)
        added.append(ep.name)
    return added
