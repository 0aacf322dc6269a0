"""Package front doors that import on first use: `__getattr__` / `__dir__` for a package whose public names live
in submodules, so importing the package (and `hwnas --help`) costs none of their imports (torch, Optuna, ...)."""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, names: Mapping[str, str], namespace: Mapping[str, Any]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """(`__getattr__`, `__dir__`) for `package` whose names map to the modules defining them; `namespace` is the
    package's `globals()`."""
    def getattr_(name: str) -> Any:
        if name in names:
            return getattr(importlib.import_module(names[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def dir_() -> list[str]:
        return sorted({*names, *(k for k in namespace if k.startswith("__"))})

    return getattr_, dir_
