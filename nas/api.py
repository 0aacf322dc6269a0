"""The verbs a user scripts with, each taking one frozen config object (`import nas` re-exports them).

Where a step already has its config type the verb is the library's own function (`train_supernet(TrainConfig,
out)`: the config is what the checkpoint records, `out` where it goes; `run_search(SearchConfig)`;
`nas.run_experiment(Experiment)`). Where a step is one library function, its config is generated from that
function's keyword arguments (`config_of`): the signature stays the one definition of the fields, their types
and defaults, so the config cannot drift from it.
"""
from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

from latency_tables import TableConfig, build_table
from nas.accuracy_dataset import CollectConfig
from nas.accuracy_dataset import collect as collect_labels
from nas.export import ExportReport
from nas.export import export_subnet as _export_subnet
from nas.lookup import QueryResult
from nas.lookup import query as _query
from nas.ofa_import import import_ofa as _import_ofa
from nas.search.api import SearchConfig, add_to_store, run_search
from nas.train import TrainConfig, train_supernet
from predictors import FitConfig, fit_predictor, load_accuracy_dataset


def config_of(fn: Callable[..., Any], name: str) -> type:
    """A frozen, keyword-only dataclass whose fields are `fn`'s parameters (names, annotations, defaults)."""
    specs: list[Any] = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        ann = Any if p.annotation is p.empty else p.annotation
        specs.append((p.name, ann) if p.default is p.empty else (p.name, ann, dataclasses.field(default=p.default)))
    cls = dataclasses.make_dataclass(name, specs, frozen=True, kw_only=True)
    cls.__module__ = __name__
    summary = (inspect.getdoc(fn) or "").split("\n\n")[0]
    cls.__doc__ = f"The arguments of `{fn.__module__}.{fn.__name__}`, as one config.\n\n{summary}"
    return cls


def _call(fn: Callable[..., Any], config: Any) -> Any:
    return fn(**{f.name: getattr(config, f.name) for f in dataclasses.fields(config)})


ImportConfig = config_of(_import_ofa, "ImportConfig")
QueryConfig = config_of(_query, "QueryConfig")
ExportConfig = config_of(_export_subnet, "ExportConfig")


def import_ofa(config: ImportConfig) -> dict[str, Any]:  # type: ignore[valid-type]
    """Convert Once-for-All's published supernet into an hwnas checkpoint; returns its meta."""
    return _call(_import_ofa, config)


def query(config: QueryConfig) -> QueryResult:  # type: ignore[valid-type]
    """The best stored subnet for a device under budgets."""
    return _call(_query, config)


def export_subnet(config: ExportConfig) -> ExportReport:  # type: ignore[valid-type]
    """Export one subnet to ONNX (quantized per its policy) with its model card, verified."""
    return _call(_export_subnet, config)


__all__ = [
    "CollectConfig", "ExportConfig", "FitConfig", "ImportConfig", "QueryConfig", "SearchConfig", "TableConfig",
    "TrainConfig", "add_to_store", "build_table", "collect_labels", "config_of", "export_subnet", "fit_predictor",
    "import_ofa", "load_accuracy_dataset", "query", "run_search", "train_supernet",
]
