"""nas: the engines that tie the packages together (data, supernet training, search, results store, query,
export, CLI). Public entry points are imported lazily so `import nas` (and `hwnas --help`) stays cheap."""
from __future__ import annotations

from typing import Any

_LAZY = {
    "query": ("nas.lookup", "query"),
    "QueryResult": ("nas.lookup", "QueryResult"),
    "ResultsStore": ("nas.store", "ResultsStore"),
    "export_subnet": ("nas.export", "export_subnet"),
    "ExportReport": ("nas.export", "ExportReport"),
    "run_experiment": ("nas.pipeline.run", "run_experiment"),
    "load_experiment": ("nas.experiment", "load_experiment"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'nas' has no attribute {name!r}")
