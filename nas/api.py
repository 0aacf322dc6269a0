"""The verbs a user scripts with, each taking one frozen config object (`import nas` re-exports them).

Each verb is the library's own function and each config is defined once, beside it, as a frozen dataclass whose
fields carry their type, bounds, default and help (`search_spaces.settings`): the CLI's options and the experiment
file's sections are generated from the same fields. `train_supernet(TrainConfig, out)`: the config is what the
checkpoint records, `out` where it goes; `run_training(TrainConfig, TrainRun)` adds what the run runs on (Ray Train
workers, device, mixed precision), as `hwnas supernet train` does.
"""
from __future__ import annotations

from latency_tables import TableConfig, build_table
from nas.accuracy_dataset import CollectConfig
from nas.accuracy_dataset import collect as collect_labels
from nas.export import ExportConfig, export_subnet
from nas.import_config import ImportConfig
from nas.lookup import query
from nas.ofa_import import import_ofa
from nas.query_config import QueryConfig
from nas.search.api import SearchConfig, add_to_store, run_search
from nas.train import TrainConfig, train_supernet
from nas.train_config import TrainRun
from nas.train_run import run_training
from predictors import FitConfig, fit_predictor, load_accuracy_dataset

__all__ = [
    "CollectConfig", "ExportConfig", "FitConfig", "ImportConfig", "QueryConfig", "SearchConfig", "TableConfig",
    "TrainConfig", "TrainRun", "add_to_store", "build_table", "collect_labels", "export_subnet", "fit_predictor",
    "import_ofa", "load_accuracy_dataset", "query", "run_search", "run_training", "train_supernet",
]
